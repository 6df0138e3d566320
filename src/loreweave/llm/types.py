"""The provider contracts: :class:`ChatModel` and :class:`Embedder`, and what they exchange."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Role = Literal["system", "user", "assistant"]
Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion.  ``prompt`` names the template it came from (analysis, rewrite,
    creation, chat, repair…): for logs, metrics, and for a scripted cassette to match on.

    A batched request (``analysis.batch``…) also carries the single requests it stands for in
    ``parts``; they are never sent, but a fake that knows the single prompts answers a batch
    from them (:func:`loreweave.llm.prompts.answer_by_parts`)."""

    messages: tuple[Message, ...]
    model: str
    temperature: float
    prompt: str = "chat"
    json_schema: dict[str, Any] | None = None
    max_tokens: int | None = None
    parts: tuple[ChatRequest, ...] = ()
    # a client's own options, sent upstream untouched (the proxy: response_format, tools…)
    passthrough: dict[str, Any] | None = None

    @property
    def schema_name(self) -> str:
        """The name a ``json_schema`` response format gives the schema (``[a-zA-Z0-9_-]``)."""
        return self.prompt.removesuffix(".repair").replace(".", "_")

    def text(self) -> str:
        return "\n".join(message.content for message in self.messages)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ChatResponse:
    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    latency: float = 0.0
    finish_reason: str | None = None  # "stop", "length" (cut at max_tokens), "tool_calls"…
    tool_calls: tuple[dict[str, Any], ...] = ()  # as the provider sent them (the proxy)

    @property
    def truncated(self) -> bool:
        """The answer was cut at ``max_tokens``: whatever it holds is incomplete."""
        return self.finish_reason == "length"


@runtime_checkable
class ChatModel(Protocol):
    """A chat completion provider: one method."""

    provider: str

    def complete(self, request: ChatRequest) -> ChatResponse: ...


@runtime_checkable
class StreamingChatModel(ChatModel, Protocol):
    """A chat model that can also hand out its reply as it is generated."""

    def stream(self, request: ChatRequest) -> Iterator[str]: ...


def stream_text(model: ChatModel, request: ChatRequest) -> Iterator[str]:
    """The reply in pieces as ``model`` generates them, or whole in one piece from a model
    that cannot stream (the one fallback: the chat turn and the proxy both stream through it)."""
    if isinstance(model, StreamingChatModel):
        return model.stream(request)
    return iter([model.complete(request).text])


@runtime_checkable
class Embedder(Protocol):
    """Texts in, a float32 matrix out: one L2-normalised row per text, ``dim`` columns."""

    provider: str
    model_name: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> Matrix: ...


def normalise_rows(matrix: npt.ArrayLike) -> Matrix:
    """float32, each row scaled to unit length (a zero row stays zero)."""
    array = np.asarray(matrix, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError("expected a 2-D matrix")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    out: Matrix = np.zeros_like(array)
    np.divide(array, norms, out=out, where=norms > 0)
    return out


def estimate_tokens(text: str) -> int:
    """A provider-independent token estimate (about four characters a token)."""
    return max(1, len(text) // 4)
