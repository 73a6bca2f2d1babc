"""Access tokens: how they are made, hashed and stored in Redis, and how ingest and status verify them.

Only SHA-256 digests of tokens ever reach Redis; the lookup is by digest, so no token is compared
byte by byte with a stored value.
"""

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.errors import Problem

TOKEN_PREFIX = "rm_at_"
_TOKEN_SHAPE = re.compile(r"^rm_at_[A-Za-z0-9_-]{43,86}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: one integration of one organization."""

    org_id: str
    client_id: str


def new_token() -> str:
    """An opaque bearer token with 256 bits of randomness."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def fingerprint(token: str) -> str:
    """A short, non-reversible name for a token, safe for audit events and logs."""
    return token_digest(token)[:12]


def token_key(digest: str) -> str:
    return f"rm:token:{digest}"


def client_tokens_key(client_id: str) -> str:
    return f"rm:client-tokens:{client_id}"


async def store_token(redis: Redis, token: str, principal: Principal, ttl_s: int) -> None:
    """Keep the token's digest with its owner for `ttl_s` seconds, indexed by integration."""
    digest = token_digest(token)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(token_key(digest), mapping={"org_id": principal.org_id, "client_id": principal.client_id})
        pipe.expire(token_key(digest), ttl_s)
        pipe.sadd(client_tokens_key(principal.client_id), digest)
        pipe.expire(client_tokens_key(principal.client_id), ttl_s, gt=True)
        pipe.expire(client_tokens_key(principal.client_id), ttl_s, nx=True)
        await pipe.execute()


async def revoke_tokens(redis: Redis, client_id: str) -> int:
    """Invalidate every live token of an integration at once; returns how many there were."""
    digests = await redis.smembers(client_tokens_key(client_id))
    async with redis.pipeline(transaction=True) as pipe:
        for digest in digests:
            pipe.delete(token_key(digest.decode() if isinstance(digest, bytes) else digest))
        pipe.delete(client_tokens_key(client_id))
        await pipe.execute()
    return len(digests)


def _invalid_token(detail: str) -> Problem:
    return Problem(
        401, "invalid_token", detail, headers={"WWW-Authenticate": 'Bearer realm="routemate", error="invalid_token"'}
    )


async def verify_token(redis: Redis, authorization: str | None) -> Principal:
    """The caller behind an `Authorization: Bearer` header, or a 401 problem."""
    if not authorization:
        raise Problem(
            401,
            "missing_token",
            "An Authorization: Bearer token is required.",
            headers={"WWW-Authenticate": 'Bearer realm="routemate"'},
        )
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _TOKEN_SHAPE.match(token):
        raise _invalid_token("The access token is malformed.")
    try:
        owner = await redis.hgetall(token_key(token_digest(token)))
    except (RedisError, OSError):
        raise Problem(
            503,
            "token_store_unavailable",
            "Tokens cannot be checked right now; retry shortly.",
            headers={"Retry-After": "2"},
        ) from None
    if not owner:
        raise _invalid_token("The access token is unknown, expired or revoked.")
    get = lambda k: owner.get(k.encode()) or owner.get(k) or b""  # noqa: E731
    value = lambda k: v.decode() if isinstance(v := get(k), bytes) else v  # noqa: E731
    return Principal(org_id=value("org_id"), client_id=value("client_id"))


async def require_integration(request: Request) -> Principal:
    """FastAPI dependency: the verified caller, using the app's Redis client (`app.state.redis`)."""
    return await verify_token(request.app.state.redis, request.headers.get("authorization"))


CurrentIntegration = Annotated[Principal, Depends(require_integration)]
