"""One structured call for several jobs, each part checked on its own, and alone what it did
not do well: how a batched rewrite and a batched creation use their answer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from loreweave.errors import InvalidResponse
from loreweave.llm.prompts import PromptSpec
from loreweave.llm.types import ChatModel, ChatRequest

log = logging.getLogger("loreweave.batch")

S = TypeVar("S", bound=BaseModel)
T = TypeVar("T")
R = TypeVar("R")


def each_or_alone(
    model: ChatModel,
    request: ChatRequest,
    prompt: PromptSpec[S],
    parts_of: Callable[[S], Mapping[str, Any]],
    items: Sequence[tuple[str, T]],
    check: Callable[[T, Any], R],
    alone: Callable[[T], R],
) -> list[R]:
    """``items`` are (ref, item): each item's result is ``check`` of its part of the answer
    (keyed by ref), or ``alone`` when the part is missing, or ``check`` or the whole answer
    fails (InvalidResponse, or a ValueError such as pydantic's ValidationError)."""
    try:
        answer = prompt.ask(model, request)
        parts = {ref.strip().upper(): part for ref, part in parts_of(answer).items()}
    except InvalidResponse as exc:
        log.warning("%s unusable (%s); each part alone", request.prompt, exc)
        parts = {}
    results = []
    for ref, item in items:
        try:
            results.append(check(item, parts[ref]))
        except (KeyError, ValueError, InvalidResponse):
            log.info("%s left out or spoiled %s; alone", request.prompt, ref)
            results.append(alone(item))
    return results
