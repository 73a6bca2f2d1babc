"""The token store: issued tokens by digest in Redis, signed, in the layout `shared.tokens` verifies."""

from redis.asyncio import Redis

from services.auth.adapters import redis_outage_as_connection_error as outage
from shared.events import utcnow
from shared.tokens import Principal, current_epoch, revoke_tokens, store_token

LAST_USED = "rm:lastused:"
LAST_USED_DAYS = 90


class TokenStore:
    """Keeps and revokes bearer tokens; ingest and status read them through `shared.tokens`."""

    def __init__(self, redis: Redis, signing_key: bytes) -> None:
        self.redis, self.signing_key = redis, signing_key

    @outage
    async def epoch(self, client_id: str) -> int:
        """The integration's revocation epoch now; a token stored under it dies at the next revocation."""
        return await current_epoch(self.redis, client_id)

    @outage
    async def keep(self, token: str, principal: Principal, ttl_seconds: int, epoch: int) -> None:
        await store_token(self.redis, token, principal, ttl_seconds, key=self.signing_key, epoch=epoch)
        await self.redis.set(LAST_USED + principal.client_id, utcnow().isoformat(), ex=LAST_USED_DAYS * 86_400)

    @outage
    async def last_used(self, client_ids: list[str]) -> dict[str, str]:
        """When each integration last got a token (within LAST_USED_DAYS), for the console's list."""
        if not client_ids:
            return {}
        values = await self.redis.mget([LAST_USED + c for c in client_ids])
        return {c: v.decode() for c, v in zip(client_ids, values, strict=True) if v}

    @outage
    async def revoke_all(self, client_id: str) -> int:
        """End every live token of an integration at once; returns how many there were."""
        return await revoke_tokens(self.redis, client_id)
