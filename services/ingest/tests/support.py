"""Fakes of ingest's own dependencies (the bus, the rate limiter) and what the status service does
when a job settles, for the unit and component tests beside the service."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from services.ingest.adapters import CORRECT_SCRIPT, RESERVE_SCRIPT
from services.ingest.settings import IngestSettings
from shared.channels import JOB_OUTCOME, JobSettled, announcement, inflight_key, outcome_key, pack_outcome, seal_outcome
from shared.events import Event, ImportRequested
from shared.pii import DataKeys
from shared.ratelimit import RateDecision
from shared.testing.fakes import MemoryRedis

WEEK = 7 * 86_400


def data_keys(redis: MemoryRedis) -> DataKeys:
    """The jobs' data keys as the status service and ingest share them (the settings' key-encryption
    key, which an ingest app made in a test uses too)."""
    return DataKeys(redis, IngestSettings().kek_material)


def reserve_script(redis: MemoryRedis) -> Callable[..., Awaitable[list[Any]]]:
    """services.ingest.adapters.RESERVE_SCRIPT in Python, for MemoryRedis."""

    async def reserve(keys: list[str], args: list[Any]) -> list[Any]:
        redis._check()
        (key, inflight, data_key), (value, ttl, now, oldest, job_id, inflight_ttl, blob) = keys, args
        if not await redis.set(key, value, ex=float(ttl), nx=True):
            held = await redis.get(key)
            if held is None or json.loads(held).get("job_id") != job_id:
                return [0, held]
        await redis.zremrangebyscore(inflight, "-inf", oldest)
        await redis.zadd(inflight, {job_id: now}, nx=True)
        await redis.expire(inflight, float(inflight_ttl))
        rank = await redis.zrank(inflight, job_id)
        if blob == b"":
            return [1, rank]
        await redis.set(data_key, blob, nx=True)
        return [1, rank, await redis.get(data_key)]

    return reserve


MemoryRedis.scripts[RESERVE_SCRIPT] = reserve_script


def correct_script(redis: MemoryRedis) -> Callable[..., Awaitable[int]]:
    """services.ingest.adapters.CORRECT_SCRIPT in Python, for MemoryRedis."""

    async def correct(keys: list[str], args: list[Any]) -> int:
        redis._check()
        held, (was, value) = await redis.get(keys[0]), args
        as_bytes = [v.encode() if isinstance(v, str) else v for v in (held, was)]
        if held is None or as_bytes[0] != as_bytes[1]:
            return 0
        ttl = await redis.ttl(keys[0])
        await redis.set(keys[0], value, ex=ttl if ttl and ttl > 0 else None)
        return 1

    return correct


MemoryRedis.scripts[CORRECT_SCRIPT] = correct_script


class FakeBus:
    """Records what it was asked to publish; `fail` makes Kafka refuse, `delay` makes it slow, and
    `then` runs on each published event (the rest of the pipeline, when a test needs an outcome)."""

    def __init__(
        self, delay: float = 0.0, fail: bool = False, then: Callable[[Any], Awaitable[Any]] | None = None
    ) -> None:
        self.delay, self.fail, self.then = delay, fail, then
        self.attempts: list[Event] = []
        self.published: list[Event] = []

    async def publish(self, event: Event) -> None:
        self.attempts.append(event)
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ConnectionError("kafka down")
        self.published.append(event)
        if self.then is not None:
            await self.then(event)


class FakeLimiter:
    """A bucket of `burst` imports per integration that never refills; `down` is a Redis outage."""

    def __init__(self, burst: int = 100) -> None:
        self.burst, self.taken, self.down = burst, dict[str, int](), False

    async def take_current(self, client_id: str, epoch_key: str, epoch: int) -> RateDecision | None:
        """take() while the token's epoch is current (no revocation in these fakes)."""
        return await self.take(client_id)

    async def take(self, client_id: str) -> RateDecision:
        if self.down:
            raise ConnectionError("redis down")
        taken = self.taken[client_id] = self.taken.get(client_id, 0) + 1
        allowed = taken <= self.burst
        return RateDecision(allowed, self.burst, max(self.burst - taken, 0), 0 if allowed else 2, taken)


def route_view(event: ImportRequested, status: str = "assigned") -> dict[str, Any]:
    """A job's public view, trimmed to what the tests look at."""
    stops = [{"stop_id": s.stop_id, "external_stop_id": s.external_stop_id} for s in event.job.stops]
    return {"job_id": event.job_id, "external_job_id": event.job.external_job_id, "status": status, "stops": stops}


async def settle(
    redis: MemoryRedis, event: ImportRequested, org_id: str | None = None, announce: bool = True, kept: str = "sealed"
) -> dict:
    """What the status service does when a job settles: keep its outcome for replays (sealed under
    the job's data key; or, as releases before kept it, "packed" or "plain"), then announce it, and
    take it off its organization's jobs in flight."""
    view = route_view(event)
    message = JobSettled(job_id=event.job_id, org_id=org_id or event.org_id, job=view).model_dump_json()
    if kept == "sealed":
        key = await data_keys(redis).key_for(event.job_id)
        assert key is not None
        value: bytes | str = seal_outcome(message, key, event.job_id)
    else:
        value = pack_outcome(message) if kept == "packed" else message
    await redis.set(outcome_key(event.job_id), value, ex=WEEK)
    await redis.zrem(inflight_key(event.org_id), event.job_id)
    if announce:  # sealed: as status announces it; else the JobSettled JSON, as releases before did
        await redis.publish(JOB_OUTCOME, announcement(event.job_id, value) if kept == "sealed" else message)
    return view
