"""The Redis geocode cache, keyed by normalized address; a Redis outage only costs cache hits."""

import hashlib
import json
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.geocoder.handlers import MISS, Found
from services.geocoder.normalize import normalize

log = logging.getLogger(__name__)


class GeocodeCache:
    def __init__(self, redis: Redis, ttl_s: int, failure_ttl_s: int) -> None:
        self.redis, self.ttl_s, self.failure_ttl_s = redis, ttl_s, failure_ttl_s

    @staticmethod
    def key(address: str) -> str:
        return "rm:geo:" + hashlib.sha256(normalize(address).encode()).hexdigest()[:40]

    async def get(self, address: str) -> Found | None | object:
        """A Found, None for a cached failure, or MISS."""
        try:
            raw = await self.redis.get(self.key(address))
        except (RedisError, OSError):
            return MISS
        if raw is None:
            return MISS
        data = json.loads(raw)
        return Found(**data) if data else None

    async def put(self, address: str, found: Found | None) -> None:
        value = json.dumps(found.__dict__ if found else {})
        try:
            await self.redis.set(self.key(address), value, ex=self.ttl_s if found else self.failure_ttl_s)
        except (RedisError, OSError):
            log.warning("geocode cache unavailable; result not cached")


class NoCache:
    """Every address is looked up afresh: for a one-off run that has nothing to share a cache with."""

    async def get(self, address: str) -> object:
        return MISS

    async def put(self, address: str, found: Found | None) -> None:
        return None
