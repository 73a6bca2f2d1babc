"""The projection: every event written into the read model, idempotent and tolerant of any
arrival order. Which status that makes is the lifecycle's call (services.status.lifecycle);
how each event changes the rows is the writers' (services.status.adapters.writers).

Every change of a job's public view counts one up in its `version` (its ETag), in the same
transaction as the change. A batch of events is one transaction: each job it touches is read
once and written once (services.status.adapters.state), not once per event.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import bindparam, false, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.status.adapters import writers
from services.status.adapters.erasure import ErasedJob, erase_organization_rows, erase_rows
from services.status.adapters.outbox import Before, record_changes
from services.status.adapters.schema import migrate
from services.status.adapters.state import JobState, Stops, StopState, Unit
from services.status.adapters.tables import DriverRow, JobRow, OrgRetentionRow, StopRow
from services.status.lifecycle import JobFacts, advanced, derived_status, driver_not_found, settles
from shared.events import (
    DriverRegistered,
    DriverRemoved,
    Event,
    ImportRequested,
    JobCancelled,
    JobErased,
    JobFailed,
    OrganizationErased,
    OrgRetentionSet,
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
    erased: list[ErasedJob] = field(default_factory=list)  # the jobs this batch erased
    # Each job of the batch as it committed it, with its stops (not erased ones): what the
    # follow-ups (heads, settled views) are made of, without reading the rows back.
    rows: dict[str, tuple[JobState, list[StopState]]] = field(default_factory=dict)


class Projection:
    """Writes events into the read model; brings its tables up to date when built."""

    def __init__(self, engine: Engine, prepare: Callable[[Engine], None] = migrate, *, announce: bool = True) -> None:
        """`announce=False` (a rebuild) writes no outbox rows: replayed history is not news, and
        rendering a job's view for each change was about a fifth of a rebuild's writing."""
        self.engine, self.announce = engine, announce
        self._compiled: dict[Any, Any] = {}  # the unit of work's statements for this engine (state.Unit)
        prepare(engine)

    def apply(self, event: Event) -> str | None:
        """Apply one event; returns the job id when this event settled the job (to announce it)."""
        return self.apply_many([event])[0]

    def apply_many(self, events: list[Event]) -> list[str | None]:
        """Apply events in order in one transaction (all or none); per event, the job id it settled."""
        return [settled.job_id if settled else None for settled in self.apply_batch(events).settled]

    def apply_batch(self, events: list[Event]) -> Batch:
        """Apply events in order in one transaction (all or none): whom each settles, which jobs changed.

        The batch's jobs and stops are read once (services.status.adapters.state) and written
        once, as the difference, at the end; the driver directory and erasure go through the session."""
        batch = Batch()
        with Session(self.engine, expire_on_commit=False) as s:
            run = _Run(s, Unit(s.connection(), announce=self.announce, compiled=self._compiled), batch)
            ids = [str(event.event_id) for event in events]
            job_ids = {job_id for event in events if (job_id := getattr(event, "job_id", None)) is not None}
            orgs = {event.org_id for event in events}
            applied, run.erased_orgs, run.erased_jobs = run.unit.seen(ids, orgs, job_ids)
            run.unit.load(job_ids)
            for event, event_id in zip(events, ids, strict=True):
                if event_id in applied:
                    batch.settled.append(None)
                    continue
                applied.add(event_id)  # the same event twice in one batch: the second changes nothing
                batch.settled.append(run.apply(event))
                run.unit.applied.append({"event_id": event_id, "applied_at": utcnow()})
            run.unit.flush()
            s.commit()
        gone = {e.job_id for e in batch.erased} | run.erased_jobs
        for job_id, (job, stops) in run.unit.held.items():
            if job_id not in gone and job.org_id not in run.erased_orgs:
                batch.rows[job_id] = (job, list(stops.values()))
        return batch


@dataclass(frozen=True)
class Driver:
    """A driver of the directory, as the projection assigns jobs to them."""

    name: str | None
    active: bool


Drivers = Callable[[str, str], Driver | None]  # (org_id, email) -> the driver, None: unknown


_DRIVERS = DriverRow.__table__
_DRIVER = select(_DRIVERS.c.name, _DRIVERS.c.active).where(
    _DRIVERS.c.org_id == bindparam("org_id"), _DRIVERS.c.email == bindparam("email")
)


_UPSERTS: dict[str, Any] = {}


def _driver_upsert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE of a driver: one statement where the ORM's merge read the
    row first and flushed (a long history has thousands of registrations)."""
    if dialect not in _UPSERTS:
        statement = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(_DRIVERS)
        _UPSERTS[dialect] = statement.on_conflict_do_update(
            index_elements=[_DRIVERS.c.org_id, _DRIVERS.c.email],
            set_={"name": statement.excluded.name, "active": statement.excluded.active},
        )
    return _UPSERTS[dialect]


