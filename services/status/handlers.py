"""The status service's use-cases: project events and follow them up, record stop updates, read jobs.

Plain functions of (typed input, the adapters they need); the database is synchronous, so its
calls run in a worker thread and the event loop keeps serving.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from services.status.adapters.erasure import ErasedJob
from services.status.adapters.outcomes import OutcomePublisher
from services.status.adapters.projection import Projection, Settles
from services.status.adapters.queries import BadCursor, FoundJob, JobFilter, JobQueries, encode_cursor
from services.status.metrics import JOB_LATENCY, RATE_LIMITED
from services.status.views import job_head, job_view
from shared import ratelimit
from shared.channels import JobSettled
from shared.errors import Problem
from shared.events import Event, JobErased, OrganizationErased, RouteOptimized, StopStatusChanged, utcnow
from shared.events.stops import ProofOfDelivery, StopOutcome
from shared.inputs import REPORT_FUTURE, REPORT_PAST, within
from shared.pii import DataKeys, org_subject
from shared.ratelimit import RateLimiter
from shared.vocabulary import JobStatus, StopStatus, as_utc

Publish = Callable[[Event], Awaitable[None]]
# A job whose stops cannot be reported on yet (not routed) or any more (it failed, was cancelled).
NOT_UPDATABLE = frozenset({JobStatus.PENDING, JobStatus.PROCESSING, JobStatus.FAILED, JobStatus.CANCELLED})


class FollowUp(Enum):
    """What an applied event may set off once its batch is committed."""

    OBSERVE_LATENCY = "observe_latency"  # import accepted -> route published, for a routed job
    ANNOUNCE_SETTLED = "announce_settled"  # the outcome of the job the event settled


@dataclass(frozen=True)
class ReadModel:
    """What projecting needs: the projection, its queries, the Redis mirror, and the data keys
    that open the events' personal fields (None: events are taken as they come, in tests)."""

    projection: Projection
    queries: JobQueries
    outcomes: OutcomePublisher
    keys: DataKeys | None = None
    # Called with the jobs a batch erased (JobErased, OrganizationErased), once it is committed:
    # their keys and Redis entries go, and an organization's jobs are announced as JobErased.
    erased: Callable[[list[ErasedJob]], Awaitable[None]] | None = None


async def project(
    events: list[Event],
    routes: Mapping[type[Event], frozenset[FollowUp]],
    reader: ReadModel,
    kept_sealed: frozenset[type[Event]] = frozenset(),
) -> list[str | None]:
    """Apply the events `routes` names in one transaction, then each one's follow-ups, and mirror
    the head of every job the batch changed; per event applied, the id of the job it settled.
    Personal fields are opened first: an erased job's read ERASED (and its tombstone drops them);
    those of the types in `kept_sealed` (whose personal fields nothing here reads) stay sealed."""
    projection, queries, outcomes = reader.projection, reader.queries, reader.outcomes
    taken = [event for event in events if type(event) in routes]
    if reader.keys is not None:
        if erasures := erased_subjects(taken):  # their keys leave this process's cache before anything opens
            reader.keys.forget(erasures)
        opening = [i for i, event in enumerate(taken) if type(event) not in kept_sealed]
        for i, event in zip(opening, await reader.keys.open_all([taken[i] for i in opening]), strict=True):
            taken[i] = event
    batch = await asyncio.to_thread(projection.apply_batch, taken)
    if batch.erased and reader.erased is not None:
        await reader.erased(batch.erased)
    announced: list[JobSettled] = []
    for event, settles in zip(taken, batch.settled, strict=True):
        if (settled := await follow_up(event, settles, routes[type(event)], queries, batch.rows)) is not None:
            announced.append(settled)
    # The changed jobs' heads from the rows the batch committed (a job the batch did not hold, as
    # a driver's registration assigns, is read back).
    held = [batch.rows[job_id] for job_id in sorted(batch.changed) if job_id in batch.rows]
    if missing := sorted(batch.changed - batch.rows.keys()):
        held += await asyncio.to_thread(queries.heads, missing)
    await outcomes.publish_all({job.job_id: job_head(job, stops) for job, stops in held}, announced)
    return [settles.job_id if settles else None for settles in batch.settled]


