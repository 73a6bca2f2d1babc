"""Console sessions in the durable Redis: an opaque id in the cookie, only its SHA-256 digest as
the key. A session ends when unused for `idle` seconds (the key's expiry, renewed on use) or
when `absolute` seconds old (checked on load), whichever comes first."""

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass, field

from redis.asyncio import Redis

PREFIX = "rm:console:session:"


def _key(session_id: str) -> str:
    return PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


@dataclass
class Session:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    created: float = field(default_factory=time.time)
    member_id: str | None = None
    org_id: str | None = None
    email: str | None = None
    role: str | None = None


class SessionStore:
    def __init__(self, redis: Redis, idle_seconds: int, absolute_seconds: int) -> None:
        self.redis, self.idle, self.absolute = redis, idle_seconds, absolute_seconds

    async def start(self, session: Session) -> str:
        """Store a session under a new id; the id goes only to the browser's cookie."""
        session_id = secrets.token_urlsafe(32)
        await self.redis.set(_key(session_id), json.dumps(asdict(session)), ex=self.idle)
        return session_id

    async def load(self, session_id: str | None) -> Session | None:
        """The live session of this id (its idle expiry renewed), or None."""
        if not session_id or len(session_id) > 100:
            return None
        raw = await self.redis.get(_key(session_id))
        if raw is None:
            return None
        session = Session(**json.loads(raw))
        if time.time() - session.created > self.absolute:
            await self.end(session_id)
            return None
        await self.redis.expire(_key(session_id), self.idle)
        return session

    async def end(self, session_id: str | None) -> None:
        if session_id:
            await self.redis.delete(_key(session_id))
