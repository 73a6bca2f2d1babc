"""A rate per integration on minting tokens: every mint is a Redis key and an audit event, so a
client that mints in a loop instead of reusing its token is slowed down.

The bucket is taken after the secret was checked (at the point the token would be stored), so
someone who only knows a client_id cannot spend that integration's budget.
"""

from typing import Any

from services.auth.adapters import redis_outage_as_connection_error as outage
from services.auth.adapters.tokens import TokenStore
from shared.ratelimit import RateLimiter
from shared.tokens import Principal


class MintRateLimited(Exception):
    """This integration minted too many tokens lately; `headers` say when to come back."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("token mint rate exceeded")
        self.headers = headers


class RateLimitedTokens:
    """The token store with a token bucket per client_id in front of `keep`."""

    def __init__(self, tokens: TokenStore, limiter: RateLimiter) -> None:
        self.tokens, self.limiter = tokens, limiter

    async def keep(self, token: str, principal: Principal, *args: Any, **kwargs: Any) -> None:
        decision = await outage(self.limiter.take)(principal.client_id)
        if not decision.allowed:
            raise MintRateLimited(decision.headers())
        await self.tokens.keep(token, principal, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tokens, name)
