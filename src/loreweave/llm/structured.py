"""Structured output: find the JSON in a reply, validate it, and ask once for a repair."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from loreweave.errors import InvalidResponse
from loreweave.llm.types import ChatModel, ChatRequest, ChatResponse, Message
from loreweave.validation import scrub_tree

T = TypeVar("T", bound=BaseModel)

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)

REPAIR_INSTRUCTION = (
    "Your previous answer could not be used: {error}\n"
    "Answer again with only the corrected JSON object, nothing before or after it."
)


def extract_json(text: str) -> Any:
    """The first JSON object in ``text``: bare, in a code fence, or wrapped in prose."""
    candidates = [text.strip(), *(block.strip() for block in _FENCE.findall(text))]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            pass
    for start in (match.start() for match in re.finditer(r"[{\[]", text)):
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        return value
    raise ValueError("no JSON object found in the response")


def _parse(text: str, schema: type[T]) -> T:
    """``text``'s JSON as ``schema``, its strings scrubbed first (no NUL, no lone surrogate:
    :func:`~loreweave.validation.scrub`), so nothing validated can fail to be stored."""
    try:
        return schema.model_validate(scrub_tree(extract_json(text)))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'value'}: {error['msg']}"
            for error in exc.errors()[:5]
        )
        raise ValueError(f"the JSON does not match the expected format ({problems})") from exc


def _answer(response: ChatResponse, schema: type[T]) -> T:
    if response.truncated:
        raise ValueError(
            "the answer was cut off at the token limit; answer again, shorter, within the limits"
        )
    return _parse(response.text, schema)


def repair_request(request: ChatRequest, reply: str, instruction: str) -> ChatRequest:
    """The one repair of an unusable answer: the request, the answer, and what was wrong."""
    return replace(
        request,
        prompt=f"{request.prompt}.repair",
        messages=(*request.messages, Message("assistant", reply), Message("user", instruction)),
    )


def complete_structured(model: ChatModel, request: ChatRequest, schema: type[T]) -> T:
    """Ask for JSON matching ``schema`` (the request's own JSON schema is sent when it has one,
    else the model's); on an unusable answer (not the JSON asked for, or cut at the token
    limit), one repair request quoting the problem; then :class:`InvalidResponse`."""
    request = replace(request, json_schema=request.json_schema or schema.model_json_schema())
    first_response = model.complete(request)
    reply = first_response.text
    try:
        return _answer(first_response, schema)
    except ValueError as first:
        repair = repair_request(request, reply, REPAIR_INSTRUCTION.format(error=first))
        try:
            return _answer(model.complete(repair), schema)
        except ValueError as second:
            raise InvalidResponse(
                f"{request.prompt}: unusable response after one repair: {second}",
                provider=model.provider,
            ) from second
