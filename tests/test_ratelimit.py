from __future__ import annotations

from loreweave.llm.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_requests_per_second_with_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, 1_000_000, burst=2, clock=clock, sleep=clock.sleep)
    waits = [limiter.acquire(1) for _ in range(5)]
    # two free (the burst), then one every half second, queued in arrival order
    assert waits == [0.0, 0.0, 0.5, 1.0, 1.5]
    clock.now = 10.0
    assert limiter.acquire(1) == 0.0


def test_tokens_per_minute() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1000, 600, burst=1000, clock=clock, sleep=clock.sleep)  # 10 tokens/s
    assert limiter.acquire(600) == 0.0
    assert limiter.acquire(50) == 5.0
    # the call used fewer tokens than estimated: the difference is given back
    limiter.settle(estimated=50, actual=0)
    clock.now = 0.0
    assert limiter.acquire(10) == 1.0


def test_a_request_larger_than_the_bucket_still_passes() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1000, 60, burst=1000, clock=clock, sleep=clock.sleep)
    assert limiter.acquire(10_000) == 0.0
    assert limiter.acquire(1) > 0
