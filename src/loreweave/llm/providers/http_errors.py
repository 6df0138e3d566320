"""What the HTTP providers share: status codes to typed errors, ``Retry-After``, batching."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from loreweave.errors import (
    AuthenticationFailed,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    RequestRejected,
)
from loreweave.llm.types import estimate_tokens


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
    status: int, body: str, *, provider: str, headers: Mapping[str, str] | None = None
) -> ProviderError:
    detail = " ".join(body.split())[:300]
    message = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
    if status == 429:
        return RateLimited(message, provider=provider, retry_after=retry_after_seconds(headers))
    if status in (401, 403):
        return AuthenticationFailed(message, provider=provider)
    if status == 408 or status >= 500:
        return ProviderUnavailable(message, provider=provider)
    return RequestRejected(message, provider=provider)


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