def erased_subjects(events: list[Event]) -> list[str]:
    """Whose data keys the events say are destroyed: an erased job's, an erased organization's."""
    found = []
    for event in events:
        if isinstance(event, JobErased):
            found.append(event.job_id)
        elif isinstance(event, OrganizationErased):
            found.append(org_subject(event.org_id))
    return found


async def follow_up(
    event: Event,
    settles: Settles | None,
    wanted: frozenset[FollowUp],
    queries: JobQueries,
    held: Mapping[str, FoundJob] | None = None,
) -> JobSettled | None:
    """The latency of a routed job, and the announcement of a settled one; one read serves both
    (none when `held`, the rows the batch committed, has the job)."""
    observe = FollowUp.OBSERVE_LATENCY in wanted and isinstance(event, RouteOptimized)
    announce = FollowUp.ANNOUNCE_SETTLED in wanted and settles is not None
    if not (observe or announce):
        return None
    found = (held or {}).get(event.job_id)
    if found is None:
        found = await asyncio.to_thread(queries.job, event.org_id, job_id=event.job_id)
    elif not found[0].imported or found[0].org_id != event.org_id:
        found = None  # as the query finds it: only an imported job of the event's organization
    if found is None:
        return None  # routed before its import arrived: neither a latency nor an outcome yet
    if observe:
        observe_job_latency(event, found)
    if not announce:
        return None
    job, stops = found
    rejected = settles.rejected_spec_version
    return JobSettled(job_id=job.job_id, org_id=job.org_id, job=job_view(job, stops), rejected_spec_version=rejected)


def observe_job_latency(event: RouteOptimized, found: FoundJob) -> None:
    """Import accepted -> route published, into the end-to-end latency histogram."""
    accepted_at = as_utc(found[0].accepted_at)
    if accepted_at is not None:
        JOB_LATENCY.observe(max(0.0, (event.occurred_at - accepted_at).total_seconds()))


@dataclass(frozen=True)
class StopReport:
    """What a driver app or an integrator reports about one stop."""

    status: StopOutcome
    occurred_at: datetime | None = None
    reason: str | None = None
    notes: str | None = None
    recipient_name: str | None = None
    signature_url: str | None = None
    photo_urls: tuple[str, ...] = ()

    def proof(self) -> ProofOfDelivery | None:
        if not (self.recipient_name or self.signature_url or self.photo_urls):
            return None
        return ProofOfDelivery(
            recipient_name=self.recipient_name, signature_url=self.signature_url, photo_urls=self.photo_urls
        )


async def record_stop_status(
    queries: JobQueries,
    publish: Publish,
    org_id: str,
    job_id: str,
    external_stop_id: str,
    report: StopReport,
    correlation_id: str = "",
) -> StopStatusChanged:
    """Check that the stop can take the report, then publish it (the projection applies it later)."""
    job, stops = await read_job(queries, org_id, job_id=job_id)
    stop = next((s for s in stops if s.external_stop_id == external_stop_id), None)
    if stop is None:
        raise Problem(404, "stop_not_found", f"Job {job_id} has no stop {external_stop_id!r}.")
    if job.status in NOT_UPDATABLE:
        detail = f"The job is {job.status}; its stops cannot be updated."
        raise Problem(409, "illegal_transition", detail, job_status=job.status)
    if stop.status in (StopStatus.UNROUTABLE, StopStatus.CANCELLED):
        raise Problem(409, "illegal_transition", "The stop is not on the route.", stop_status=stop.status)
    occurred = report.occurred_at or utcnow()
    if occurred.tzinfo is None:
        raise needs_offset("/occurred_at", "occurred_at")
    try:
        within(occurred, REPORT_PAST, REPORT_FUTURE, "occurred_at")
    except ValueError as exc:
        errors = [{"pointer": "/occurred_at", "reason": str(exc), "type": "out_of_range"}]
        raise Problem(422, "validation_failed", str(exc), errors=errors) from None
    event = StopStatusChanged(
        org_id=org_id,
        job_id=job_id,
        stop_id=stop.stop_id,
        external_stop_id=external_stop_id,
        status=report.status,
        status_at=occurred,
        reason=report.reason,
        notes=report.notes,
        proof=report.proof(),
        correlation_id=correlation_id,
    )
    await publish(event)
    return event


