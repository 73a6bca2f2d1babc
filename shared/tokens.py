"""Access tokens: how they are made, hashed and stored in Redis, and how ingest and status verify them.

Only SHA-256 digests of tokens ever reach Redis; the lookup is by digest, so no token is compared
byte by byte with a stored value. A token record is bound to the server: it carries an HMAC over
(digest, organization, integration, expiry, epoch) keyed by TOKEN_SIGNING_KEY, which only the
services hold, so a record written into Redis by anyone else is refused. The integration's epoch
(bumped by every revocation) is checked too, so a token minted while a revocation ran dies with it.

A service may keep the records it verified in a TokenCache (in-process, bounded, by digest): a
record never changes once written, so only the epoch needs Redis on each request, and a
revocation (which bumps the epoch) still ends every token at once. The cache adds one bound: a
record removed from Redis WITHOUT an epoch bump (a flushed or restored Redis) stops being honoured
within TokenCache.ttl_s (TOKEN_CACHE_SECONDS, 60 by default) at the latest.
"""

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
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


@dataclass(frozen=True)
class _Verified:
    principal: Principal
    epoch: int
    expires_at: int
    cached_at: float


class TokenCache:
    """Token records this process verified (their MAC checked), by token digest: a bounded LRU.

    What it holds is what Redis would answer again: a token record is written once and never
    changed, only deleted (revocation, which also bumps the epoch the callers still check on
    every request, or expiry, checked here against the record's own `exp`). An entry is re-read
    from Redis after `ttl_s` anyway, so a record deleted without an epoch bump stops working
    within `ttl_s`."""

    def __init__(self, size: int = 10_000, ttl_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.size, self.ttl_s, self.clock = size, ttl_s, clock
        self._entries: OrderedDict[str, _Verified] = OrderedDict()

    def get(self, digest: str, now: float) -> tuple[Principal, int] | None:
        """The cached (principal, epoch) of a live token, or None (not cached, stale or expired)."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry.expires_at <= now or self.clock() - entry.cached_at >= self.ttl_s:
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return entry.principal, entry.epoch

    def put(self, digest: str, principal: Principal, epoch: int, expires_at: int) -> None:
        self._entries[digest] = _Verified(principal, epoch, expires_at, self.clock())
        self._entries.move_to_end(digest)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def _bearer_digest(authorization: str | None) -> str:
    """The digest of a well-formed bearer token, or a 401 problem."""
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
    return token_digest(token)


def unknown_token() -> Problem:
    return _invalid_token("The access token is unknown, expired or revoked.")


async def signed_token(
    redis: Redis, authorization: str | None, key: bytes, cache: TokenCache | None = None
) -> tuple[Principal, int]:
    """The caller behind an `Authorization: Bearer` header and the epoch its token was minted
    under, or a 401 problem. The epoch is NOT checked here: the caller compares it with the
    integration's current one (verify_token, or in the same round trip as its rate limit)."""
    digest = _bearer_digest(authorization)
    now = time.time()
    if cache is not None and (hit := cache.get(digest, now)) is not None:
        return hit
    try:
        record = await redis.hgetall(token_key(digest))
    except (RedisError, OSError):
        raise _unavailable() from None
    signed = _signed_principal(record, digest, key, now) if record else None
    if signed is None:
        raise unknown_token()
    if cache is not None:
        cache.put(digest, signed[0], signed[1], int(_text(record, "exp")))
    return signed


async def verify_token(
    redis: Redis, authorization: str | None, key: bytes, cache: TokenCache | None = None
) -> Principal:
    """The caller behind an `Authorization: Bearer` header, or a 401 problem."""
    principal, epoch = await signed_token(redis, authorization, key, cache)
    try:
        current = await current_epoch(redis, principal.client_id)
    except (RedisError, OSError):
        raise _unavailable() from None
    if current != epoch:
        raise unknown_token()
    return principal


async def require_integration(request: Request) -> Principal:
    """FastAPI dependency: the verified caller, using the app's Redis client (`app.state.redis`),
    its settings' token signing key and, when the app keeps one, its TokenCache."""
    state = request.app.state
    cache = getattr(state, "token_cache", None)
    return await verify_token(state.redis, request.headers.get("authorization"), state.settings.signing_key, cache)


CurrentIntegration = Annotated[Principal, Depends(require_integration)]
