"""The Redis side of the read model: settled jobs announced to the ingest replicas and kept for
import replays, and each changed job's head (version, status, finished stops) for updates."""

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.channels import (
    JOB_OUTCOME,
    JobHead,
    JobSettled,
    announcement,
    inflight_key,
    jobhead_key,
    outcome_key,
    reservation_key,
    seal_outcome,
)
from shared.pii import DataKeys

log = logging.getLogger(__name__)


def _sealed(settled: JobSettled, key: bytes | None) -> bytes | None:
    """The settled job as status keeps and announces it: sealed under its data key; None once the
    key is gone (the job was erased)."""
    return None if key is None else seal_outcome(settled.model_dump_json(), key, settled.job_id)


class OutcomePublisher:
    """Keeps heads at `jobhead_key` and settled jobs at `outcome_key` for `ttl_seconds`, announces
    the settled ones on JOB_OUTCOME, and takes them off their organization's jobs in flight (which
    pick the lane of its next imports)."""

    def __init__(self, redis: Redis, ttl_seconds: int, keys: DataKeys) -> None:
        """`keys`: the jobs' data keys, which seal each kept outcome (seal_outcome)."""
        self.redis, self.ttl_seconds, self.keys = redis, ttl_seconds, keys

    async def publish(self, settled: JobSettled) -> None:
        """One settled job, stored and announced."""
        await self.publish_all({}, [settled])

    async def publish_all(self, heads: dict[str, JobHead], settled: list[JobSettled]) -> None:
        """All in one transaction. Best effort: without it, waiting clients poll the jobs endpoint,
        an update by re-import answers 412 until the next change writes the head again, and a job
        leaves the jobs in flight when their TTL drops it."""
        if not heads and not settled:
            return
        try:
            # Stored before announced: a replay (or an update) that follows the announcement finds it.
            # Kept packed (the day's outcomes are most of the durable Redis) and sealed, and announced
            # as the same sealed bytes. An erased job's outcome (its key gone) is not kept, and is
            # announced without its view: its waiting import hears that it settled, and answers 202.
            keys = await self.keys.keys(one.job_id for one in settled) if settled else {}
            for job_id in [j for j, key in keys.items() if key is None]:  # erased, or (rare) never given one
                keys[job_id] = await self.keys.key_for(job_id)
            sealed = [(one, _sealed(one, keys.get(one.job_id))) for one in settled]
            async with self.redis.pipeline(transaction=True) as pipe:
                for job_id, head in heads.items():
                    pipe.set(jobhead_key(job_id), head.model_dump_json(), ex=self.ttl_seconds)
                for one, outcome in sealed:
                    if outcome is not None:
                        pipe.set(outcome_key(one.job_id), outcome, ex=self.ttl_seconds)
                for one, outcome in sealed:
                    pipe.publish(JOB_OUTCOME, announcement(one.job_id, outcome))
                for one in settled:
                    pipe.zrem(inflight_key(one.org_id), one.job_id)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning(
                "could not publish %d heads and %d outcomes (%s); waiting clients will poll",
                len(heads),
                len(settled),
                exc,
            )

    async def forget(self, org_id: str, job_id: str, external_job_id: str | None) -> None:
        """An erased job: its head, its kept outcome (the job's public view), its place among the
        jobs in flight, and ingest's reservation of its external id (which may be imported afresh)."""
        names = [jobhead_key(job_id), outcome_key(job_id)]
        if external_job_id is not None:
            names.append(reservation_key(org_id, external_job_id))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(*names)
            pipe.zrem(inflight_key(org_id), job_id)
            await pipe.execute()
