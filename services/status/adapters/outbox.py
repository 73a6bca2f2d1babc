"""The webhooks' transactional outbox: which public changes an applied event made, written in
the projection's own transaction, and the relay's reads and writes of those rows."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from services.status.adapters.state import JobState, Stops, StopState
from services.status.adapters.tables import OutboxRow
from services.status.views import iso, job_view, stop_view
from shared.events import JobChanged, utcnow
from shared.vocabulary import JobStatus

# The job status a change type announces (when the job reaches it, once imported). A new spec
# of an imported job (an update by re-import) is "job.updated", see `record_changes`.
STATUS_CHANGES: dict[str, str] = {
    JobStatus.ASSIGNED: "job.assigned",
    JobStatus.FAILED: "job.failed",
    JobStatus.IN_PROGRESS: "job.in_progress",
    JobStatus.COMPLETED: "job.completed",
    JobStatus.CANCELLED: "job.cancelled",
}


@dataclass(frozen=True)
class Before:
    """What the public saw of a job before an event was applied."""

    imported: bool
    routed: bool
    status: str
    stops: dict[str, datetime | None]  # stop_id -> its status_at
    version: int  # the job's ETag version: every change announced after it carries a greater one
    spec_version: int

    @classmethod
    def of(cls, job: JobState, stops: Stops) -> "Before":
        statuses = {k: row.status_at for k, row in stops.items()}
        return cls(job.imported, job.routed, job.status, statuses, job.version, job.spec_version)


def outbox_id(source_event_id: UUID, change_type: str, job_id: str, stop: str | None = None) -> str:
    """One id per (source event, change, job[, stop]): a redelivered source event yields the same
    id; one event that changes several stops (a cancel) yields one id per stop."""
    subject = f"{job_id}:{stop}" if stop is not None else job_id
    return str(uuid5(source_event_id, f"{change_type}:{subject}"))


def record_changes(
    rows: list[dict[str, Any]] | None, source_id: UUID, job: JobState, stops: Stops, before: Before, at: datetime
) -> list[dict[str, Any]]:
    """The outbox rows for what `job` became since `before`, in the order a receiver should see
    them, appended to `rows` (the batch inserts them in that order) and returned.

    Each row carries a version of its own, strictly greater than any announced before for this
    job; the job's version (its ETag) moves up to the last of them, so a receiver can compare a
    webhook's `version` with the ETag of GET /v1/integration-jobs/{id}."""
    if not job.imported:
        return []  # nothing is public before the import is: the first changes come with it
    types = _change_types(job, stops, before)
    if not types:
        return []
    job.version = max(job.version, before.version + len(types))
    if rows is None:
        return []  # not announced (a rebuild replays history): the versions count all the same
    first = job.version - len(types) + 1
    made = [
        _row(source_id, change_type, job, stops, stop, at, first + n) for n, (change_type, stop) in enumerate(types)
    ]
    rows.extend(made)
    return made


def _change_types(job: JobState, stops: Stops, before: Before) -> list[tuple[str, StopState | None]]:
    types: list[tuple[str, StopState | None]] = []
    if before.imported and job.spec_version != before.spec_version:
        types.append(("job.updated", None))  # the new spec; its new route follows as job.routed
    if job.routed and not (before.imported and before.routed):
        types.append(("job.routed", None))
    for stop_id, row in stops.items():
        if row.status_at is not None and before.stops.get(stop_id) != row.status_at and job.routed:
            types.append(("stop.status_changed", row))
    change = STATUS_CHANGES.get(job.status)
    if change and not (before.imported and before.status == job.status):
        types.append((change, None))
    return types


def _row(
    source_id: UUID,
    change_type: str,
    job: JobState,
    stops: Stops,
    stop: StopState | None,
    at: datetime,
    version: int,
) -> dict[str, Any]:
    """One status_outbox row: the job's whole view, or a stop's change with the job's status."""
    data: dict[str, Any]
    if stop is None:
        data = job_view(job, list(stops.values()))  # type: ignore[arg-type]
        data["version"] = version
    else:
        data = {
            "job_id": job.job_id,
            "external_job_id": job.external_job_id,
            "stop": stop_view(stop),  # type: ignore[arg-type]
            "job_status": job.status,
            "version": version,
            "updated_at": iso(job.updated_at),
        }
    return {
        "change_id": outbox_id(source_id, change_type, job.job_id, stop.external_stop_id if stop else None),
        "org_id": job.org_id,
        "job_id": job.job_id,
        "change_type": change_type,
        "version": version,
        "occurred_at": at,
        "data": data,
        "sent_at": None,
    }


def as_event(row: Any) -> JobChanged:
    """The change to publish, from an outbox row (an OutboxRow, or a row `Outbox.pending` read)."""
    return JobChanged(
        event_id=UUID(row.change_id),
        org_id=row.org_id,
        job_id=row.job_id,
        occurred_at=row.occurred_at,
        change_type=row.change_type,
        version=row.version,
        data=row.data,
    )


class Outbox:
    """The relay's side of the outbox table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def pending(self, limit: int) -> list[Any]:
        """The oldest unsent changes, in order: rows with OutboxRow's attributes (read with Core:
        the relay polls twice a second and reads every change once)."""
        table = OutboxRow.__table__
        with self.engine.connect() as conn:
            query = select(*table.c).where(table.c.sent_at.is_(None)).order_by(table.c.seq).limit(limit)
            return list(conn.execute(query).all())

    def mark_sent(self, seqs: list[int]) -> None:
        table = OutboxRow.__table__
        with self.engine.begin() as conn:
            conn.execute(update(table).where(table.c.seq.in_(seqs)).values(sent_at=utcnow()))

    def mark_all_sent(self) -> None:
        """After a rebuild: history is not news; nothing of it is announced again."""
        with Session(self.engine) as s:
            s.exec(update(OutboxRow).where(col(OutboxRow.sent_at).is_(None)).values(sent_at=utcnow()))
            s.commit()

    def prune(self, older_than: timedelta) -> None:
        with Session(self.engine) as s:
            s.exec(delete(OutboxRow).where(col(OutboxRow.sent_at) < utcnow() - older_than))
            s.commit()
