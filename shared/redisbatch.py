"""Redis commands of concurrent requests, sent together.

Under a burst an ingest replica has dozens of imports at the same step at once: their rate-limit
checks, their reservations, their acceptances. Each was a Redis round trip of its own through
redis-py, which costs about 80-120 µs of the caller's CPU per command (pool checkout under an
asyncio condition, a timeout, the retry wrapper, a write and a read) against about 15 µs for the
round trip itself. `RedisBatch` sends the commands issued in the same turn of the event loop as
one pipeline: one checkout, one write, one read for all of them, each caller awaiting its own
reply (or its own error). A lone request pays one turn of the loop more, nothing else.

It is not a transaction: the commands of different callers only travel together; each is the
same command it would be alone, and Redis runs it alone. As for a command sent alone, redis-py's
retry (shared.service.make_redis: a connection lost or timed out) sends the batch again, so a
command whose reply was lost may run twice: the commands sent through it are idempotent, or
(the rate limit's token) harmless to repeat.
"""

import asyncio
import hashlib
from collections.abc import Awaitable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

MAX_BATCH = 128  # commands per pipeline at most: a bigger turn sends several


class RedisBatch:
    """`register_script` and `set` as on redis.asyncio.Redis, their commands batched per loop turn."""

    def __init__(self, redis: Any, max_batch: int = MAX_BATCH) -> None:
        self.redis, self.max_batch = redis, max_batch
        self._queue: list[tuple[tuple[Any, ...], asyncio.Future]] = []
        self._flushing = False
        self._sending: set[asyncio.Task] = set()  # the event loop keeps only weak references to tasks
        self.pipelines = self.commands = 0  # sent so far (what a test and a benchmark read)

    def execute_command(self, *args: Any) -> Awaitable[Any]:
        """The reply of one command, sent with the others issued in this turn of the loop."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((args, future))
        if not self._flushing:
            self._flushing = True
            loop.call_soon(self._flush)  # after every callback ready in this turn: they join it
        return future

    async def set(self, name: str, value: Any, ex: int | None = None, nx: bool = False) -> bool | None:
        args: tuple[Any, ...] = ("SET", name, value)
        if ex is not None:
            args += ("EX", ex)
        if nx:
            args += ("NX",)
        return await self.execute_command(*args)

    def register_script(self, source: str) -> "BatchedScript":
        return BatchedScript(self, source)

    async def aclose(self) -> None:
        """Wait until every command queued has been sent and answered (before the Redis client closes)."""
        while self._sending or self._queue:
            if self._sending:
                await asyncio.gather(*self._sending, return_exceptions=True)
            else:
                await asyncio.sleep(0)  # the turn's flush is scheduled: let it send

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        self._flushing = bool(self._queue)
        if self._flushing:
            loop.call_soon(self._flush)
        task = loop.create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future]]) -> None:
        # A caller that gave up before its command left (a cancelled request) sends nothing.
        if not (batch := [(args, future) for args, future in batch if not future.done()]):
            return
        self.pipelines, self.commands = self.pipelines + 1, self.commands + len(batch)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for args, _ in batch:
                    pipe.execute_command(*args)
                replies = await pipe.execute(raise_on_error=False)
            for (_, future), reply in zip(batch, replies, strict=True):
                if future.done():  # its caller gave up meanwhile: the command ran all the same
                    continue
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except asyncio.CancelledError:  # the service stopping: its callers see Redis gone, not a cancellation
            _fail(batch, RedisConnectionError("the Redis batch was stopped before its replies came"))
            raise
        except Exception as exc:  # noqa: BLE001 - Redis unreachable: every caller of the batch gets the error
            _fail(batch, exc)


def _fail(batch: list[tuple[tuple[Any, ...], asyncio.Future]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)


class BatchedScript:
    """A Lua script run by EVALSHA within a batch. When Redis does not have it (the first run,
    after a restart or a flush), one SCRIPT LOAD serves every caller that found it missing, and
    they run it again within a batch."""

    def __init__(self, batch: RedisBatch, source: str) -> None:
        self.batch, self.source = batch, source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self._loading: asyncio.Future | None = None

    async def __call__(self, keys: list[Any], args: list[Any]) -> Any:
        command = ("EVALSHA", self.sha, len(keys), *keys, *args)
        try:
            return await self.batch.execute_command(*command)
        except NoScriptError:
            await self._load()
            return await self.batch.execute_command(*command)

    async def _load(self) -> None:
        if self._loading is None or self._loading.done():
            self._loading = asyncio.ensure_future(self.batch.redis.script_load(self.source))
            # Its error is read even when every caller waiting for it gave up (no "never retrieved").
            self._loading.add_done_callback(lambda load: load.cancelled() or load.exception())
        await asyncio.shield(self._loading)  # a caller that gives up does not stop the others' load
