"""The projection: every event written into the read model, idempotent and tolerant of any
arrival order. Which status that makes is the lifecycle's call (services.status.lifecycle);
how each event changes the rows is the writers' (services.status.adapters.writers).

Every change of a job's public view counts one up in its `version` (its ETag), in the same
transaction as the change.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import false, inspect, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from services.status.adapters import writers
from services.status.adapters.outbox import Before, record_changes
from services.status.adapters.schema import migrate
from services.status.adapters.tables import AppliedEventRow, DriverRow, JobRow, StopRow
from services.status.lifecycle import JobFacts, advanced, derived_status, driver_not_found, settles
from shared.events import (
    DriverRegistered,
    DriverRemoved,
    Event,
    ImportRequested,
    JobCancelled,
    JobFailed,
    RouteOptimized,
    utcnow,
)
from shared.vocabulary import SETTLED, JobStatus, WarningCode, as_utc


@dataclass(frozen=True)
class Settles:
    """An applied event gave a waiting import its answer: the job settled, or its update was refused."""

    job_id: str
    rejected_spec_version: int | None = None


@dataclass
class Batch:
    """What one transaction did: per event, whom it settles (or None); and every job it changed."""

    settled: list[Settles | None] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)


class Projection:
    """Writes events into the read model; brings its tables up to date when built."""

    def __init__(self, engine: Engine, prepare: Callable[[Engine], None] = migrate) -> None:
        self.engine = engine
        prepare(engine)

    def apply(self, event: Event) -> str | None:
        """Apply one event; returns the job id when this event settled the job (to announce it)."""
        return self.apply_many([event])[0]

    def apply_many(self, events: list[Event]) -> list[str | None]:
        """Apply events in order in one transaction (all or none); per event, the job id it settled."""
        return [settled.job_id if settled else None for settled in self.apply_batch(events).settled]

    def apply_batch(self, events: list[Event]) -> Batch:
        """Apply events in order in one transaction (all or none): whom each settles, which jobs changed."""
        batch = Batch()
        with Session(self.engine, expire_on_commit=False) as s:
            for event in events:
                if s.get(AppliedEventRow, str(event.event_id)) is not None:
                    batch.settled.append(None)
                    continue
                batch.settled.append(self._apply(s, event, batch.changed))
                s.add(AppliedEventRow(event_id=str(event.event_id), applied_at=utcnow()))
                s.flush()  # the next event of the batch reads what this one wrote
            s.commit()
        return batch

    def _apply(self, s: Session, event: Event, changed: set[str]) -> Settles | None:
        if isinstance(event, DriverRegistered):
            s.merge(DriverRow(org_id=event.org_id, email=event.email, name=event.name, active=event.active))
            if event.active:
                changed |= _assign_waiting_jobs(s, event)
            return None
        if isinstance(event, DriverRemoved):
            if row := s.get(DriverRow, (event.org_id, event.email)):
                s.delete(row)
            return None
        job_id = getattr(event, "job_id", None)
        writer = writers.WRITERS.get(type(event))
        if job_id is None or writer is None:
            return None  # audit events other than the driver directory do not touch the read model
        job = s.get(JobRow, job_id) or JobRow(
            job_id=job_id, org_id=event.org_id, created_at=event.occurred_at, updated_at=event.occurred_at
        )
        if job.org_id != event.org_id:
            raise ValueError(f"event for job {job_id} names another organization")
        before = job.status
        rows = s.exec(select(StopRow).where(StopRow.job_id == job_id)).all()
        stops = {row.external_stop_id: row for row in rows}
        awaiting_update = job.imported and not job.routed and before in SETTLED
        seen = Before.of(job, stops)  # what webhooks receivers saw: the outbox announces what changed
        verdict = writer(s, job, stops, event)
        if job.imported and job.routed and job.driver_assigned is None:
            _assign(s, job)
        facts = JobFacts(job.imported, job.routed, bool(job.failure), job.driver_assigned, bool(job.cancellation))
        job.status = advanced(job.status, derived_status(facts, (row.status for row in stops.values())))
        job.created_at = min(as_utc(job.created_at), event.occurred_at)
        if view_changed(s, job, stops):  # an event that changed nothing (stale, ignored) leaves no trace
            job.updated_at = max(as_utc(job.updated_at), event.occurred_at)
            job.version += 1
            changed.add(job_id)
        s.add(job)
        for row in stops.values():
            s.add(row)
        record_changes(s, event.event_id, job, stops, seen, event.occurred_at)
        return _settles(event, verdict, before, job, awaiting_update)


def _settles(event: Event, verdict: str | None, before: str, job: JobRow, awaiting_update: bool) -> Settles | None:
    if verdict == writers.REJECTED:
        return Settles(job.job_id, rejected_spec_version=event.spec_version)
    if verdict == writers.UPDATED:
        return None  # the update's new route (or failure) answers the import waiting for it
    if awaiting_update and isinstance(event, RouteOptimized | JobFailed | JobCancelled) and job.status in SETTLED:
        return Settles(job.job_id)
    replayed = isinstance(event, ImportRequested)
    return Settles(job.job_id) if settles(before, job.status, imported=job.imported, import_replayed=replayed) else None


_UNSEEN = frozenset({"version", "updated_at"})  # what a change sets, not what makes one


def _plain(value: object) -> object:
    return as_utc(value) if isinstance(value, datetime) else value  # SQLite hands datetimes back naive


def view_changed(s: Session, job: JobRow, stops: writers.Stops) -> bool:
    """Whether the writer changed anything of the job's public view since the last flush: a row
    added or dropped, or an attribute set to a value that differs. Reads the session's own change
    tracking, so a report on one stop of a 500-stop job looks at that stop only."""
    if s.deleted or not job.version:
        return True
    for row in (job, *stops.values()):
        state = inspect(row)
        if state.transient or state.pending:
            return True
        if not state.modified:
            continue
        for attr in state.attrs:
            if attr.key in _UNSEEN:
                continue
            added, _, deleted = attr.history
            if added and (not deleted or _plain(added[0]) != _plain(deleted[0])):
                return True
    return False


def _assign(s: Session, job: JobRow) -> None:
    if job.routes:
        _assign_routes(s, job)
        return
    driver = s.get(DriverRow, (job.org_id, job.driver_email)) if job.driver_email else None
    job.driver_assigned = bool(driver and driver.active)
    job.driver_name = driver.name if driver else None
    if not job.driver_assigned:
        writers.merge_warnings(job, (driver_not_found(job.driver_email),))


def _assign_routes(s: Session, job: JobRow) -> None:
    """A fleet job is assigned once every route's driver is an active driver of its organization;
    each route names its driver (and whether they are known), and each missing one is warned about."""
    routes, missing = [], []
    for route in job.routes or ():
        driver = s.get(DriverRow, (job.org_id, route["driver_email"]))
        known = bool(driver and driver.active)
        routes.append({**route, "driver_name": driver.name if driver else None, "driver_assigned": known})
        if not known:
            missing.append(route["driver_email"])
    job.routes, job.driver_assigned = routes, not missing
    job.warnings = [w for w in job.warnings if w["code"] != WarningCode.DRIVER_NOT_FOUND]
    for email in missing:
        writers.merge_warnings(job, (driver_not_found(email),))


def _assign_waiting_jobs(s: Session, event: DriverRegistered) -> set[str]:
    """A driver registered after their jobs were routed takes them over: unassigned -> assigned."""
    on_a_route = select(StopRow.job_id).where(StopRow.driver_email == event.email)  # fleet jobs
    waiting = s.exec(
        select(JobRow).where(
            JobRow.org_id == event.org_id,
            or_(JobRow.driver_email == event.email, JobRow.job_id.in_(on_a_route)),
            JobRow.driver_assigned == false(),
        )
    ).all()
    for job in waiting:
        stops = {row.external_stop_id: row for row in s.exec(select(StopRow).where(StopRow.job_id == job.job_id))}
        seen = Before.of(job, stops)
        if job.routes:
            _assign_routes(s, job)
        else:
            job.driver_assigned, job.driver_name = True, event.name
            job.warnings = [w for w in job.warnings if w["code"] != WarningCode.DRIVER_NOT_FOUND]
        if job.status == JobStatus.UNASSIGNED and job.driver_assigned:
            job.status = JobStatus.ASSIGNED
        job.updated_at = max(as_utc(job.updated_at), event.occurred_at)
        job.version += 1
        s.add(job)
        record_changes(s, event.event_id, job, stops, seen, event.occurred_at)
    return {job.job_id for job in waiting}
