"""Every service's Redis client is bounded and queues a burst instead of refusing it.

redis-py's default asyncio pool refuses the 101st concurrent command with "Too many connections";
under a 200-job burst the status service lost its outcomes and heads that way (jobs then stayed
"in flight" for their organization until the TTL). make_redis gives a blocking pool instead.
"""

import asyncio
import uuid

from shared.service import make_redis
from shared.settings import PlatformSettings
from shared.testing.stack import REDIS_URL


async def test_a_burst_of_callers_waits_for_the_bounded_pool_and_every_command_lands():
    redis = make_redis(PlatformSettings(redis_url=REDIS_URL, redis_max_connections=4))
    key = f"rm:test:pool:{uuid.uuid4().hex}"
    try:
        counts = await asyncio.gather(*(redis.incr(key) for _ in range(300)))
        assert sorted(counts) == list(range(1, 301))
        pool = redis.connection_pool  # never more connections than the cap were opened
        assert len(pool._available_connections) + len(pool._in_use_connections) <= 4
    finally:
        await redis.delete(key)
        await redis.aclose()
