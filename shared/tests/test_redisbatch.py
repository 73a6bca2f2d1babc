"""RedisBatch: the commands of concurrent callers travel as one pipeline, each caller getting its own
reply or its own error (over the in-memory Redis; tests/e2e/test_redis_pool.py runs them on Redis)."""

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from shared.ratelimit import BUCKET_SCRIPT, RateLimiter
from shared.redisbatch import RedisBatch
from shared.testing.fakes import MemoryRedis


async def test_commands_issued_in_one_turn_travel_together_and_each_caller_gets_its_own_reply():
    redis = MemoryRedis()
    batch = RedisBatch(redis)
    # Two callers per key: the first SET NX wins, the second is refused, as if each went alone.
    replies = await asyncio.gather(*(batch.set(f"k{i // 2}", f"v{i}", ex=60, nx=True) for i in range(10)))
    assert replies == [True, None] * 5
    assert (batch.pipelines, batch.commands) == (1, 10)
    assert [await redis.get(f"k{i}") for i in range(5)] == [f"v{2 * i}".encode() for i in range(5)]
    assert 0 < await redis.ttl("k0") <= 60


async def test_callers_one_after_another_each_send_their_own_command():
    redis = MemoryRedis()
    batch = RedisBatch(redis)
    for i in range(3):
        assert await batch.set("k", str(i)) is True
    assert (batch.pipelines, batch.commands) == (3, 3)
    assert await redis.get("k") == b"2"


async def test_a_batched_rate_limiter_decides_as_one_that_goes_alone():
    alone, batched = MemoryRedis(), MemoryRedis()
    batch = RedisBatch(batched)
    one_by_one = RateLimiter(alone, 1, 5, clock=lambda: 100.0)
    together = RateLimiter(batched, 1, 5, clock=lambda: 100.0, batch=batch)
    one = [await one_by_one.take("client") for _ in range(8)]
    many = await asyncio.gather(*(together.take("client") for _ in range(8)))
    assert many == one and [d.allowed for d in many] == [True] * 5 + [False] * 3
    # One pipeline found the script missing (a Redis that never ran it), one ran it for all eight.
    assert (batch.pipelines, batched.script_loads) == (2, 1)


async def test_one_commands_error_fails_only_its_caller():
    redis = MemoryRedis()
    batch = RedisBatch(redis)

    async def unknown() -> object:
        return await batch.execute_command("NOSUCHCOMMAND", "a")

    replies = await asyncio.gather(batch.set("a", "1"), unknown(), batch.set("b", "2"), return_exceptions=True)
    assert replies[0] is True and replies[2] is True
    assert isinstance(replies[1], ResponseError)
    assert batch.pipelines == 1


async def test_a_script_redis_does_not_have_is_loaded_once_for_every_caller_that_found_it_missing():
    redis = MemoryRedis()  # as a Redis just started: no script loaded
    batch = RedisBatch(redis)
    script = batch.register_script(BUCKET_SCRIPT)
    replies = await asyncio.gather(*(script(keys=["rm:rl:c"], args=[1, 5, 100.0]) for _ in range(6)))
    assert sorted(float(tokens) for _, tokens in replies) == [0.0, 0.0, 1.0, 2.0, 3.0, 4.0]
    assert [int(allowed) for allowed, _ in replies].count(1) == 5  # a burst of 5: the sixth refused
    assert redis.script_loads == 1 and script.sha in redis.loaded
    assert batch.pipelines == 2  # the batch that found it missing, and the same calls again
    redis.loaded.clear()  # as after a Redis restart
    allowed, _ = await script(keys=["rm:rl:other"], args=[1, 5, 100.0])
    assert int(allowed) == 1 and redis.script_loads == 2


async def test_redis_down_fails_every_caller_of_the_batch_and_the_next_batch_works_again():
    redis = MemoryRedis()
    batch = RedisBatch(redis)
    redis.down = True
    replies = await asyncio.gather(*(batch.set(f"k{i}", "v") for i in range(4)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in replies)
    redis.down = False
    assert await asyncio.gather(*(batch.set(f"k{i}", "v") for i in range(4))) == [True] * 4


async def test_a_turn_with_more_commands_than_a_pipeline_takes_sends_several():
    redis = MemoryRedis()
    batch = RedisBatch(redis, max_batch=128)
    replies = await asyncio.gather(*(batch.set(f"k{i}", str(i)) for i in range(300)))
    assert replies == [True] * 300
    assert (batch.pipelines, batch.commands) == (3, 300)
    assert await redis.get("k299") == b"299"


async def test_a_caller_that_gives_up_before_its_command_left_sends_nothing_and_the_others_are_answered():
    redis = MemoryRedis()
    batch = RedisBatch(redis)
    given_up = asyncio.ensure_future(batch.set("gone", "1"))
    kept = asyncio.ensure_future(batch.set("kept", "1"))
    await asyncio.sleep(0)  # both commands queued, the batch not sent yet
    given_up.cancel()
    assert await kept is True
    with pytest.raises(asyncio.CancelledError):
        await given_up
    assert await redis.get("gone") is None and batch.commands == 1


async def test_a_stopped_batch_fails_its_callers_as_redis_gone_not_as_cancelled():
    waiting = asyncio.Event()

    class Stalled(MemoryRedis):  # a pipeline whose replies never come
        def pipeline(self, transaction: bool = True):
            pipe = super().pipeline(transaction)

            async def execute(raise_on_error: bool = True):
                waiting.set()
                await asyncio.Event().wait()

            pipe.execute = execute
            return pipe

    batch = RedisBatch(Stalled())
    caller = asyncio.ensure_future(batch.set("k", "1"))
    await waiting.wait()
    for task in list(batch._sending):
        task.cancel()
    await batch.aclose()
    with pytest.raises(RedisConnectionError):
        await caller
