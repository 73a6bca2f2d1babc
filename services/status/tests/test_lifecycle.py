"""A job's status from what is known about it: the rules without a database."""

import pytest

from services.status.lifecycle import JobFacts, advanced, derived_status, settles
from shared.vocabulary import JobStatus, StopStatus

ROUTED = JobFacts(imported=True, routed=True, failed=False, driver_assigned=True)


@pytest.mark.parametrize(
    "facts, stops, status",
    [
        (JobFacts(False, False, False, None), [], JobStatus.PENDING),
        (JobFacts(True, False, False, None), [StopStatus.PENDING], JobStatus.PROCESSING),
        (JobFacts(True, False, True, None), [StopStatus.PENDING], JobStatus.FAILED),
        (ROUTED, [StopStatus.PENDING, StopStatus.UNROUTABLE], JobStatus.ASSIGNED),
        (JobFacts(True, True, False, False), [StopStatus.PENDING], JobStatus.UNASSIGNED),
        (ROUTED, [StopStatus.SKIPPED, StopStatus.PENDING], JobStatus.IN_PROGRESS),
        (ROUTED, [StopStatus.COMPLETED, StopStatus.FAILED, StopStatus.UNROUTABLE], JobStatus.COMPLETED),
        (JobFacts(False, True, False, None), [StopStatus.COMPLETED], JobStatus.UNASSIGNED),  # import still to come
    ],
)
def test_the_status_follows_from_the_facts(facts, stops, status):
    assert derived_status(facts, stops) == status


def test_a_job_never_moves_backwards():
    assert advanced(JobStatus.COMPLETED, JobStatus.FAILED) == JobStatus.COMPLETED
    assert advanced(JobStatus.PROCESSING, JobStatus.ASSIGNED) == JobStatus.ASSIGNED
    assert advanced("unassigned", JobStatus.ASSIGNED) == JobStatus.ASSIGNED  # the same rank: a driver came


def test_a_job_settles_once_unless_its_import_is_published_again():
    assert settles(JobStatus.PROCESSING, JobStatus.ASSIGNED, imported=True, import_replayed=False)
    assert not settles(JobStatus.ASSIGNED, JobStatus.IN_PROGRESS, imported=True, import_replayed=False)
    assert settles(JobStatus.ASSIGNED, JobStatus.ASSIGNED, imported=True, import_replayed=True)
    assert not settles(JobStatus.PENDING, JobStatus.FAILED, imported=False, import_replayed=False)
