"""The Redis side of a settled job: announced to the ingest replicas, and kept for import replays."""

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.channels import JOB_OUTCOME, JobSettled, inflight_key, outcome_key

log = logging.getLogger(__name__)


class OutcomePublisher:
    """Publishes a settled job on JOB_OUTCOME, keeps it at `outcome_key` for `ttl_seconds`, and takes
    it off its organization's jobs in flight (which pick the lane of its next imports)."""

    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self.redis, self.ttl_seconds = redis, ttl_seconds

    async def publish(self, settled: JobSettled) -> None:
        """All in one transaction. Best effort: without it, waiting clients poll the jobs endpoint
        (and the job leaves the jobs in flight when their TTL drops it)."""
        message = settled.model_dump_json()
        try:
            # Stored before it is announced: a replay that follows the announcement finds it.
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(outcome_key(settled.job_id), message, ex=self.ttl_seconds)
                pipe.publish(JOB_OUTCOME, message)
                pipe.zrem(inflight_key(settled.org_id), settled.job_id)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("could not publish the outcome of %s (%s); waiting clients will poll", settled.job_id, exc)
