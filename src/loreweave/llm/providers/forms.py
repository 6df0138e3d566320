"""How a provider sends a request's JSON schema: the form of ``response_format`` its server
takes, and, in ``auto`` mode, the step down to the next form when a server refuses one.

Forms, from the most to the least constrained:

- ``json_schema``: ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``
  (Mistral's custom structured outputs; OpenAI, vLLM, llama.cpp's llama-server, Ollama);
- ``json_object_schema``: ``{"type": "json_object", "schema": …}`` (llama-cpp-python's server,
  which answers ``json_schema`` with an HTTP 500);
- ``json_object``: JSON mode, the shape described in the prompt only;
- ``off``: nothing; the answer is found in the text.

A refusal is an HTTP 4xx other than 401/403/429 (auth and rate limits are no comment on the
form), or exactly a 500 (a server that crashes on a form it does not know; a 502-504 is an
outage, not a refusal).  The form that then works is remembered for the process, per prompt:
a server that refuses one schema keeps the others.  A refused form never fails a job: only the
last form's error reaches the caller.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from loreweave.errors import ProviderError, ProviderUnavailable, RequestRejected
from loreweave.llm.prompts.schema import strict_compatible
from loreweave.llm.types import ChatRequest

log = logging.getLogger("loreweave.llm")

Form = Literal["json_schema", "json_object_schema", "json_object", "off"]
FORMS: tuple[Form, ...] = ("json_schema", "json_object_schema", "json_object", "off")
T = TypeVar("T")


def response_format(form: Form, request: ChatRequest) -> dict[str, Any] | None:
    """The ``response_format`` of ``request`` in ``form`` (None: send none)."""
    schema = request.json_schema
    if schema is None or form == "off":
        return None
    if form == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {
                "name": request.schema_name,
                "schema": schema,
                "strict": strict_compatible(schema),
            },
        }
    if form == "json_object_schema":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_object"}


def refused(exc: ProviderError) -> bool:
    """Whether ``exc`` is a server saying no to the form, not to the request's content."""
    if isinstance(exc, RequestRejected):
        return True
    return isinstance(exc, ProviderUnavailable) and exc.status == 500


class StructuredForms:
    """The forms one provider tries, in order: all of ``supported`` from the first in ``auto``
    mode, else only the configured one."""

    def __init__(self, mode: str, supported: Sequence[Form], *, provider: str) -> None:
        if mode != "auto" and mode not in supported:
            raise ValueError(f"{provider} cannot send structured output as {mode!r}")
        self.forms: tuple[Form, ...] = tuple(supported) if mode == "auto" else (mode,)  # type: ignore[assignment]
        self.provider = provider
        self._start: dict[str, int] = {}  # prompt -> index of the first form to try
        self._lock = threading.Lock()

    def current(self, prompt: str) -> Form:
        with self._lock:
            return self.forms[self._start.get(prompt, 0)]

    def send(self, request: ChatRequest, call: Callable[[dict[str, Any] | None], T]) -> T:
        """``call`` with the request's ``response_format``, stepping down on refusals."""
        if request.json_schema is None:
            return call(None)
        prompt = request.prompt.removesuffix(".repair")
        with self._lock:
            start = self._start.get(prompt, 0)
        for index in range(start, len(self.forms)):
            try:
                result = call(response_format(self.forms[index], request))
            except ProviderError as exc:
                if index + 1 == len(self.forms) or not refused(exc):
                    raise
                log.warning(
                    "%s refused structured output as %s for %s (%s); trying %s",
                    self.provider,
                    self.forms[index],
                    prompt,
                    exc,
                    self.forms[index + 1],
                )
                continue
            if index != start:
                with self._lock:
                    self._start[prompt] = index
                log.warning(
                    "%s: structured output for %s is sent as %s from now on",
                    self.provider,
                    prompt,
                    self.forms[index],
                )
            return result
        raise AssertionError("unreachable: the last form raises or returns")
