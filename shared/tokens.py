"""Access tokens: how they are made, hashed and stored in Redis, and how ingest and status verify them.

Only SHA-256 digests of tokens ever reach Redis; the lookup is by digest, so no token is compared
byte by byte with a stored value. A token record is bound to the server: it carries an HMAC over
(digest, organization, integration, expiry, epoch) keyed by TOKEN_SIGNING_KEY, which only the
services hold, so a record written into Redis by anyone else is refused. The integration's epoch
(bumped by every revocation) is checked too, so a token minted while a revocation ran dies with it.
"""

import hashlib
import hmac
import re
import secrets
import time
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


def client_epoch_key(client_id: str) -> str:
    """The integration's revocation counter: a token minted under an older epoch is dead."""
    return f"rm:client-epoch:{client_id}"


def record_mac(key: bytes, digest: str, principal: Principal, expires_at: int, epoch: int) -> str:
    """HMAC-SHA256 binding a token record's fields to the holder of the signing key."""
    message = "\n".join(("rm-token-v1", digest, principal.org_id, principal.client_id, str(expires_at), str(epoch)))
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def signed_record(key: bytes, digest: str, principal: Principal, expires_at: int, epoch: int) -> dict[str, str]:
    """The fields kept under a token's digest: its owner, expiry (unix seconds), epoch and MAC."""
    return {
        "org_id": principal.org_id,
        "client_id": principal.client_id,
        "exp": str(expires_at),
        "epoch": str(epoch),
        "mac": record_mac(key, digest, principal, expires_at, epoch),
    }


async def current_epoch(redis: Redis, client_id: str) -> int:
    """The integration's revocation epoch (0 until its first revocation)."""
    value = await redis.get(client_epoch_key(client_id))
    return int(value or 0)


async def store_token(
    redis: Redis, token: str, principal: Principal, ttl_s: int, *, key: bytes, epoch: int, now: float | None = None
) -> None:
    """Keep the token's signed record for `ttl_s` seconds, indexed by integration. `epoch` is the
    integration's epoch read BEFORE its credentials were checked (so a revocation in between wins)."""
    digest = token_digest(token)
    expires_at = int(now if now is not None else time.time()) + ttl_s
    record = signed_record(key, digest, principal, expires_at, epoch)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(token_key(digest), mapping=record)
        pipe.expire(token_key(digest), ttl_s)
        pipe.sadd(client_tokens_key(principal.client_id), digest)
        pipe.expire(client_tokens_key(principal.client_id), ttl_s, gt=True)
        pipe.expire(client_tokens_key(principal.client_id), ttl_s, nx=True)
        await pipe.execute()


async def revoke_tokens(redis: Redis, client_id: str) -> int:
    """Invalidate every live token of an integration at once (and any being minted right now,
    through the epoch); returns how many were stored."""
    await redis.incr(client_epoch_key(client_id))
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


def _unavailable() -> Problem:
    return Problem(
        503,
        "token_store_unavailable",
        "Tokens cannot be checked right now; retry shortly.",
        headers={"Retry-After": "2"},
    )


def _text(record: dict, field: str) -> str:
    value = record.get(field.encode(), record.get(field, b""))
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _signed_principal(record: dict, digest: str, key: bytes, now: float) -> tuple[Principal, int] | None:
    """The record's owner and epoch if its MAC is the server's and it has not expired."""
    principal = Principal(org_id=_text(record, "org_id"), client_id=_text(record, "client_id"))
    exp, epoch = _text(record, "exp"), _text(record, "epoch")
    if not (exp.isdigit() and epoch.isdigit() and len(exp) < 16 and len(epoch) < 16):
        return None
    expected = record_mac(key, digest, principal, int(exp), int(epoch))
    if not hmac.compare_digest(expected.encode(), _text(record, "mac").encode()) or int(exp) <= now:
        return None
    return principal, int(epoch)


async def verify_token(redis: Redis, authorization: str | None, key: bytes) -> Principal:
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
    digest = token_digest(token)
    try:
        record = await redis.hgetall(token_key(digest))
        signed = _signed_principal(record, digest, key, time.time()) if record else None
        if signed is not None and await current_epoch(redis, signed[0].client_id) != signed[1]:
            signed = None
    except (RedisError, OSError):
        raise _unavailable() from None
    if signed is None:
        raise _invalid_token("The access token is unknown, expired or revoked.")
    return signed[0]


async def require_integration(request: Request) -> Principal:
    """FastAPI dependency: the verified caller, using the app's Redis client (`app.state.redis`)
    and its settings' token signing key."""
    state = request.app.state
    return await verify_token(state.redis, request.headers.get("authorization"), state.settings.signing_key)


CurrentIntegration = Annotated[Principal, Depends(require_integration)]