@dataclass(frozen=True)
class PageSizes:
    default: int
    maximum: int
    max_bytes: int = 4 * 1024 * 1024  # of the jobs' JSON on one page; one job always fits


@dataclass(frozen=True)
class JobSearch:
    """One job by id or external id, or otherwise a page of the organization's jobs."""

    job_id: str | None = None
    external_job_id: str | None = None
    filter: JobFilter = field(default_factory=JobFilter)
    limit: int | None = None
    cursor: str | None = None


@dataclass(frozen=True)
class Page:
    jobs: list[dict[str, Any]]  # in their public shape
    next_cursor: str | None


STOPS_READ_AT_ONCE = 10  # jobs whose stops are loaded together: bounds memory while a page is built


async def read_job(
    queries: JobQueries, org_id: str, *, job_id: str | None = None, external_job_id: str | None = None
) -> FoundJob:
    """One job of this organization; another organization's job does not exist for the caller."""
    found = await asyncio.to_thread(queries.job, org_id, job_id=job_id, external_job_id=external_job_id)
    if found is None:
        raise Problem(404, "job_not_found", "No such job for this organization.")
    return found


async def find_jobs(queries: JobQueries, org_id: str, search: JobSearch, sizes: PageSizes) -> FoundJob | Page:
    """The job the search names, or a page of jobs newest first."""
    if search.job_id or search.external_job_id:
        return await read_job(queries, org_id, job_id=search.job_id, external_job_id=search.external_job_id)
    size = min(search.limit or sizes.default, sizes.maximum)
    since = search.filter.updated_since
    if since is not None and since.tzinfo is None:
        raise needs_offset("?updated_since", "updated_since")
    try:
        rows = await asyncio.to_thread(queries.jobs_after, org_id, search.filter, size, search.cursor)
    except BadCursor as exc:
        raise Problem(400, "invalid_cursor", str(exc)) from None
    more, rows = len(rows) > size, rows[:size]
    views, used = [], 0
    for start in range(0, len(rows), STOPS_READ_AT_ONCE):
        chunk = rows[start : start + STOPS_READ_AT_ONCE]
        stops = await asyncio.to_thread(queries.stops_of, [row.job_id for row in chunk])
        for row in chunk:
            driver = search.filter.driver.lower() if search.filter.driver else None
            view = job_view(row, stops[row.job_id], driver)
            weight = len(json.dumps(view, default=str))
            if views and used + weight > sizes.max_bytes:
                # Full by size: the next page starts at exactly this job.
                return Page(views, encode_cursor(rows[len(views) - 1]))
            views.append(view)
            used += weight
    return Page(views, encode_cursor(rows[-1]) if more else None)


LIMITED = {"read": "Too many job reads", "update": "Too many stop updates"}


async def admit(limiter: RateLimiter, integration_id: str, kind: str) -> dict[str, str]:
    """The RateLimit-* headers of one more `read` or `update`, or a 429 problem over the integration's rate."""
    detail = f"{LIMITED[kind]} for this integration; slow down."
    return await ratelimit.admit(limiter, integration_id, detail, RATE_LIMITED.labels(kind).inc)


def needs_offset(pointer: str, name: str) -> Problem:
    return Problem(
        422,
        "validation_failed",
        f"{name} needs a UTC offset.",
        errors=[{"pointer": pointer, "reason": "missing UTC offset", "type": "timezone"}],
    )
