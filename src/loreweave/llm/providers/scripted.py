"""The ``scripted`` provider: replays recorded responses from a cassette.

For the offline demo and for tests.  A cassette is a JSON file::

    {"chat": [
        {"prompt": "analysis", "contains": ["Kenta"], "response": {"updates": [], "creations": []}},
        {"prompt": "chat", "response": "The tavern falls silent.", "repeat": true},
        {"prompt": "rewrite", "error": "unavailable"}
    ]}

A request takes the first unused interaction (in cassette order) whose ``prompt`` matches its
prompt name (any, when omitted) and whose ``contains`` strings all appear in its messages;
``repeat`` interactions are never used up.  ``response`` is text, or JSON written as an object;
``error`` raises that provider error instead (``unavailable``, ``rate_limited``, ``invalid``,
``authentication``, ``rejected``).  A batched request (``analysis.batch``…) that no interaction
answers is answered as its single parts would be, each from the cassette.  A request that
nothing answers is an :class:`InvalidResponse` naming it — never an invented answer.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from loreweave.errors import (
    AuthenticationFailed,
    ConfigurationError,
    InvalidResponse,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    RequestRejected,
)
from loreweave.llm.prompts import answer_by_parts
from loreweave.llm.types import ChatRequest, ChatResponse, Usage, estimate_tokens

PROVIDER = "scripted"

ErrorKind = Literal["unavailable", "rate_limited", "invalid", "authentication", "rejected"]


class Interaction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str | None = None
    contains: list[str] = Field(default_factory=list)
    response: str | dict[str, Any] | list[Any] | None = None
    error: ErrorKind | None = None
    repeat: bool = False

    @model_validator(mode="after")
    def _one_outcome(self) -> Interaction:
        if (self.response is None) == (self.error is None):
            raise ValueError("an interaction has exactly one of 'response' or 'error'")
        return self

    def matches(self, request: ChatRequest, text: str) -> bool:
        if self.prompt is not None and self.prompt != request.prompt:
            return False
        return all(needle in text for needle in self.contains)

    def text(self) -> str:
        return self.response if isinstance(self.response, str) else json.dumps(self.response)

    def raise_error(self) -> None:
        errors: dict[str, ProviderError] = {
            "unavailable": ProviderUnavailable("scripted outage", provider=PROVIDER),
            "rate_limited": RateLimited("scripted 429", provider=PROVIDER, retry_after=0.0),
            "invalid": InvalidResponse("scripted invalid response", provider=PROVIDER),
            "authentication": AuthenticationFailed("scripted bad key", provider=PROVIDER),
            "rejected": RequestRejected("scripted 400: bad request", provider=PROVIDER),
        }
        raise errors[self.error or "invalid"]


class Cassette(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chat: list[Interaction] = Field(default_factory=list)


def load_cassette(path: Path) -> Cassette:
    try:
        return Cassette.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise ConfigurationError(f"scripted cassette not found: {path}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigurationError(f"invalid cassette {path}: {where}: {first['msg']}") from None


class ScriptedChatModel:
    """A :class:`~loreweave.llm.types.ChatModel` that answers from a list of interactions and
    keeps every request it was asked in :attr:`calls`."""

    provider = PROVIDER

    def __init__(self, interactions: list[Interaction] | None = None) -> None:
        self._lock = threading.Lock()
        self._pending: list[Interaction] = list(interactions or [])
        self.calls: list[ChatRequest] = []

    @classmethod
    def from_file(cls, path: Path) -> ScriptedChatModel:
        return cls(load_cassette(path).chat)

    @classmethod
    def placeholder(cls) -> ScriptedChatModel:
        """The cassette shipped beside this module: every chat answered with a reply that says
        no LLM is set up, every analysis with nothing to change (``loreweave serve`` offline)."""
        shipped = resources.files("loreweave.llm.providers").joinpath("placeholder.json")
        return cls.from_file(Path(str(shipped)))

    def add(
        self,
        response: str | dict[str, Any] | None = None,
        *,
        prompt: str | None = None,
        contains: list[str] | None = None,
        error: ErrorKind | None = None,
        repeat: bool = False,
    ) -> None:
        interaction = Interaction(
            prompt=prompt, contains=contains or [], response=response, error=error, repeat=repeat
        )
        with self._lock:
            self._pending.append(interaction)

    def cassette(self) -> Cassette:
        """The interactions not used up yet, as a cassette (to hand to another process)."""
        with self._lock:
            return Cassette(chat=list(self._pending))

    def calls_for(self, prompt: str) -> list[ChatRequest]:
        with self._lock:
            return [call for call in self.calls if call.prompt == prompt]

    def stream(self, request: ChatRequest) -> Iterator[str]:
        """The scripted reply, a word at a time."""
        words = self.complete(request).text.split(" ")
        for index, word in enumerate(words):
            yield word if index == 0 else " " + word

    def complete(self, request: ChatRequest) -> ChatResponse:
        with self._lock:
            self.calls.append(request)
        return self._answer(request)

    def _answer(self, request: ChatRequest) -> ChatResponse:
        text = request.text()
        with self._lock:
            found = next((i for i in self._pending if i.matches(request, text)), None)
            if found is not None and not found.repeat:
                self._pending.remove(found)
        if found is None:
            batched = answer_by_parts(request, self._answer)  # a batch, as its parts would be
            if batched is not None:
                return batched
            last = request.messages[-1].content if request.messages else ""
            preview = " ".join(last.split())[:120]
            raise InvalidResponse(
                f"no cassette entry answers this {request.prompt!r} request "
                f"(model {request.model}; last message: {preview!r})",
                provider=PROVIDER,
            )
        if found.error is not None:
            found.raise_error()
        reply = found.text()
        return ChatResponse(
            text=reply,
            model=request.model,
            usage=Usage(estimate_tokens(text), estimate_tokens(reply)),
        )