@dataclass
class _Run:
    """One batch being applied: the session (driver directory, erasure), the jobs' unit of work."""

    s: Session
    unit: Unit
    batch: Batch
    erased_orgs: set[str] = field(default_factory=set)
    erased_jobs: set[str] = field(default_factory=set)
    drivers: dict[tuple[str, str], Driver | None] = field(default_factory=dict)  # read once per batch

    def driver(self, org_id: str, email: str) -> Driver | None:
        """The organization's driver of that email (None: unknown), as of this point of the batch."""
        key = (org_id, email)
        if key not in self.drivers:
            found = self.s.connection().execute(_DRIVER, {"org_id": org_id, "email": email}).first()
            self.drivers[key] = Driver(found.name, bool(found.active)) if found is not None else None
        return self.drivers[key]

    def apply(self, event: Event) -> Settles | None:
        """An erased job's events (late, or replayed) change nothing; JobErased erases."""
        s, batch, job_id = self.s, self.batch, getattr(event, "job_id", None)
        if isinstance(event, JobErased):
            return self._erase(event)
        if isinstance(event, OrganizationErased):
            self.unit.flush()
            for gone in erase_organization_rows(s, event.org_id, event.occurred_at):
                batch.erased.append(gone)
                batch.changed.discard(gone.job_id)
            s.flush()
            self.unit.forget([j for j, job in self.unit.jobs.items() if job is not None and job.org_id == event.org_id])
            self.drivers = {key: found for key, found in self.drivers.items() if key[0] != event.org_id}
            self.erased_orgs.add(event.org_id)
            return None
        if event.org_id in self.erased_orgs or (job_id is not None and job_id in self.erased_jobs):
            return None
        if isinstance(event, OrgRetentionSet):
            s.merge(OrgRetentionRow(org_id=event.org_id, job_retention_days=event.job_retention_days))
            s.flush()
            return None
        if isinstance(event, DriverRegistered):
            values = {"org_id": event.org_id, "email": event.email, "name": event.name, "active": event.active}
            s.connection().execute(_driver_upsert(s.get_bind().dialect.name), values)
            self.drivers[(event.org_id, event.email)] = Driver(event.name, event.active)
            if event.active:
                batch.changed |= _assign_waiting_jobs(s, self.unit, self.driver, event)
            return None
        if isinstance(event, DriverRemoved):
            if row := s.get(DriverRow, (event.org_id, event.email)):
                s.delete(row)
                s.flush()
            self.drivers[(event.org_id, event.email)] = None
            return None
        writer = writers.WRITERS.get(type(event))
        if job_id is None or writer is None:
            return None  # audit events other than the driver directory do not touch the read model
        return _apply(self.driver, self.unit, event, writer, batch.changed)

    def _erase(self, event: JobErased) -> None:
        """The job's rows deleted and its tombstone written. The batch's other jobs stay unwritten
        (a long history has many erasures: each used to write and read the batch again); the
        erased job's pending state is dropped, its outbox rows so far written first."""
        unit, batch = self.unit, self.batch
        held = unit.jobs.get(event.job_id)
        if held is not None and held.org_id != event.org_id:
            return None  # another organization's job is not touched
        unit.flush_outbox()
        gone = erase_rows(self.s, event.org_id, event.job_id, event.occurred_at, event.reason)
        self.s.flush()  # its outbox row goes before those of the events after it
        if gone is None:
            return None
        if gone.external_job_id is None and held is not None:  # imported in this batch: not stored yet
            gone = replace(gone, external_job_id=held.external_job_id)
        unit.forget([event.job_id])
        self.erased_jobs.add(event.job_id)
        if not gone.already:
            batch.erased.append(gone)
            batch.changed.discard(event.job_id)
        return None


def _apply(drivers: Drivers, unit: Unit, event: Event, writer: writers.Writer, changed: set[str]) -> Settles | None:
    job_id = event.job_id  # type: ignore[attr-defined]
    job = unit.job(job_id)
    if job is None:
        job = JobState(job_id=job_id, org_id=event.org_id, created_at=event.occurred_at, updated_at=event.occurred_at)
        unit.add(job)
    if job.org_id != event.org_id:
        raise ValueError(f"event for job {job_id} names another organization")
    before = job.status
    stops = unit.stops_of(job_id)
    awaiting_update = job.imported and not job.routed and before in SETTLED
    seen = Before.of(job, stops)  # what webhooks receivers saw: the outbox announces what changed
    unit.deleted_in_event = False
    verdict = writer(unit, job, stops, event)
    if job.imported and job.routed and job.driver_assigned is None:
        _assign(drivers, job)
    facts = JobFacts(job.imported, job.routed, bool(job.failure), job.driver_assigned, bool(job.cancellation))
    job.status = advanced(job.status, derived_status(facts, (row.status for row in stops.values())))
    job.created_at = min(as_utc(job.created_at), event.occurred_at)
    if view_changed(unit, job, stops):  # an event that changed nothing (stale, ignored) leaves no trace
        job.updated_at = max(as_utc(job.updated_at), event.occurred_at)
        job.version += 1
        changed.add(job_id)
    record_changes(unit.outbox, event.event_id, job, stops, seen, event.occurred_at)
    return _settles(event, verdict, before, job, awaiting_update)


