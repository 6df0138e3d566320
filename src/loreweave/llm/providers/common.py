"""What the HTTP providers share: status codes to typed errors, ``Retry-After``, and batched
embedding requests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import numpy as np

from loreweave.errors import (
    AuthenticationFailed,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    RequestRejected,
)
from loreweave.llm.types import ChatRequest, Matrix, estimate_tokens, normalise_rows
from loreweave.redact import redact


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date."""
    if not headers:
        return None
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_for_status(
    status: int,
    body: str,
    *,
    provider: str,
    headers: Mapping[str, str] | None = None,
    secrets: Sequence[str] = (),
) -> ProviderError:
    # bodies may echo the request, the key included: never stored, logged or returned raw
    detail = redact(" ".join(body.split()), secrets, limit=300)
    message = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
    if status == 429:
        return RateLimited(message, provider=provider, retry_after=retry_after_seconds(headers))
    if status in (401, 403):
        return AuthenticationFailed(message, provider=provider, status=status)
    if status == 408 or status >= 500:
        return ProviderUnavailable(message, provider=provider, status=status)
    return RequestRejected(message, provider=provider, status=status)


# Names the prompt of each chat request (``analysis``, ``rewrite.batch``…): for a provider's
# logs, and for stand-in servers to answer by name, never by wording.  Nothing else is sent.
PROMPT_HEADER = "X-Loreweave-Prompt"


def prompt_headers(request: ChatRequest) -> dict[str, str]:
    return {PROMPT_HEADER: request.prompt}


def completion_options(
    request: ChatRequest, response_format: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The optional chat-completion parameters both APIs name alike: a client's own options
    (the proxy's pass-through), the structured-output form chosen for the request's schema
    (:mod:`loreweave.llm.providers.forms`), and ``max_tokens``."""
    options: dict[str, Any] = dict(request.passthrough or {})
    if response_format is not None:
        options["response_format"] = response_format
    if request.max_tokens is not None:
        options["max_tokens"] = request.max_tokens
    return options


def batches(texts: Sequence[str], max_items: int, max_tokens: int) -> Iterator[list[str]]:
    """Split ``texts`` into requests of at most ``max_items`` texts and about ``max_tokens``."""
    batch: list[str] = []
    tokens = 0
    for text in texts:
        cost = estimate_tokens(text)
        if batch and (len(batch) >= max_items or tokens + cost > max_tokens):
            yield batch
            batch, tokens = [], 0
        batch.append(text)
        tokens += cost
    if batch:
        yield batch


class BatchingEmbedder:
    """Embeds texts in requests of at most ``max_items`` texts and about ``max_tokens`` tokens;
    subclasses send one request (``_embed_batch``).  The dimension is learnt from the first
    answer unless known in advance."""

    provider: str
    model_name: str
    max_items = 128
    max_tokens = 8_000  # mistral-embed takes 16,384 tokens a request: stay well inside
    _dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim

    def embed(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        rows: list[list[float]] = []
        for batch in batches(texts, self.max_items, self.max_tokens):
            rows.extend(self._embed_batch(batch))
        matrix = normalise_rows(rows)
        self._dim = matrix.shape[1]
        return matrix

    def _embed_batch(self, batch: list[str]) -> list[list[float]]:
        raise NotImplementedError
