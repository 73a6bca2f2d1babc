"""Every service's Redis client is bounded and queues a burst instead of refusing it.

redis-py's default asyncio pool refuses the 101st concurrent command with "Too many connections";
under a 200-job burst the status service lost its outcomes and heads that way (jobs then stayed
"in flight" for their organization until the TTL). make_redis gives a blocking pool instead.
"""

import asyncio
import uuid

from redis.exceptions import ResponseError

from services.ingest.adapters import Lanes, Reservations
from shared.channels import inflight_key
from shared.redisbatch import RedisBatch
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


async def test_a_batch_of_concurrent_commands_is_answered_command_by_command_on_redis():
    """shared.redisbatch on the real server: replies in order per caller through a pipeline of a
    bounded pool, an error only for its own command, and a script Redis never saw loaded once."""
    redis = make_redis(PlatformSettings(redis_url=REDIS_URL, redis_max_connections=4))
    batch = RedisBatch(redis)
    counter, text = f"rm:test:batch:{uuid.uuid4().hex}", f"rm:test:batch:{uuid.uuid4().hex}"
    # A script text of its own: Redis has never run it, so its first EVALSHA answers NOSCRIPT.
    script = batch.register_script(f"-- {uuid.uuid4().hex}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])")

    async def incr(key: str) -> int:
        return await batch.execute_command("INCR", key)

    try:
        await redis.set(text, "not a number")
        counts = await asyncio.gather(*(incr(counter) for _ in range(300)))
        assert sorted(counts) == list(range(1, 301))
        assert (batch.pipelines, batch.commands) == (3, 300)  # 128 commands per pipeline at most
        mixed = await asyncio.gather(incr(counter), incr(text), incr(counter), return_exceptions=True)
        assert mixed[0] == 301 and mixed[2] == 302 and isinstance(mixed[1], ResponseError)
        assert await redis.script_exists(script.sha) == [False]
        assert await script(keys=[counter], args=[10]) == 312  # NOSCRIPT: loaded and run alone
        assert await redis.script_exists(script.sha) == [True]
        pipelines = batch.pipelines
        assert await asyncio.gather(script(keys=[counter], args=[1]), script(keys=[counter], args=[1])) in (
            [313, 314],
            [314, 313],
        )
        assert batch.pipelines == pipelines + 1  # both in one pipeline, by EVALSHA
    finally:
        await redis.delete(counter, text)
        await redis.aclose()


async def test_ingests_reservation_script_sent_again_wins_again_on_redis():
    """The Lua of services.ingest.adapters.RESERVE_SCRIPT on the real server: a run sent again
    (its reply lost) finds its own reservation and goes on as the winner; another job's does not."""
    redis = make_redis(PlatformSettings(redis_url=REDIS_URL))
    reservations = Reservations(redis, 600, batch=RedisBatch(redis))
    lanes, org = Lanes(redis, 2, 600), f"org-test-{uuid.uuid4().hex}"
    key = Reservations.key(org, "EXT-1")
    try:
        first = await reservations.reserve_new(key, "job-1", "digest", org, lanes, None)
        again = await reservations.reserve_new(key, "job-1", "digest", org, lanes, None)
        other = await reservations.reserve_new(key, "job-2", "digest", org, lanes, None)
        assert first == again == (None, "normal")
        assert other[1] is None and other[0] is not None and other[0].job_id == "job-1"
        assert await redis.zcard(inflight_key(org)) == 1
    finally:
        await redis.delete(key, inflight_key(org))
        await redis.aclose()