def _settles(event: Event, verdict: str | None, before: str, job: JobState, awaiting_update: bool) -> Settles | None:
    if verdict == writers.IGNORED:
        return None  # another spec's route or failure: an update waiting for its own is not answered by it
    if verdict == writers.REJECTED:
        return Settles(job.job_id, rejected_spec_version=event.spec_version)
    if verdict == writers.UPDATED:
        return None  # the update's new route (or failure) answers the import waiting for it
    if awaiting_update and isinstance(event, RouteOptimized | JobFailed | JobCancelled) and job.status in SETTLED:
        return Settles(job.job_id)
    replayed = isinstance(event, ImportRequested)
    return Settles(job.job_id) if settles(before, job.status, imported=job.imported, import_replayed=replayed) else None


_UNSEEN = frozenset({"version", "updated_at"})  # what a change sets, not what makes one


def view_changed(unit: Unit, job: JobState, stops: Stops) -> bool:
    """Whether the event changed anything of the job's public view: a row added or dropped, or an
    attribute set to a value that differs. Each row keeps what the event changed of it (state.py);
    this reads and clears those records, so the next event starts afresh."""
    changed = unit.deleted_in_event or not job.version
    changed = job.changed_since_event(_UNSEEN) or changed
    for row in stops.values():
        changed = row.changed_since_event() or changed
    unit.deleted_in_event = False
    return changed


def _assign(drivers: Drivers, job: JobState) -> None:
    if job.routes:
        _assign_routes(drivers, job)
        return
    driver = drivers(job.org_id, job.driver_email) if job.driver_email else None
    job.driver_assigned = bool(driver and driver.active)
    job.driver_name = driver.name if driver else None
    if not job.driver_assigned:
        writers.merge_warnings(job, (driver_not_found(job.driver_email),))


def _assign_routes(drivers: Drivers, job: JobState) -> None:
    """A fleet job is assigned once every route's driver is an active driver of its organization;
    each route names its driver (and whether they are known), and each missing one is warned about."""
    routes, missing = [], []
    for route in job.routes or ():
        driver = drivers(job.org_id, route["driver_email"])
        known = bool(driver and driver.active)
        routes.append({**route, "driver_name": driver.name if driver else None, "driver_assigned": known})
        if not known:
            missing.append(route["driver_email"])
    job.routes, job.driver_assigned = routes, not missing
    job.warnings = [w for w in job.warnings if w["code"] != WarningCode.DRIVER_NOT_FOUND]
    for email in missing:
        writers.merge_warnings(job, (driver_not_found(email),))


def _assign_waiting_jobs(s: Session, unit: Unit, drivers: Drivers, event: DriverRegistered) -> set[str]:
    """A driver registered after their jobs were routed takes them over: unassigned -> assigned."""
    jobs, stops = JobRow.__table__, StopRow.__table__
    on_a_route = select(stops.c.job_id).where(stops.c.driver_email == event.email)  # fleet jobs
    stored = (
        s.connection()
        .execute(
            select(jobs.c.job_id).where(
                jobs.c.org_id == event.org_id,
                or_(jobs.c.driver_email == event.email, jobs.c.job_id.in_(on_a_route)),
                jobs.c.driver_assigned == false(),
            )
        )
        .scalars()
        .all()
    )
    # The rows as stored, for the jobs this batch does not hold; the batch's own states (not
    # written yet) for those it does.
    waiting = {job_id for job_id in stored if job_id not in unit.jobs}
    for job_id, job in unit.jobs.items():
        unassigned = job is not None and job.org_id == event.org_id and job.driver_assigned is False
        if unassigned and (
            job.driver_email == event.email
            or any(row.driver_email == event.email for row in unit.stops.get(job_id, {}).values())
        ):
            waiting.add(job_id)
    unit.load(waiting)
    for job_id in sorted(waiting):
        job, rows = unit.job(job_id), unit.stops_of(job_id)
        seen = Before.of(job, rows)
        if job.routes:
            _assign_routes(drivers, job)
        else:
            job.driver_assigned, job.driver_name = True, event.name
            job.warnings = [w for w in job.warnings if w["code"] != WarningCode.DRIVER_NOT_FOUND]
        if job.status == JobStatus.UNASSIGNED and job.driver_assigned:
            job.status = JobStatus.ASSIGNED
        job.updated_at = max(as_utc(job.updated_at), event.occurred_at)
        job.version += 1
        view_changed(unit, job, rows)  # the next event of the job starts its own record
        record_changes(unit.outbox, event.event_id, job, rows, seen, event.occurred_at)
    return set(waiting)
