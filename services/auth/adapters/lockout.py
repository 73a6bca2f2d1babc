"""Brute-force counters for the token endpoint: failures and locks per client_id and per address, in Redis.

The thresholds and lock lengths are the token handler's decision; this only counts and locks.
"""

import hashlib

from redis.asyncio import Redis

from services.auth.adapters import redis_outage_as_connection_error as outage


def _k(kind: str, scope: str, value: str) -> str:
    # Hash the client_id/address so attacker-chosen strings never become raw Redis keys.
    return f"rm:{kind}:{scope}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"


class Lockout:
    """Failure counters with a window, and locks that expire on their own."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    @outage
    async def locked_for(self, client_id: str, address: str) -> int:
        """Seconds until this client_id or address may try again; 0 when not locked."""
        ttls = await self.redis.pipeline().ttl(_k("lock", "client", client_id)).ttl(_k("lock", "ip", address)).execute()
        return max(0, *ttls)

    @outage
    async def count_failure(self, client_id: str, address: str, window_seconds: int) -> tuple[int, int]:
        """Record a failure; the failures of this client_id and of this address within the window."""
        pipe = self.redis.pipeline()
        for scope, value in (("client", client_id), ("ip", address)):
            pipe.incr(_k("fail", scope, value))
            pipe.expire(_k("fail", scope, value), window_seconds, nx=True)
        client_fails, _, address_fails, _ = await pipe.execute()
        return int(client_fails), int(address_fails)

    @outage
    async def lock_client(self, client_id: str, seconds: int) -> None:
        await self.redis.set(_k("lock", "client", client_id), 1, ex=seconds)

    @outage
    async def lock_address(self, address: str, seconds: int) -> None:
        await self.redis.set(_k("lock", "ip", address), 1, ex=seconds)

    @outage
    async def clear(self, client_id: str) -> None:
        """Forget this client_id's failures (a success); an address's count runs out with its window."""
        await self.redis.delete(_k("fail", "client", client_id))
