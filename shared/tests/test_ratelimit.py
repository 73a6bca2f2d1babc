"""The one token bucket every service uses (the Lua script's arithmetic, run by the in-memory
Redis), its RateLimit-* headers and its answers when a caller is over its rate or Redis is down."""

import pytest

from shared.errors import Problem
from shared.ratelimit import RateLimiter, admit, refill
from shared.testing.fakes import MemoryRedis


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_starts_full_takes_one_a_request_and_refills_at_its_rate():
    assert refill(None, None, 0.0, 2.0, 3) == (True, 2)
    assert refill(0.5, 10.0, 10.0, 2.0, 3) == (False, 0.5)
    assert refill(0.5, 10.0, 10.25, 2.0, 3) == (True, 0.0)  # a quarter second at 2/s is half a token
    assert refill(1.0, 0.0, 100.0, 2.0, 3) == (True, 2)  # never more than the burst


async def test_callers_have_their_own_buckets_and_refused_ones_are_told_when_to_come_back():
    clock = Clock()
    limiter = RateLimiter(MemoryRedis(), rate=0.5, burst=2, prefix="rm:rl:test:", clock=clock)
    first, second, third = [await limiter.take("a") for _ in range(3)]
    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    assert third.headers() == {
        "RateLimit-Limit": "2",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "4",
        "Retry-After": "2",
    }
    assert (await limiter.take("b")).allowed  # another caller
    clock.now += 2
    assert (await limiter.take("a")).allowed


async def test_admit_answers_429_rate_limited_and_503_when_redis_is_down():
    redis = MemoryRedis()
    limiter = RateLimiter(redis, rate=1, burst=1)
    refusals: list[int] = []
    assert (await admit(limiter, "a", "slow down", lambda: refusals.append(1)))["RateLimit-Remaining"] == "0"
    with pytest.raises(Problem) as over:
        await admit(limiter, "a", "Too many things; slow down.", lambda: refusals.append(1))
    assert (over.value.status, over.value.code, over.value.detail) == (
        429,
        "rate_limited",
        "Too many things; slow down.",
    )
    assert int(over.value.headers["Retry-After"]) >= 1 and refusals == [1]
    redis.down = True
    with pytest.raises(Problem) as down:
        await admit(limiter, "b", "slow down")
    assert (down.value.status, down.value.code, down.value.headers["Retry-After"]) == (
        503,
        "dependency_unavailable",
        "5",
    )
