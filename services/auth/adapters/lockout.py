"""Brute-force counters in Redis: failures and locks per (client_id, address) pair, per address
(credential stuffing across many client_ids), and per address for wrong admin tokens.

The thresholds and lock lengths are the handlers' decision; this only counts and locks.
"""

import hashlib

from redis.asyncio import Redis

from services.auth.adapters import redis_outage_as_connection_error as outage


def _k(kind: str, scope: str, *values: str) -> str:
    # Hash the client_id/address so attacker-chosen strings never become raw Redis keys.
    joined = "\0".join(values)
    return f"rm:{kind}:{scope}:{hashlib.sha256(joined.encode()).hexdigest()[:32]}"


class Lockout:
    """Failure counters with a window, and locks that expire on their own."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    @outage
    async def locked_for(self, client_id: str, address: str) -> int:
        """Seconds until this client_id may be tried again from this address; 0 when not locked."""
        pipe = self.redis.pipeline(transaction=False)
        ttls = await pipe.ttl(_k("lock", "pair", client_id, address)).ttl(_k("lock", "ip", address)).execute()
        return max(0, *ttls)

    @outage
    async def count_failure(self, client_id: str, address: str, window_seconds: int) -> tuple[int, int]:
        """Record a failure; the failures of this (client_id, address) pair and of this address
        (whatever the client_id) within the window."""
        pipe = self.redis.pipeline(transaction=False)
        for key in (_k("fail", "pair", client_id, address), _k("fail", "ip", address)):
            pipe.incr(key)
            pipe.expire(key, window_seconds, nx=True)
        pair_fails, _, address_fails, _ = await pipe.execute()
        return int(pair_fails), int(address_fails)

    @outage
    async def lock_pair(self, client_id: str, address: str, seconds: int) -> None:
        await self.redis.set(_k("lock", "pair", client_id, address), 1, ex=seconds)

    @outage
    async def lock_address(self, address: str, seconds: int) -> None:
        await self.redis.set(_k("lock", "ip", address), 1, ex=seconds)

    @outage
    async def clear(self, client_id: str, address: str) -> None:
        """Forget this pair's failures (a success); an address's count runs out with its window."""
        await self.redis.delete(_k("fail", "pair", client_id, address))


class AdminThrottle:
    """Wrong admin tokens per address: after `threshold` within the window, 429 until it passes."""

    def __init__(self, redis: Redis, threshold: int, window_seconds: int) -> None:
        self.redis, self.threshold, self.window_seconds = redis, threshold, window_seconds

    @outage
    async def blocked_for(self, address: str) -> int:
        """Seconds until this address may present an admin token again; 0 when it may now."""
        key = _k("fail", "admin", address)
        count, ttl = await self.redis.pipeline(transaction=False).get(key).ttl(key).execute()
        return max(int(ttl), 1) if int(count or 0) >= self.threshold else 0

    @outage
    async def failed(self, address: str) -> None:
        key = _k("fail", "admin", address)
        await self.redis.pipeline(transaction=False).incr(key).expire(key, self.window_seconds, nx=True).execute()
