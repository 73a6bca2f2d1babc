"""Reads of the read model: tenant-scoped jobs and pages, and the counts the rebuild reports."""

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, func, inspect, or_
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from services.status.adapters.tables import JobRow, StopRow
from shared.vocabulary import JobStatus


class BadCursor(ValueError):
    """A cursor this endpoint never gave out."""


FoundJob = tuple[JobRow, list[StopRow]]


@dataclass(frozen=True, kw_only=True)  # by name: two filters added side by side once shifted a positional one
class JobFilter:
    status: JobStatus | None = None
    updated_since: datetime | None = None
    driver_email: str | None = None
    created_from: datetime | None = None  # the console's date filter: created in [from, before)
    created_before: datetime | None = None
    driver: str | None = None  # jobs in which this driver has a route (a fleet job's, or a single-driver job)


def encode_cursor(job: JobRow) -> str:
    return base64.urlsafe_b64encode(f"{job.created_at.isoformat()}|{job.job_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, job_id = raw.split("|", 1)
        return datetime.fromisoformat(created), job_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("the cursor is not one this endpoint gave out") from None


class JobQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def job(self, org_id: str, *, job_id: str | None = None, external_job_id: str | None = None) -> FoundJob | None:
        """One job of this organization (another organization's job does not exist for the caller)."""
        with self._session() as s:
            query = select(JobRow).where(JobRow.org_id == org_id, JobRow.imported == True)  # noqa: E712
            if job_id is not None:
                query = query.where(JobRow.job_id == job_id)
            else:
                query = query.where(JobRow.external_job_id == external_job_id)
            job = s.exec(query.order_by(JobRow.created_at.desc())).first()
            if job is None:
                return None
            stops = list(s.exec(select(StopRow).where(StopRow.job_id == job.job_id)).all())
            return job, stops

    def page(self, org_id: str, flt: JobFilter, limit: int, cursor: str | None) -> tuple[list[FoundJob], str | None]:
        """Newest first; the cursor continues after the last job of the previous page."""
        jobs = self.jobs_after(org_id, flt, limit, cursor)
        more, jobs = len(jobs) > limit, jobs[:limit]
        stops = self.stops_of([j.job_id for j in jobs])
        return [(j, stops[j.job_id]) for j in jobs], (encode_cursor(jobs[-1]) if more else None)

    def jobs_after(self, org_id: str, flt: JobFilter, limit: int, cursor: str | None) -> list[JobRow]:
        """Up to `limit + 1` jobs (one more tells whether there is a next page), newest first, after `cursor`."""
        with self._session() as s:
            query = select(JobRow).where(JobRow.org_id == org_id, JobRow.imported == True)  # noqa: E712
            if flt.status:
                query = query.where(JobRow.status == flt.status)
            if flt.updated_since:
                query = query.where(JobRow.updated_at >= flt.updated_since)
            if flt.driver_email:
                query = query.where(JobRow.driver_email == flt.driver_email.lower())
            if flt.created_from:
                query = query.where(JobRow.created_at >= flt.created_from)
            if flt.created_before:
                query = query.where(JobRow.created_at < flt.created_before)
            if flt.driver:
                on_a_route = select(StopRow.job_id).where(StopRow.driver_email == flt.driver.lower())
                query = query.where(or_(JobRow.driver_email == flt.driver.lower(), JobRow.job_id.in_(on_a_route)))
            if cursor:
                created, job_id = decode_cursor(cursor)
                query = query.where(
                    or_(JobRow.created_at < created, (JobRow.created_at == created) & (JobRow.job_id < job_id))
                )
            return list(s.exec(query.order_by(JobRow.created_at.desc(), JobRow.job_id.desc()).limit(limit + 1)).all())

    def stops_of(self, job_ids: list[str]) -> dict[str, list[StopRow]]:
        """The stops of these jobs, by job id."""
        stops: dict[str, list[StopRow]] = {i: [] for i in job_ids}
        if job_ids:
            with self._session() as s:
                for row in s.exec(select(StopRow).where(StopRow.job_id.in_(job_ids))).all():
                    stops[row.job_id].append(row)
        return stops

    def heads(self, job_ids: list[str]) -> list[FoundJob]:
        """These jobs (of any organization) with their stops: what their heads are made of."""
        if not job_ids:
            return []
        with self._session() as s:
            jobs = list(s.exec(select(JobRow).where(JobRow.job_id.in_(job_ids))).all())
            stops: dict[str, list[StopRow]] = {job.job_id: [] for job in jobs}
            for row in s.exec(select(StopRow).where(StopRow.job_id.in_(list(stops)))).all():
                stops[row.job_id].append(row)
            return [(job, stops[job.job_id]) for job in jobs]

    def job_count(self) -> int:
        """How many jobs the read model holds, of every organization."""
        with self._session() as s:
            return s.exec(select(func.count()).select_from(JobRow)).one()


def read_model_tables(engine: Engine) -> list[Table]:
    """The read model's tables this database has, children before parents."""
    present = set(inspect(engine).get_table_names())
    return [t for t in reversed(SQLModel.metadata.sorted_tables) if t.name.startswith("status_") and t.name in present]


def tables_with_rows(engine: Engine) -> list[str]:
    """The read model's tables that hold any row (jobs, drivers, erasure tombstones, retention
    settings, outbox): a rebuild's target must have none, since a failed rebuild empties them all."""
    with engine.connect() as conn:
        return sorted(
            t.name for t in read_model_tables(engine) if conn.execute(sa_select(1).select_from(t).limit(1)).first()
        )
