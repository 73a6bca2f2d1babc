"""A job's lifecycle: its status follows from what is known about it, and never moves backwards."""

from collections.abc import Iterable
from dataclasses import dataclass

from shared.events import JobWarning
from shared.vocabulary import FINISHED_STOP, SETTLED, JobStatus, StopStatus, WarningCode

# A late or repeated event never lowers a job's rank (a late failure of a completed job changes nothing).
RANK: dict[JobStatus, int] = {
    JobStatus.PENDING: 0,
    JobStatus.PROCESSING: 1,
    JobStatus.ASSIGNED: 2,
    JobStatus.UNASSIGNED: 2,
    JobStatus.FAILED: 2,
    JobStatus.IN_PROGRESS: 3,
    JobStatus.COMPLETED: 4,
    JobStatus.CANCELLED: 5,  # the integrator's word is final (a completed job is never cancelled)
}


@dataclass(frozen=True)
class JobFacts:
    """What the events so far established about a job, in whatever order they arrived."""

    imported: bool
    routed: bool
    failed: bool
    driver_assigned: bool | None
    cancelled: bool = False


def derived_status(facts: JobFacts, stop_statuses: Iterable[str]) -> JobStatus:
    """The status these facts and stop outcomes call for (before the never-backwards rule)."""
    if facts.cancelled:
        return JobStatus.CANCELLED
    on_route = [status for status in stop_statuses if status != StopStatus.UNROUTABLE]
    if facts.routed:
        if facts.imported and any(status in FINISHED_STOP for status in on_route):
            finished = all(status in FINISHED_STOP for status in on_route)
            return JobStatus.COMPLETED if finished else JobStatus.IN_PROGRESS
        return JobStatus.ASSIGNED if facts.driver_assigned else JobStatus.UNASSIGNED
    if facts.failed:
        return JobStatus.FAILED
    return JobStatus.PROCESSING if facts.imported else JobStatus.PENDING


def advanced(current: str, derived: JobStatus) -> str:
    """The status to keep: `derived`, unless that would move the job backwards."""
    return derived if RANK[derived] >= RANK[current] else current


def settles(before: str, after: str, *, imported: bool, import_replayed: bool) -> bool:
    """Whether a waiting import gets its answer now: the job has just settled, or an import of an
    already settled job was published again (a client's retry after an ambiguous broker failure)."""
    return imported and after in SETTLED and (before not in SETTLED or import_replayed)


def driver_not_found(driver_email: str | None) -> JobWarning:
    """The warning of a routed job that no active driver of its organization can take."""
    message = (
        f"No active driver {driver_email} in this organization; the job is unassigned."
        if driver_email
        else "The job names no driver; it is unassigned."
    )
    return JobWarning(code=WarningCode.DRIVER_NOT_FOUND, message=message)
