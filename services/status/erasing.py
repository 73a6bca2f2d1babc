"""Erasing jobs from the status service: on request (DELETE), by retention, an organization's all.

Erasure destroys the job's data key first: from that moment no copy of its events (the topics,
a snapshot, a backup) opens any more. Then its read-model rows and its Redis keys go, and
JobErased tells the other consumers (the geocoder's cache, the notifier's pending webhooks, a
rebuild) to drop what they kept.
"""

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from uuid import NAMESPACE_URL, uuid5

from services.status.adapters.erasure import ErasedJob, Erasure
from services.status.adapters.outcomes import OutcomePublisher
from services.status.handlers import Publish
from services.status.metrics import ERASED_JOBS
from shared.background import Background
from shared.errors import Problem
from shared.events import JobErased, utcnow
from shared.pii import DataKeys

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Eraser:
    """What erasing a job needs: the read model, the data keys, the Redis mirror and the bus."""

    erasure: Erasure
    keys: DataKeys
    outcomes: OutcomePublisher
    publish: Publish


def erased_event(org_id: str, job_id: str, reason: str, correlation_id: str = "") -> JobErased:
    # One id per job: a DELETE retried, the retention task and an organization's erasure that
    # meet on one job publish the same event, which every consumer applies once.
    event_id = uuid5(NAMESPACE_URL, f"routemate:JobErased:{job_id}")
    return JobErased(event_id=event_id, org_id=org_id, job_id=job_id, reason=reason, correlation_id=correlation_id)


async def erase_job(
    eraser: Eraser, org_id: str, job_id: str, reason: str = "request", correlation_id: str = ""
) -> bool:
    """Erase one job of the organization; True when it was erased before (the DELETE is idempotent).
    404 when the organization has no such job."""
    owner = await asyncio.to_thread(eraser.erasure.owner, job_id)
    if owner != org_id:
        raise Problem(404, "job_not_found", "No such job for this organization.")
    started = time.perf_counter()
    await eraser.keys.destroy([job_id])  # first: from here on, nothing of it in the log opens
    gone = await asyncio.to_thread(eraser.erasure.erase, org_id, job_id, reason)
    await eraser.outcomes.forget(org_id, job_id, gone.external_job_id if gone else None)
    await eraser.publish(erased_event(org_id, job_id, reason, correlation_id))
    if gone is not None and not gone.already:
        ERASED_JOBS.labels(reason).inc()
        log.info("erased job %s (%s) in %.1f ms", job_id, reason, (time.perf_counter() - started) * 1000)
    return bool(gone and gone.already)


async def forget_erased(eraser: Eraser, erased: list[ErasedJob]) -> None:
    """After the projection erased jobs' rows (JobErased, OrganizationErased): their data keys and
    Redis entries go too; an organization's jobs are announced one by one (the geocoder's cache)."""
    await eraser.keys.destroy([gone.job_id for gone in erased])
    for gone in erased:
        await eraser.outcomes.forget(gone.org_id, gone.job_id, gone.external_job_id)
        if gone.reason == "organization":
            await eraser.publish(erased_event(gone.org_id, gone.job_id, gone.reason))
            ERASED_JOBS.labels(gone.reason).inc()


@dataclass(frozen=True)
class RetentionPolicy:
    """The operator's side of retention: a platform-wide override and a cap (days; None: unset)."""

    platform_days: float | None = None
    cap_days: float | None = None
    batch: int = 500


async def erase_expired(eraser: Eraser, policy: RetentionPolicy, now: datetime | None = None) -> int:
    """One pass of the retention task: finished jobs past their retention, erased; how many."""
    expired = await asyncio.to_thread(
        eraser.erasure.expired, now or utcnow(), policy.platform_days, policy.cap_days, policy.batch
    )
    for job in expired:
        await erase_job(eraser, job.org_id, job.job_id, "retention")
    return len(expired)


class RetentionTask(Background):
    """Runs the retention pass every `every_s` seconds for as long as the service lives."""

    def __init__(self, eraser: Eraser, policy: RetentionPolicy, every_s: float) -> None:
        self.eraser, self.policy, self.every_s = eraser, policy, every_s

    async def run(self) -> None:
        while True:
            try:
                if (n := await erase_expired(self.eraser, self.policy)) > 0:
                    log.info("retention erased %d finished jobs", n)
            except Exception as exc:  # noqa: BLE001 - Redis, Kafka or the database is down: next pass
                log.warning("retention pass failed (%s: %s); retrying", type(exc).__name__, exc)
            await asyncio.sleep(self.every_s)
