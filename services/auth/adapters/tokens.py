"""The token store: issued tokens by digest in Redis, signed, in the layout `shared.tokens` verifies."""

from redis.asyncio import Redis

from services.auth.adapters import redis_outage_as_connection_error as outage
from shared.tokens import Principal, current_epoch, revoke_tokens, store_token


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

    @outage
    async def revoke_all(self, client_id: str) -> int:
        """End every live token of an integration at once; returns how many there were."""
        return await revoke_tokens(self.redis, client_id)
