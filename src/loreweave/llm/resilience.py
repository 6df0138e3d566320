"""Resilience, in one place around every provider (DESIGN §4).

Each attempt passes the process's rate limit; retriable errors (429, 5xx, connection failures,
timeouts) are retried with exponential back-off and jitter, a 429's ``Retry-After`` is honoured;
anything else fails at once.  Calls are logged by prompt name and counted in :class:`CallStats`.

A provider that has answered and then cannot be reached at all (its server stopped: a local
model server that died) is *down*: reported once, and from then on each call waits for its
turn to try it, one call a ``backoff_max`` at most, without retries of its own; the jobs wait
(back in their queue, with their back-off) instead of hammering a port no one listens on.  Its
first answer ends the downtime (reported once too).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential, wait_random

from loreweave.errors import ProviderError, ProviderUnreachable, RateLimited
from loreweave.llm.ratelimit import RateLimiter
from loreweave.llm.types import (
    ChatModel,
    ChatRequest,
    ChatResponse,
    Embedder,
    Matrix,
    StreamingChatModel,
    estimate_tokens,
)

log = logging.getLogger("loreweave.llm")
T = TypeVar("T")

MAX_RETRY_AFTER = 300.0


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff_initial: float = 1.0
    backoff_max: float = 30.0


@dataclass
class ProviderHealth:
    """When a provider last answered, and since when it has been failing."""

    last_success: float | None = None  # time.time()
    failing_since: float | None = None  # the first failure after the last success
    last_error: str | None = None
    last_error_kind: str | None = None  # the error's class name: AuthenticationFailed…


class CallStats:
    """Counters of provider calls, by (provider, prompt): calls, errors, retries, tokens; and
    each provider's health, for alerts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.health: dict[str, ProviderHealth] = {}

    def succeeded(self, provider: str) -> None:
        with self._lock:
            health = self.health.setdefault(provider, ProviderHealth())
            health.last_success, health.failing_since = time.time(), None

    def failed(self, provider: str, exc: BaseException) -> None:
        with self._lock:
            health = self.health.setdefault(provider, ProviderHealth())
            health.failing_since = health.failing_since or time.time()
            health.last_error, health.last_error_kind = str(exc), type(exc).__name__

    def health_snapshot(self) -> dict[str, ProviderHealth]:
        with self._lock:
            return {name: replace(h) for name, h in self.health.items()}

    def add(self, provider: str, prompt: str, what: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[(provider, prompt, what)] += amount

    def snapshot(self) -> dict[tuple[str, str, str], int]:
        with self._lock:
            return dict(self.counts)


def _is_retriable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retriable


class Downtime:
    """Whether one provider is down (see the module's docstring), and when it may next be
    tried: one call at a time per ``interval``, each caller waiting for its own slot."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval = max(interval, 1.0)
        self._clock = clock
        self._lock = threading.Lock()
        self.answered = False  # it answered once: a refusal now means it stopped
        self.since: float | None = None
        self._next_try = 0.0

    @property
    def down(self) -> bool:
        return self.since is not None

    def slot(self) -> float:
        """Seconds to wait before this caller tries the provider (its slot is reserved)."""
        with self._lock:
            now = self._clock()
            at = max(now, self._next_try)
            self._next_try = at + self.interval
            return at - now

    def outcome(self, provider: str, exc: BaseException | None) -> None:
        """Record an attempt's outcome: an answer (``exc`` None, or anything but no connection)
        ends a downtime; no connection after an answer starts one; each reported once."""
        unreachable = isinstance(exc, ProviderUnreachable)
        with self._lock:
            if not unreachable:
                if self.since is not None:
                    log.warning("%s answers again; its jobs go on", provider)
                self.answered, self.since = True, None
            elif self.answered and self.since is None:
                self.since = self._clock()
                self._next_try = self.since + self.interval
                log.error(
                    "%s is down: it answered before, and now no connection is possible (%s); "
                    "its jobs wait, and it is tried once every %.0fs until it answers",
                    provider,
                    exc,
                    self.interval,
                )


class Resilience:
    """Rate limit + retries + accounting, shared by the wrappers of one provider."""

    def __init__(
        self,
        policy: RetryPolicy,
        limiter: RateLimiter,
        *,
        stats: CallStats | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.limiter = limiter
        self.stats = stats or CallStats()
        self._sleep = sleep
        self.downtime = Downtime(policy.backoff_max, clock)
        # initial · 2^(attempt-1), capped, plus up to ``initial`` seconds of jitter
        self._backoff = wait_exponential(
            multiplier=policy.backoff_initial, max=policy.backoff_max
        ) + wait_random(0, policy.backoff_initial)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), MAX_RETRY_AFTER)
        return float(self._backoff(state))

    def _attempt(self, fn: Callable[[], T], provider: str, prompt: str, tokens: int) -> T:
        waited = self.limiter.acquire(tokens)
        if waited > 0:  # visible: a rate limit below the pool's pace caps throughput
            self.stats.add(provider, prompt, "rate_limited_ms", round(waited * 1000))
        self.stats.add(provider, prompt, "calls")
        try:
            result = fn()
        except ProviderError as exc:
            self.stats.add(provider, prompt, "errors")
            self.stats.failed(provider, exc)
            self.downtime.outcome(provider, exc)
            raise
        self.stats.succeeded(provider)
        self.downtime.outcome(provider, None)
        return result

    def call(self, fn: Callable[[], T], *, provider: str, prompt: str, tokens: int) -> T:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            self.stats.add(provider, prompt, "retries")
            log.warning(
                "%s %s attempt %d failed (%s); retrying in %.2fs",
                provider,
                prompt,
                state.attempt_number,
                exc,
                wait,
            )

        if self.downtime.down:  # wait for this caller's slot, then one try
            self._sleep(self.downtime.slot())
        retrying = Retrying(
            stop=stop_after_attempt(self.policy.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(lambda e: _is_retriable(e) and not self.downtime.down),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )

        return retrying(lambda: self._attempt(fn, provider, prompt, tokens))


class ResilientChatModel:
    """A :class:`ChatModel` wrapped with :class:`Resilience`."""

    def __init__(self, inner: ChatModel, resilience: Resilience) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.resilience = resilience

    def complete(self, request: ChatRequest) -> ChatResponse:
        estimate = estimate_tokens(request.text()) + (request.max_tokens or 500)
        started = time.perf_counter()
        response = self.resilience.call(
            lambda: self.inner.complete(request),
            provider=self.provider,
            prompt=request.prompt,
            tokens=estimate,
        )
        actual = response.usage.total_tokens or estimate
        self.resilience.limiter.settle(estimate, actual)
        stats = self.resilience.stats
        stats.add(self.provider, request.prompt, "prompt_tokens", response.usage.prompt_tokens)
        stats.add(
            self.provider, request.prompt, "completion_tokens", response.usage.completion_tokens
        )
        log.debug(
            "%s %s model=%s tokens=%d/%d in %.3fs",
            self.provider,
            request.prompt,
            response.model,
            response.usage.prompt_tokens,
            response.usage.completion_tokens,
            time.perf_counter() - started,
        )
        return response

    def stream(self, request: ChatRequest) -> Iterator[str]:
        """Stream with the same rate limit and retries, up to the first chunk; an error after
        text has been handed out cannot be retried and propagates."""
        inner = self.inner
        if not isinstance(inner, StreamingChatModel):
            yield self.complete(request).text
            return

        def start() -> tuple[str, Iterator[str]]:
            iterator = inner.stream(request)
            return next(iterator, ""), iterator

        estimate = estimate_tokens(request.text()) + (request.max_tokens or 500)
        first, rest = self.resilience.call(
            start, provider=self.provider, prompt=request.prompt, tokens=estimate
        )
        if first:
            yield first
        yield from rest


class ResilientEmbedder:
    """An :class:`Embedder` wrapped with :class:`Resilience`."""

    def __init__(self, inner: Embedder, resilience: Resilience) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.model_name = inner.model_name
        self.resilience = resilience

    @property
    def dim(self) -> int:
        # an unknown dimension is learnt by embedding a probe: a provider call like any other
        return self.resilience.call(
            lambda: self.inner.dim, provider=self.provider, prompt="embed", tokens=1
        )

    def embed(self, texts: Sequence[str]) -> Matrix:
        tokens = sum(estimate_tokens(text) for text in texts)
        return self.resilience.call(
            lambda: self.inner.embed(texts), provider=self.provider, prompt="embed", tokens=tokens
        )
