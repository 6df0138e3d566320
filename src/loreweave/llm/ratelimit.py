"""A token-bucket rate limit per provider: requests per second and tokens per minute.

Callers reserve capacity up front (the balance may go negative) and then sleep outside the lock
for as long as their reservation is ahead of the refill, so concurrent callers are served in
arrival order and never exceed the rate.  A rate of None is no limit.  One limiter is shared by
every worker of a process.  :class:`InFlight` bounds the calls a process's memory workers make
at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from loreweave.llm.types import ChatModel, ChatRequest, ChatResponse


class _Bucket:
    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.level = capacity
        self.stamp = now

    def reserve(self, amount: float, now: float) -> float:
        """Take ``amount`` and return how long to wait before it is covered."""
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        self.level -= min(amount, self.capacity)
        return 0.0 if self.level >= 0 else -self.level / self.rate

    def refund(self, amount: float) -> None:
        self.level = min(self.capacity, self.level + amount)


class RateLimiter:
    def __init__(
        self,
        requests_per_second: float | None,
        tokens_per_minute: float | None,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if (requests_per_second or 1) <= 0 or (tokens_per_minute or 1) <= 0:
            raise ValueError("rates must be positive (or None: no limit)")
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        now = clock()
        self._requests = (
            _Bucket(
                requests_per_second,
                burst if burst is not None else max(1.0, requests_per_second),
                now,
            )
            if requests_per_second
            else None
        )
        self._tokens = (
            _Bucket(tokens_per_minute / 60.0, tokens_per_minute, now) if tokens_per_minute else None
        )

    def acquire(self, tokens: int = 1) -> float:
        """Wait until one request of ``tokens`` estimated tokens may go; return the wait."""
        with self._lock:
            now = self._clock()
            wait = max(
                self._requests.reserve(1, now) if self._requests else 0.0,
                self._tokens.reserve(tokens, now) if self._tokens else 0.0,
            )
        if wait > 0:
            self._sleep(wait)
        return wait

    def settle(self, estimated: int, actual: int) -> None:
        """Correct a reservation once the real token count is known."""
        if self._tokens is None:
            return
        with self._lock:
            self._tokens.refund(estimated - actual)


class InFlight:
    """A chat model that makes at most ``limit`` calls at once (``calls_in_flight``): the
    memory's workers may outnumber the calls, so a job's reading, embedding and saving go on
    while other jobs' calls are in flight, and a job that needs a call waits here for one."""

    def __init__(self, model: ChatModel, limit: int) -> None:
        self.model = model
        self.provider = model.provider
        self._slots = threading.BoundedSemaphore(limit)

    def complete(self, request: ChatRequest) -> ChatResponse:
        with self._slots:
            return self.model.complete(request)
