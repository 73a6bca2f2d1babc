"""Erasing jobs from the read model: their rows go, a tombstone without personal data stays.

The same function serves the DELETE request (at once, so the job is gone before the answer),
the JobErased event (live, and again in a rebuild), the retention task and an organization's
erasure: whichever comes first erases, the others find the tombstone and change nothing.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid5

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from services.status.adapters.tables import (
    DriverRow,
    ErasedJobRow,
    ErasedOrgRow,
    JobRow,
    OrgRetentionRow,
    OutboxRow,
    StopRow,
)
from shared.events import utcnow
from shared.vocabulary import TERMINAL, as_utc

ERASED_CHANGE = "job.erased"  # the outbox tells the notifier: drop this job's deliveries


@dataclass(frozen=True)
class ErasedJob:
    """What erasing found: the job (None: no such job of that organization), and whether it was erased before."""

    job_id: str
    external_job_id: str | None
    already: bool
    org_id: str = ""
    reason: str = "request"


def erase_rows(s: Session, org_id: str, job_id: str, at: datetime, reason: str) -> ErasedJob | None:
    """In the caller's transaction: the job's rows deleted, its tombstone written, the notifier told.
    None when the organization has no such job (nor had: another organization's job is not touched)."""
    if (gone := s.get(ErasedJobRow, job_id)) is not None:
        return ErasedJob(job_id, None, already=True, org_id=org_id, reason=reason) if gone.org_id == org_id else None
    job = s.get(JobRow, job_id)
    if job is not None and job.org_id != org_id:
        return None
    external = job.external_job_id if job is not None else None
    for table in (StopRow, OutboxRow):
        s.exec(delete(table).where(col(table.job_id) == job_id))
    if job is not None:
        s.delete(job)
    s.add(ErasedJobRow(job_id=job_id, org_id=org_id, erased_at=at, reason=reason))
    s.add(
        OutboxRow(
            change_id=str(uuid5(UUID(int=0), f"{ERASED_CHANGE}:{job_id}")),
            org_id=org_id,
            job_id=job_id,
            change_type=ERASED_CHANGE,
            version=0,
            occurred_at=at,
            data={"job_id": job_id},
        )
    )
    return ErasedJob(job_id, external, already=False, org_id=org_id, reason=reason)


def is_erased(s: Session, org_id: str, job_id: str | None) -> bool:
    """Whether the event's job, or its whole organization, was erased."""
    if s.get(ErasedOrgRow, org_id) is not None:
        return True
    return job_id is not None and s.get(ErasedJobRow, job_id) is not None


def erase_organization_rows(s: Session, org_id: str, at: datetime) -> list[ErasedJob]:
    """In the caller's transaction: every job of the organization erased, its drivers and its
    retention setting deleted, and its tombstone written."""
    jobs = s.exec(select(JobRow.job_id).where(JobRow.org_id == org_id)).all()
    erased = [gone for job_id in jobs if (gone := erase_rows(s, org_id, job_id, at, "organization")) is not None]
    s.exec(delete(DriverRow).where(col(DriverRow.org_id) == org_id))
    s.exec(delete(OrgRetentionRow).where(col(OrgRetentionRow.org_id) == org_id))
    s.merge(ErasedOrgRow(org_id=org_id, erased_at=at))
    return [gone for gone in erased if not gone.already]


class Erasure:
    """The erasing side of the read model."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def erase(self, org_id: str, job_id: str, reason: str = "request") -> ErasedJob | None:
        """Erase one job of the organization now (one transaction)."""
        with Session(self.engine) as s:
            found = erase_rows(s, org_id, job_id, utcnow(), reason)
            s.commit()
        return found

    def owner(self, job_id: str) -> str | None:
        """The organization the job belongs (or belonged, if erased) to; None if unknown."""
        with Session(self.engine) as s:
            if (gone := s.get(ErasedJobRow, job_id)) is not None:
                return gone.org_id
            job = s.get(JobRow, job_id)
            return job.org_id if job is not None and job.imported else None

    def jobs_of(self, org_id: str) -> list[str]:
        """Every job of the organization still in the read model (an organization's erasure takes them all)."""
        with Session(self.engine) as s:
            return list(s.exec(select(JobRow.job_id).where(JobRow.org_id == org_id)).all())

    def expired(self, now: datetime, platform_days: float | None, cap_days: float | None, limit: int) -> list[JobRow]:
        """Finished jobs older than their organization's retention: the platform's setting where it
        overrides, else the organization's, never longer than the cap."""
        with Session(self.engine, expire_on_commit=False) as s:
            days = {row.org_id: row.job_retention_days for row in s.exec(select(OrgRetentionRow)).all()}
            candidates = set(days) if platform_days is None and cap_days is None else None
            found: list[JobRow] = []
            query = select(JobRow).where(col(JobRow.status).in_(list(TERMINAL))).order_by(col(JobRow.updated_at))
            if candidates is not None:
                query = query.where(col(JobRow.org_id).in_(sorted(candidates)))
            for job in s.exec(query).all():
                keep = retention_days(days.get(job.org_id), platform_days, cap_days)
                if keep is not None and as_utc(job.updated_at) < now - timedelta(days=keep):
                    found.append(job)
                    if len(found) >= limit:
                        break
            return found

    def set_retention(self, org_id: str, days: float | None) -> None:
        with Session(self.engine) as s:
            s.merge(OrgRetentionRow(org_id=org_id, job_retention_days=days))
            s.commit()


def retention_days(org_days: float | None, platform_days: float | None, cap_days: float | None) -> float | None:
    """How long a finished job is kept: the platform's override, else the organization's own
    setting; either is cut to the platform's cap. None: for ever (the default)."""
    days = platform_days if platform_days is not None else org_days
    if cap_days is not None:
        days = cap_days if days is None else min(days, cap_days)
    return days
