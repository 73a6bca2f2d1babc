"""Brute-force protection for the token endpoint: counters and locks in Redis."""

import hashlib

from redis.asyncio import Redis

from services.auth.settings import AuthSettings


def _k(kind: str, scope: str, value: str) -> str:
    # Hash the client_id/address so attacker-chosen strings never become raw Redis keys.
    return f"rm:{kind}:{scope}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"


class Lockout:
    """Counts failures per client_id and per address; past a threshold both are locked for a while."""

    def __init__(self, redis: Redis, settings: AuthSettings) -> None:
        self.redis, self.settings = redis, settings

    async def locked_for(self, client_id: str, address: str) -> int:
        """Seconds until this client_id or address may try again; 0 when not locked."""
        ttls = await self.redis.pipeline().ttl(_k("lock", "client", client_id)).ttl(_k("lock", "ip", address)).execute()
        return max(0, *ttls)

    async def failed(self, client_id: str, address: str) -> int:
        """Record a failure; returns the number of failures for this client_id in the window."""
        s = self.settings
        pipe = self.redis.pipeline()
        for scope, value in (("client", client_id), ("ip", address)):
            pipe.incr(_k("fail", scope, value))
            pipe.expire(_k("fail", scope, value), s.lockout_window_seconds, nx=True)
        client_fails, _, ip_fails, _ = await pipe.execute()
        if client_fails >= s.lockout_threshold:
            await self.redis.set(_k("lock", "client", client_id), 1, ex=s.lockout_seconds)
        if ip_fails >= s.ip_lockout_threshold:
            await self.redis.set(_k("lock", "ip", address), 1, ex=s.lockout_seconds)
        return int(client_fails)

    async def succeeded(self, client_id: str) -> None:
        await self.redis.delete(_k("fail", "client", client_id))
