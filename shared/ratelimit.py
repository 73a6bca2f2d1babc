"""One token bucket in Redis for every limit a service keeps per caller (imports, token mints,
stop updates and job reads): the same script, the same answer, the same RateLimit-* headers."""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.errors import Problem
from shared.redisbatch import RedisBatch

# Refills `rate` tokens a second up to `burst`; one request takes one token. Atomic in Redis, so
# every replica of a service shares the bucket.
BUCKET_SCRIPT = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return {allowed, tostring(tokens)}
"""
# The same bucket, taken only while ARGV[5] (the key of an integration's revocation epoch,
# shared/tokens.py) still holds ARGV[4], the epoch of the caller's token: the token's last check
# and the rate limit in one round trip, and a revoked token cannot drain the bucket its
# integration's new ones share. The epoch key is an argument, not one of KEYS: Redis's ACL takes a
# script's KEYS as written to, and the gateways may only read epochs (deploy/redis/users-acl.sh);
# the GET itself is checked as a read. (One Redis, not a cluster, as everywhere in the platform.)
EPOCH_BUCKET_SCRIPT = (
    """
if tonumber(redis.call('GET', ARGV[5]) or '0') ~= tonumber(ARGV[4]) then return {-1, '0'} end
"""
    + BUCKET_SCRIPT
)


def refill(tokens: float | None, ts: float | None, now: float, rate: float, burst: int) -> tuple[bool, float]:
    """BUCKET_SCRIPT in Python (for the in-memory Redis of the tests): (allowed, tokens left)."""
    tokens = burst if tokens is None else tokens
    tokens = min(burst, tokens + max(0.0, now - (now if ts is None else ts)) * rate)
    if tokens >= 1:
        return True, tokens - 1
    return False, tokens


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        """The RateLimit-* fields (draft-ietf-httpapi-ratelimit-headers), plus Retry-After when refused."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(self.retry_after_s, 1))
        return headers


class RateLimiter:
    """A token bucket per caller under `prefix` (say `rm:rl:` + client_id); Redis errors propagate."""

    def __init__(
        self,
        redis: Redis,
        rate: float,
        burst: int,
        prefix: str = "rm:rl:",
        clock: Callable[[], float] = time.time,
        batch: RedisBatch | None = None,
    ) -> None:
        """`batch`: the service's RedisBatch, to send the checks of concurrent requests together."""
        self.redis, self.rate, self.burst, self.prefix, self.clock = redis, rate, burst, prefix, clock
        scripts = batch or redis
        self._script = scripts.register_script(BUCKET_SCRIPT)
        self._epoch_script = scripts.register_script(EPOCH_BUCKET_SCRIPT)

    async def take(self, caller: str) -> RateDecision:
        allowed, tokens = await self._script(keys=[self.prefix + caller], args=[self.rate, self.burst, self.clock()])
        return self._decision(allowed, tokens)

    async def take_current(self, caller: str, epoch_key: str, epoch: int) -> RateDecision | None:
        """take(), in the same round trip as checking that `epoch_key` still holds `epoch`; None
        (and nothing taken) when it does not: the caller's token was revoked."""
        allowed, tokens = await self._epoch_script(
            keys=[self.prefix + caller], args=[self.rate, self.burst, self.clock(), epoch, epoch_key]
        )
        return None if int(allowed) < 0 else self._decision(allowed, tokens)

    def _decision(self, allowed: int, tokens: bytes | str) -> RateDecision:
        tokens = float(tokens)
        retry = 0 if allowed else math.ceil((1 - tokens) / self.rate)
        reset = math.ceil((self.burst - tokens) / self.rate)
        return RateDecision(bool(allowed), self.burst, int(tokens), retry, reset)


async def admit(
    limiter: RateLimiter,
    caller: str,
    detail: str,
    refused: Callable[[], None] | None = None,
    epoch: tuple[str, int] | None = None,
) -> dict[str, str]:
    """The RateLimit-* headers of one more request of `caller`, or a 429 `rate_limited` problem
    (with Retry-After) when it is over its rate; 503 when the buckets cannot be reached.
    With `epoch` (the key of the caller's revocation epoch, and its token's), a 401 problem when
    the token was revoked, checked in the same round trip."""
    try:
        if epoch is None:
            decision = await limiter.take(caller)
        elif (current := await limiter.take_current(caller, *epoch)) is None:
            from shared.tokens import unknown_token  # here: the token module needs FastAPI

            raise unknown_token()
        else:
            decision = current
    except (RedisError, OSError):
        raise Problem(
            503,
            "dependency_unavailable",
            "The rate limiter is unavailable; nothing was accepted, retry shortly.",
            headers={"Retry-After": "5"},
        ) from None
    if not decision.allowed:
        if refused is not None:
            refused()
        raise Problem(429, "rate_limited", detail, headers=decision.headers())
    return decision.headers()
