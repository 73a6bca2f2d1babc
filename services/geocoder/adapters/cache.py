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

    @staticmethod
    def job_key(job_id: str) -> str:
        """The cache keys one job's addresses created: what erasing the job deletes."""
        return f"rm:geojob:{job_id}"

    async def put(self, address: str, found: Found | None, job_id: str | None = None) -> None:
        value = json.dumps(found.__dict__ if found else {})
        ttl = self.ttl_s if found else self.failure_ttl_s
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(self.key(address), value, ex=ttl)
                if job_id is not None:
                    pipe.sadd(self.job_key(job_id), self.key(address))
                    pipe.expire(self.job_key(job_id), self.ttl_s)  # outlives every entry it names
                await pipe.execute()
        except (RedisError, OSError):
            log.warning("geocode cache unavailable; result not cached")

    async def forget_job(self, job_id: str) -> int:
        """Delete the entries the job's addresses created; how many there were."""
        names = [n.decode() if isinstance(n, bytes) else n for n in await self.redis.smembers(self.job_key(job_id))]
        await self.redis.delete(*names, self.job_key(job_id))
        return len(names)


class NoCache:
    """Every address is looked up afresh: for a one-off run that has nothing to share a cache with."""

    async def get(self, address: str) -> object:
        return MISS

    async def put(self, address: str, found: Found | None, job_id: str | None = None) -> None:
        return None

    async def forget_job(self, job_id: str) -> int:
        return 0
