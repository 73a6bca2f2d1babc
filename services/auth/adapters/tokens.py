"""The token store: issued tokens by digest in Redis, in the layout `shared.tokens` verifies."""

from redis.asyncio import Redis

from services.auth.adapters import redis_outage_as_connection_error as outage
from shared.tokens import Principal, revoke_tokens, store_token


class TokenStore:
    """Keeps and revokes bearer tokens; ingest and status read them through `shared.tokens`."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    @outage
    async def keep(self, token: str, principal: Principal, ttl_seconds: int) -> None:
        await store_token(self.redis, token, principal, ttl_seconds)

    @outage
    async def revoke_all(self, client_id: str) -> int:
        """End every live token of an integration at once; returns how many there were."""
        return await revoke_tokens(self.redis, client_id)
