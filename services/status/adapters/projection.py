"""The projection: every event written into the read model, idempotent and tolerant of any
arrival order. Which status that makes is the lifecycle's call (services.status.lifecycle).
"""

from datetime import timedelta

from sqlalchemy import false
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from services.status.adapters.outbox import Before, record_changes
from services.status.adapters.schema import migrate
from services.status.adapters.tables import AppliedEventRow, DriverRow, JobRow, StopRow
from services.status.lifecycle import JobFacts, advanced, derived_status, driver_not_found, settles
from shared.events import (
    DriverRegistered,
    DriverRemoved,
    Event,
    ImportRequested,
    JobFailed,
    JobWarning,
    RouteOptimized,
    StopsGeocoded,
    StopStatusChanged,
    utcnow,
)
from shared.vocabulary import FINISHED_STOP, JobStatus, StopStatus, WarningCode, as_utc


class Projection:
    """Writes events into the read model; brings its tables up to date when built."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        migrate(engine)

    def apply(self, event: Event) -> str | None:
        """Apply one event; returns the job id when this event settled the job (to announce it)."""
        return self.apply_many([event])[0]

    def apply_many(self, events: list[Event]) -> list[str | None]:
        """Apply events in order in one transaction (all or none); per event, the job id it settled."""
        settled: list[str | None] = []
        with Session(self.engine, expire_on_commit=False) as s:
            for event in events:
                if s.get(AppliedEventRow, str(event.event_id)) is not None:
                    settled.append(None)
                    continue
                settled.append(self._apply(s, event))
                s.add(AppliedEventRow(event_id=str(event.event_id), applied_at=utcnow()))
                s.flush()  # the next event of the batch reads what this one wrote
            s.commit()
        return settled

    def _apply(self, s: Session, event: Event) -> str | None:
        if isinstance(event, DriverRegistered):
            s.merge(DriverRow(org_id=event.org_id, email=event.email, name=event.name, active=event.active))
            if event.active:
                _assign_waiting_jobs(s, event)
                s.flush()
            return None
        if isinstance(event, DriverRemoved):
            if row := s.get(DriverRow, (event.org_id, event.email)):
                s.delete(row)
            return None
        job_id = getattr(event, "job_id", None)
        if job_id is None:
            return None  # audit events other than the driver directory do not touch the read model
        job = s.get(JobRow, job_id) or JobRow(
            job_id=job_id, org_id=event.org_id, created_at=event.occurred_at, updated_at=event.occurred_at
        )
        if job.org_id != event.org_id:
            raise ValueError(f"event for job {job_id} names another organization")
        before = job.status
        stops = {row.stop_id: row for row in s.exec(select(StopRow).where(StopRow.job_id == job_id)).all()}
        seen = Before.of(job, stops)
        writer = _WRITERS.get(type(event))
        if writer is None:
            return None
        writer(s, job, stops, event)
        if job.imported and job.routed and job.driver_assigned is None:
            _assign(s, job)
        facts = JobFacts(job.imported, job.routed, bool(job.failure), job.driver_assigned)
        job.status = advanced(job.status, derived_status(facts, (row.status for row in stops.values())))
        job.updated_at = max(as_utc(job.updated_at), event.occurred_at)
        job.created_at = min(as_utc(job.created_at), event.occurred_at)
        s.add(job)
        for row in stops.values():
            s.add(row)
        record_changes(s, event.event_id, job, stops, seen, event.occurred_at)
        replayed = isinstance(event, ImportRequested)
        return job_id if settles(before, job.status, imported=job.imported, import_replayed=replayed) else None


def _stop(stops: dict[str, StopRow], job_id: str, stop_id: str, external_stop_id: str) -> StopRow:
    if stop_id not in stops:
        stops[stop_id] = StopRow(job_id=job_id, stop_id=stop_id, external_stop_id=external_stop_id)
    return stops[stop_id]


def _merge_warnings(job: JobRow, warnings: tuple[JobWarning, ...]) -> None:
    seen = {(w["code"], w.get("external_stop_id"), w["message"]) for w in job.warnings}
    fresh = [w.model_dump() for w in warnings if (w.code, w.external_stop_id, w.message) not in seen]
    if fresh:
        job.warnings = [*job.warnings, *fresh]


def _imported(s: Session, job: JobRow, stops: dict[str, StopRow], e: ImportRequested) -> None:
    spec = e.job
    job.imported, job.accepted_at = True, e.occurred_at
    job.external_job_id, job.title, job.driver_email = spec.external_job_id, spec.title, spec.driver_email
    job.start_time = job.start_time or spec.start_time
    for position, stop in enumerate(spec.stops):
        row = _stop(stops, job.job_id, stop.stop_id, stop.external_stop_id)
        row.position, row.address, row.label, row.parcel_count = position, stop.address, stop.label, stop.parcel_count
        row.time_window = stop.time_window.model_dump(mode="json") if stop.time_window else None
        if row.lat is None and stop.lat is not None:
            row.lat, row.lng, row.precision, row.provider = stop.lat, stop.lng, "provided", "client"
    _merge_warnings(job, e.warnings)


def _geocoded(s: Session, job: JobRow, stops: dict[str, StopRow], e: StopsGeocoded) -> None:
    for loc in e.locations:
        row = _stop(stops, job.job_id, loc.stop_id, loc.external_stop_id)
        row.precision, row.provider = loc.precision, loc.provider
        if row.sequence is None:  # the route's coordinates win, whichever arrived first
            row.lat, row.lng = loc.lat, loc.lng
    _merge_warnings(job, e.warnings)


def _routed(s: Session, job: JobRow, stops: dict[str, StopRow], e: RouteOptimized) -> None:
    if job.routed:
        return
    job.routed, job.start_time = True, e.start_time or job.start_time
    job.external_job_id = job.external_job_id or e.external_job_id
    job.optimization = {
        **e.totals.model_dump(),
        "solver": e.solver.solver,
        "matrix_provider": e.solver.matrix_provider,
        "solve_ms": e.solver.solve_ms,
    }
    for loc in e.locations:
        row = _stop(stops, job.job_id, loc.stop_id, loc.external_stop_id)
        row.precision, row.provider = loc.precision, loc.provider
        row.lat, row.lng = (row.lat, row.lng) if row.lat is not None else (loc.lat, loc.lng)
    start = e.start_time or e.occurred_at
    for leg in e.route:
        row = _stop(stops, job.job_id, leg.stop_id, leg.external_stop_id)
        row.sequence, row.lat, row.lng = leg.sequence, leg.lat, leg.lng
        row.leg_distance_km, row.leg_duration_minutes = leg.leg_distance_km, leg.leg_duration_minutes
        row.eta = start + timedelta(minutes=leg.eta_offset_minutes)
    for gone in e.unrouted:
        row = _stop(stops, job.job_id, gone.stop_id, gone.external_stop_id)
        if row.status not in FINISHED_STOP:
            row.status, row.reason = StopStatus.UNROUTABLE, gone.reason
    _merge_warnings(job, e.warnings)


def _failed(s: Session, job: JobRow, stops: dict[str, StopRow], e: JobFailed) -> None:
    job.failure = {"stage": e.stage, "code": e.code, "message": e.message}
    _merge_warnings(job, e.warnings)


def _stop_changed(s: Session, job: JobRow, stops: dict[str, StopRow], e: StopStatusChanged) -> None:
    row = _stop(stops, job.job_id, e.stop_id, e.external_stop_id)
    if row.status_at is not None and as_utc(row.status_at) > e.status_at:
        return  # a later report already won
    row.status, row.status_at, row.reason, row.notes = e.status, e.status_at, e.reason, e.notes
    row.proof = e.proof.model_dump(mode="json") if e.proof else None


def _assign(s: Session, job: JobRow) -> None:
    driver = s.get(DriverRow, (job.org_id, job.driver_email)) if job.driver_email else None
    job.driver_assigned = bool(driver and driver.active)
    job.driver_name = driver.name if driver else None
    if not job.driver_assigned:
        _merge_warnings(job, (driver_not_found(job.driver_email),))


def _assign_waiting_jobs(s: Session, event: DriverRegistered) -> None:
    """A driver registered after their jobs were routed takes them over: unassigned -> assigned."""
    waiting = s.exec(
        select(JobRow).where(
            JobRow.org_id == event.org_id, JobRow.driver_email == event.email, JobRow.driver_assigned == false()
        )
    ).all()
    for job in waiting:
        stops = {row.stop_id: row for row in s.exec(select(StopRow).where(StopRow.job_id == job.job_id)).all()}
        seen = Before.of(job, stops)
        job.driver_assigned, job.driver_name = True, event.name
        job.warnings = [w for w in job.warnings if w["code"] != WarningCode.DRIVER_NOT_FOUND]
        if job.status == JobStatus.UNASSIGNED:
            job.status = JobStatus.ASSIGNED
        job.updated_at = max(as_utc(job.updated_at), event.occurred_at)
        s.add(job)
        record_changes(s, event.event_id, job, stops, seen, event.occurred_at)


# Which writer takes which job event; the consumer's routing table (subscribers.py) names the
# events the read model is given at all.
_WRITERS = {
    ImportRequested: _imported,
    StopsGeocoded: _geocoded,
    RouteOptimized: _routed,
    JobFailed: _failed,
    StopStatusChanged: _stop_changed,
}
