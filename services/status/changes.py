"""Use-cases that change a job from the status service: cancel it, re-plan its remaining stops.

Each checks the read model (and an optional If-Match against the job's version), then publishes
one event; the projection applies it like any other.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.status.adapters.queries import JobQueries
from services.status.adapters.tables import JobRow, StopRow
from services.status.handlers import Publish, needs_offset, read_job
from services.status.views import etag, finished_in_order, iso
from shared.errors import Problem
from shared.events import JobCancelled, ReplanRequested, utcnow
from shared.events.jobs import ReplanStop, StartPoint, TimeWindow
from shared.http import etag_matches
from shared.inputs import PLAN_FUTURE, PLAN_PAST, within
from shared.vocabulary import FINISHED_STOP, TERMINAL, JobStatus, StopStatus


def check_if_match(job: JobRow, if_match: str | None) -> None:
    """412 when the client changed a version of the job that is no longer the current one."""
    if if_match is not None and not etag_matches(if_match, etag(job), weak=False):
        raise Problem(
            412,
            "precondition_failed",
            f"The job changed since that version; it is at version {job.version}. Read it again and retry.",
            headers={"ETag": etag(job)},
            current_version=job.version,
        )


@dataclass(frozen=True)
class Cancelled:
    """The answer to a cancel: `replayed` when the job was cancelled already (200)."""

    body: dict[str, Any]
    replayed: bool


async def cancel_job(
    queries: JobQueries,
    publish: Publish,
    org_id: str,
    job_id: str,
    reason: str | None,
    if_match: str | None = None,
    correlation_id: str = "",
) -> Cancelled:
    """Publish JobCancelled unless the job is over; a cancelled job answers as it was cancelled."""
    job, _ = await read_job(queries, org_id, job_id=job_id)
    if job.status == JobStatus.CANCELLED and job.cancellation:
        return Cancelled(_cancel_body(job_id, job.cancellation), replayed=True)
    check_if_match(job, if_match)
    if job.status in TERMINAL:
        raise Problem(
            409, "illegal_transition", f"The job is {job.status}; it cannot be cancelled.", job_status=job.status
        )
    event = JobCancelled(org_id=org_id, job_id=job_id, reason=reason, correlation_id=correlation_id)
    await publish(event)
    return Cancelled(_cancel_body(job_id, {"reason": reason, "cancelled_at": iso(event.occurred_at)}), replayed=False)


def _cancel_body(job_id: str, cancellation: dict[str, Any]) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "status": JobStatus.CANCELLED.value,
        "reason": cancellation.get("reason"),
        "cancelled_at": cancellation.get("cancelled_at"),
    }


@dataclass(frozen=True)
class Replan:
    """Where the driver is now (optional) and when the remaining route starts (default: now)."""

    current_location: tuple[float, float] | None = None
    at: datetime | None = None


async def replan_job(
    queries: JobQueries,
    publish: Publish,
    org_id: str,
    job_id: str,
    replan: Replan,
    if_match: str | None = None,
    correlation_id: str = "",
) -> ReplanRequested:
    """Ask the optimizer to re-order the remaining stops of a routed job from a start point."""
    job, stops = await read_job(queries, org_id, job_id=job_id)
    check_if_match(job, if_match)
    if job.status in TERMINAL or not job.routed:
        detail = f"The job is {job.status}; only a routed job that is not over can be re-planned."
        raise Problem(409, "illegal_transition", detail, job_status=job.status)
    if job.vehicles:  # the re-plan's ReplanRequested carries one start point: one driver's route
        detail = "A fleet job (vehicles) cannot be re-planned yet; update it by re-import with If-Match instead."
        raise Problem(409, "fleet_replan_unsupported", detail, job_status=job.status)
    at = _start_time(replan.at)
    remaining = [_remaining(row) for row in sorted(stops, key=lambda r: r.position) if _left(row)]
    if not remaining:
        raise Problem(409, "illegal_transition", "No stop is left to re-plan.", job_status=job.status)
    event = ReplanRequested(
        org_id=org_id,
        job_id=job_id,
        correlation_id=correlation_id,
        external_job_id=job.external_job_id,
        spec_version=job.spec_version,
        stops=tuple(remaining),
        start=_start_point(job, stops, replan.current_location),
        start_time=at,
    )
    await publish(event)
    return event


def _start_time(at: datetime | None) -> datetime:
    if at is None:
        return utcnow()
    if at.tzinfo is None:
        raise needs_offset("/at", "at")
    try:
        within(at, PLAN_PAST, PLAN_FUTURE, "at")
    except ValueError as exc:
        errors = [{"pointer": "/at", "reason": str(exc), "type": "out_of_range"}]
        raise Problem(422, "validation_failed", str(exc), errors=errors) from None
    return at


def _left(row: StopRow) -> bool:
    """Still to visit and placed somewhere: a stop the re-plan orders."""
    return row.status not in FINISHED_STOP and row.status != StopStatus.CANCELLED and row.lat is not None


def _remaining(row: StopRow) -> ReplanStop:
    window = TimeWindow(**row.time_window) if row.time_window else None
    return ReplanStop(
        stop_id=row.stop_id,
        external_stop_id=row.external_stop_id,
        lat=row.lat,
        lng=row.lng,
        parcel_count=row.parcel_count,
        time_window=window,
        service_minutes=row.service_minutes,
    )


def _start_point(job: JobRow, stops: list[StopRow], current: tuple[float, float] | None) -> StartPoint | None:
    """The driver's location when given, else the last finished stop, else the depot, else none
    (the route then starts at its first stop)."""
    if current is not None:
        return StartPoint(lat=current[0], lng=current[1], origin="current_location")
    placed = [row for row in finished_in_order(stops) if row.lat is not None]
    if placed:
        return StartPoint(lat=placed[-1].lat, lng=placed[-1].lng, origin="last_finished_stop")
    if job.depot:
        return StartPoint(lat=job.depot["lat"], lng=job.depot["lng"], origin="depot")
    return None
