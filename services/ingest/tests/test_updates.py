"""Update by re-import (If-Match) on MemoryRedis and a fake bus: only onto the current version."""

import asyncio
import contextlib
import time
from types import SimpleNamespace

import pytest

from services.ingest.adapters import JobHeads, Lanes, Outcomes, Reservations
from services.ingest.handlers import Accepted, ImportDependencies, ImportJob, Settled
from services.ingest.tests.support import FakeBus, data_keys
from services.ingest.updates import UNDER_WAY_S, import_or_update
from shared.channels import JOB_OUTCOME, JobHead, JobSettled, announcement, jobhead_key, outcome_key, seal_outcome
from shared.errors import Problem
from shared.testing.builders import import_body
from shared.testing.fakes import MemoryRedis
from shared.testing.waiting import async_wait_until
from shared.vocabulary import JobStatus

ORG = "org_a"


@pytest.fixture
async def redis():
    return MemoryRedis()


@pytest.fixture
async def outcomes(redis):
    outcomes = Outcomes(redis, data_keys(redis))
    outcomes.start()

    async def subscribed():
        return redis.subscribers

    await async_wait_until(subscribed, seconds=2, every=0.01, what="the outcome listener subscribed")
    yield outcomes
    await outcomes.stop()


class Clock:
    """Wall time the tests move on (the reservations' record of when an update went out)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


CLOCK = Clock()


def deps(redis, outcomes, bus) -> ImportDependencies:
    return ImportDependencies(
        reservations=Reservations(redis, 3600, clock=CLOCK),
        outcomes=outcomes,
        bus=bus,
        lanes=Lanes(redis, fair_share=2, ttl_s=3600),
        max_stops=500,
        publish_timeout_s=0.5,
        wait_s=2.0,
        heads=JobHeads(redis),
    )


def command(body: dict, if_match: str | None = None, org_id: str = ORG) -> ImportJob:
    return ImportJob(org_id, "rm_ci_1", body, False, if_match)


async def head(
    redis, job_id: str, version: int, org_id: str = ORG, status="in_progress", finished=("S1",), spec_version: int = 1
) -> None:
    record = JobHead(org_id=org_id, version=version, status=status, finished=finished, spec_version=spec_version)
    await redis.set(jobhead_key(job_id), record.model_dump_json())


async def announce(redis, event, view: dict, rejected: int | None = None) -> None:
    """What the status service does once the update is applied (or refused): the outcome kept and
    announced, sealed under the job's data key."""
    message = JobSettled(job_id=event.job_id, org_id=event.org_id, job=view, rejected_spec_version=rejected)
    sealed = seal_outcome(message.model_dump_json(), await data_keys(redis).key_for(event.job_id), event.job_id)
    await redis.set(outcome_key(event.job_id), sealed)
    await redis.publish(JOB_OUTCOME, announcement(event.job_id, sealed))


async def imported(redis, outcomes) -> tuple[dict, str]:
    """A first import, settled: its body and job id."""
    body = import_body(external_job_id="RUN-1")
    bus = FakeBus(then=lambda e: announce(redis, e, {"job_id": e.job_id, "version": 3, "spec_version": 1}))
    first = await import_or_update(command(body), deps(redis, outcomes, bus))
    return body, first.job_id


def changed(body: dict) -> dict:
    return {**body, "stops": [{**body["stops"][0], "address": "9 Ann St, Brisbane QLD 4000"}, *body["stops"][1:]]}


async def test_a_changed_body_without_if_match_stays_a_409(redis, outcomes):
    body, _ = await imported(redis, outcomes)
    with pytest.raises(Problem) as conflict:
        await import_or_update(command(changed(body)), deps(redis, outcomes, FakeBus()))
    assert (conflict.value.status, conflict.value.code) == (409, "idempotency_conflict")


async def test_if_match_of_the_current_version_publishes_the_next_spec_of_the_same_job(redis, outcomes):
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7)
    view = {"job_id": job_id, "version": 9, "spec_version": 2}
    bus = FakeBus(then=lambda e: announce(redis, e, view))
    answer = await import_or_update(command(changed(body), '"7"'), deps(redis, outcomes, bus))
    [event] = bus.published
    assert (event.job_id, event.spec_version, event.base_version, event.keep) == (job_id, 2, 7, ("S1",))
    assert event.job.stops[0].stop_id == f"{job_id}.2.1"  # new stop ids never take an old one's
    assert isinstance(answer, Settled) and answer.updated and answer.view == view
    replay = await import_or_update(command(changed(body)), deps(redis, outcomes, FakeBus()))
    assert replay.replayed and replay.job_id == job_id  # the updated body is now the one that replays


async def test_a_stale_or_unknown_version_is_412_with_the_current_etag(redis, outcomes):
    body, job_id = await imported(redis, outcomes)
    bus = FakeBus()
    with pytest.raises(Problem) as missing:  # no head yet
        await import_or_update(command(changed(body), '"3"'), deps(redis, outcomes, bus))
    assert (missing.value.status, missing.value.code) == (412, "precondition_failed")
    await head(redis, job_id, version=5, org_id="org_b")  # another organization's head: as if missing
    with pytest.raises(Problem) as theirs:
        await import_or_update(command(changed(body), '"5"'), deps(redis, outcomes, bus))
    assert theirs.value.status == 412 and "ETag" not in theirs.value.headers
    await head(redis, job_id, version=5)
    with pytest.raises(Problem) as stale:
        await import_or_update(command(changed(body), '"4"'), deps(redis, outcomes, bus))
    assert stale.value.status == 412 and stale.value.headers["ETag"] == '"5"'
    with pytest.raises(Problem) as nothing:
        await import_or_update(command(import_body(external_job_id="NEW"), '"1"'), deps(redis, outcomes, bus))
    assert nothing.value.status == 412
    assert bus.published == []


async def test_an_update_the_projection_refuses_is_412_and_the_old_body_still_replays(redis, outcomes):
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7)
    bus = FakeBus(then=lambda e: announce(redis, e, {"job_id": job_id, "version": 8, "spec_version": 1}, rejected=2))
    with pytest.raises(Problem) as refused:
        await import_or_update(command(changed(body), '"7"'), deps(redis, outcomes, bus))
    assert (refused.value.status, refused.value.headers["ETag"]) == (412, '"8"')
    replay = await import_or_update(command(body), deps(redis, outcomes, FakeBus()))
    assert replay.replayed and replay.job_id == job_id


async def test_two_updates_racing_for_the_same_spec_cannot_both_go_out(redis, outcomes):
    """Theirs claims spec 2 between our reading the job's attempts and our claim: ours is refused
    (412), not published as a second body of spec 2."""
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7)
    bus = FakeBus()
    ours = deps(redis, outcomes, bus)
    read = ours.reservations.attempts

    async def read_before_theirs(key: str, job: str):
        found = await read(key, job)
        assert await Reservations(redis, 3600).claim_update(key, job, 2, "theirs", 7)
        return found

    ours.reservations.attempts = read_before_theirs
    with pytest.raises(Problem) as lost:
        await import_or_update(command(changed(body), '"7"'), ours)
    assert lost.value.status == 412 and bus.attempts == []


async def test_a_cancelled_job_is_not_updated(redis, outcomes):
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7, status="cancelled")
    with pytest.raises(Problem) as over:
        await import_or_update(command(changed(body), "*"), deps(redis, outcomes, FakeBus()))
    assert (over.value.status, over.value.code) == (409, "illegal_transition")


def test_new_job_ids_are_uuids_as_the_public_docs_show():
    import uuid

    from services.ingest.handlers import new_job_id

    job_id = new_job_id()
    assert str(uuid.UUID(job_id)) == job_id and uuid.UUID(job_id).version == 4


async def test_an_update_whose_publish_timed_out_but_reached_kafka_answers_its_retry_with_the_update(redis, outcomes):
    """The broker took the update after the 503 (the producer still held it): the job is at the new
    spec, so the client's retry with its If-Match, stale by that update alone, gets the update, not
    a 412; and it is not published a second time."""
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7)
    late = FakeBus(fail=True)
    with pytest.raises(Problem) as unavailable:
        await import_or_update(command(changed(body), '"7"'), deps(redis, outcomes, late))
    assert unavailable.value.status == 503
    [attempt] = late.attempts
    # delivered after all, and applied: the head and the kept outcome at spec 2
    await head(redis, job_id, version=9, spec_version=2)
    await announce(redis, attempt, {"job_id": job_id, "version": 9, "spec_version": 2})
    retry_bus = FakeBus()
    answer = await import_or_update(command(changed(body), '"7"'), deps(redis, outcomes, retry_bus))
    assert isinstance(answer, Settled) and answer.updated and answer.view["spec_version"] == 2
    assert retry_bus.attempts == []
    replay = await import_or_update(command(changed(body)), deps(redis, outcomes, FakeBus()))
    assert replay.replayed and replay.job_id == job_id  # the updated body is the one that replays
    with pytest.raises(Problem) as other:  # another body from the old version: stale, as ever
        await import_or_update(
            command(changed(changed(body)) | {"title": "x"}, '"7"'), deps(redis, outcomes, FakeBus())
        )
    assert other.value.status == 412


async def test_an_update_in_doubt_that_has_not_landed_goes_out_again_as_the_same_event(redis, outcomes):
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7)
    late = FakeBus(fail=True)
    with pytest.raises(Problem):
        await import_or_update(command(changed(body), '"7"'), deps(redis, outcomes, late))
    view = {"job_id": job_id, "version": 9, "spec_version": 2}
    bus = FakeBus(then=lambda e: announce(redis, e, view))
    answer = await import_or_update(command(changed(body), '"7"'), deps(redis, outcomes, bus))
    assert isinstance(answer, Settled) and answer.updated
    [again] = bus.published
    assert again.event_id == late.attempts[0].event_id  # both landing: a redelivery, applied once
    assert (again.spec_version, again.base_version) == (2, 7)


async def test_while_an_update_is_in_doubt_another_body_takes_the_spec_after_it(redis, outcomes):
    """The update in doubt may still land as spec 2: another body from the same version goes out
    as spec 3, so the projection's version check decides between them and no spec is two bodies'."""
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7)
    with pytest.raises(Problem):
        await import_or_update(command(changed(body), '"7"'), deps(redis, outcomes, FakeBus(fail=True)))
    with pytest.raises(Problem) as held:  # while it may still land, another body from that version waits
        await import_or_update(command({**body, "title": "another"}, '"7"'), deps(redis, outcomes, FakeBus()))
    assert held.value.status == 412
    CLOCK.now += UNDER_WAY_S + 1  # it did not land: it keeps its spec, but holds nothing back
    view = {"job_id": job_id, "version": 9, "spec_version": 3}
    bus = FakeBus(then=lambda e: announce(redis, e, view))
    answer = await import_or_update(command({**body, "title": "another"}, '"7"'), deps(redis, outcomes, bus))
    [other] = bus.published
    assert (other.spec_version, other.base_version) == (3, 7)
    assert isinstance(answer, Settled) and answer.updated


async def test_an_older_refusal_kept_for_the_job_does_not_answer_a_new_update(redis, outcomes):
    """The kept outcome says the projection refused spec 2 (an update that landed late, its version
    stale); a new update is spec 3 and waits for its own outcome."""
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7)
    with pytest.raises(Problem):
        await import_or_update(command(changed(body), '"7"'), deps(redis, outcomes, FakeBus(fail=True)))
    landed = SimpleNamespace(job_id=job_id, org_id=ORG)  # it landed after all, onto a newer version: refused
    await announce(redis, landed, {"job_id": job_id, "version": 8, "spec_version": 1}, rejected=2)
    await head(redis, job_id, version=8)
    view = {"job_id": job_id, "version": 10, "spec_version": 3}
    bus = FakeBus(then=lambda e: announce(redis, e, view))
    answer = await import_or_update(command({**body, "title": "newer"}, '"8"'), deps(redis, outcomes, bus))
    assert isinstance(answer, Settled) and answer.updated and answer.view == view


async def test_a_retry_from_a_newer_version_is_a_new_attempt_with_a_spec_of_its_own(redis, outcomes):
    """The update in doubt (spec 2 onto version 7) can now only be refused or ignored when it
    lands (the job moved to version 8): the client's retry onto 8 goes out as spec 3, its own
    event, and an answer about spec 2 is never taken for it."""
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7)
    late = FakeBus(fail=True)
    with pytest.raises(Problem):
        await import_or_update(command(changed(body), '"7"'), deps(redis, outcomes, late))
    await head(redis, job_id, version=8)  # a stop reported meanwhile
    view = {"job_id": job_id, "version": 10, "spec_version": 3}
    bus = FakeBus(then=lambda e: announce(redis, e, view))
    answer = await import_or_update(command(changed(body), '"8"'), deps(redis, outcomes, bus))
    [retry] = bus.published
    assert (retry.spec_version, retry.base_version) == (3, 8) and retry.event_id != late.attempts[0].event_id
    assert isinstance(answer, Settled) and answer.view == view


async def test_an_update_that_landed_late_behind_a_later_acknowledged_one_is_still_found_applied(redis, outcomes):
    """D1 (spec 2) in doubt, D2 (spec 3) acknowledged; D1 lands first and is applied, D2 refused:
    D1's retry gets D1, though the reservation recorded D2."""
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7)
    with pytest.raises(Problem):
        await import_or_update(command(changed(body), '"7"'), deps(redis, outcomes, FakeBus(fail=True)))
    CLOCK.now += UNDER_WAY_S + 1
    refused = FakeBus(then=lambda e: announce(redis, e, {"job_id": job_id, "version": 10, "spec_version": 2}, 3))
    with pytest.raises(Problem) as theirs:
        await import_or_update(command({**body, "title": "theirs"}, '"7"'), deps(redis, outcomes, refused))
    assert theirs.value.status == 412 and refused.published[0].spec_version == 3
    await head(redis, job_id, version=10, spec_version=2)
    answer = await import_or_update(command(changed(body), '"7"'), deps(redis, outcomes, FakeBus()))
    assert isinstance(answer, Settled) and answer.updated and answer.view["spec_version"] == 2


async def test_redis_failing_after_kafka_acknowledged_an_update_is_no_503_and_leaves_no_waiter(redis, outcomes):
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7)
    view = {"job_id": job_id, "version": 9, "spec_version": 2}
    d = deps(redis, outcomes, FakeBus(then=lambda e: announce(redis, e, view)))

    async def failing(*args, **kwargs):
        raise ConnectionError("redis went away")

    d.reservations.updated = failing
    answer = await import_or_update(command(changed(body), '"7"'), d)
    assert isinstance(answer, Settled) and answer.view == view
    assert outcomes._waiters == {}


async def test_an_update_request_dying_mid_publish_holds_its_spec_and_blocks_nothing(redis, outcomes):
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7)
    slow = FakeBus(delay=5)
    dying = asyncio.create_task(import_or_update(command(changed(body), '"7"'), deps(redis, outcomes, slow)))
    await asyncio.sleep(0.1)
    dying.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await dying
    assert outcomes._waiters == {}
    CLOCK.now += UNDER_WAY_S + 1
    bus = FakeBus(then=lambda e: announce(redis, e, {"job_id": job_id, "version": 9, "spec_version": 3}))
    answer = await import_or_update(command({**body, "title": "next"}, '"7"'), deps(redis, outcomes, bus))
    assert bus.published[0].spec_version == 3 and isinstance(answer, Settled)


async def test_a_later_specs_settling_is_not_taken_for_this_updates_answer(redis, outcomes):
    """Spec 3 settled while spec 2 was awaited: spec 2 was dropped behind it (stale, unannounced)
    or is still to come; not "applied" either way, so the answer is 202, never 200 with spec 3's body."""
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7)
    bus = FakeBus(then=lambda e: announce(redis, e, {"job_id": job_id, "version": 9, "spec_version": 3}))
    answer = await import_or_update(command(changed(body), '"7"'), deps(redis, outcomes, bus))
    assert bus.published[0].spec_version == 2
    assert isinstance(answer, Accepted) and answer.status == JobStatus.PROCESSING


async def test_an_async_update_the_projection_refused_leaves_the_job_replaying_its_own_body(redis, outcomes):
    """No request waited for the refusal (Prefer: respond-async), so none put the reservation back:
    the job's own body still replays, the refused one is no replay (a 409 plain, a 412 with its
    stale If-Match), and from the job's version it goes out as a spec of its own."""
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7)
    bus = FakeBus()
    accepted = await import_or_update(ImportJob(ORG, "rm_ci_1", changed(body), True, '"7"'), deps(redis, outcomes, bus))
    assert isinstance(accepted, Accepted)
    [refused] = bus.published
    # a stop was reported meanwhile (version 8): the projection refuses spec 2, the job stays spec 1
    await head(redis, job_id, version=8)
    await announce(redis, refused, {"job_id": job_id, "version": 8, "spec_version": 1}, rejected=2)
    again = await import_or_update(command(body), deps(redis, outcomes, FakeBus()))
    assert isinstance(again, Settled) and again.replayed and again.view["version"] == 8
    with pytest.raises(Problem) as conflict:
        await import_or_update(command(changed(body)), deps(redis, outcomes, FakeBus()))
    assert (conflict.value.status, conflict.value.code) == (409, "idempotency_conflict")
    with pytest.raises(Problem) as stale:
        await import_or_update(command(changed(body), '"7"'), deps(redis, outcomes, FakeBus()))
    assert stale.value.status == 412 and stale.value.headers["ETag"] == '"8"'
    same = await import_or_update(command(body, '"8"'), deps(redis, outcomes, FakeBus()))  # nothing to change
    assert isinstance(same, Settled) and same.replayed
    retry = FakeBus()
    await import_or_update(ImportJob(ORG, "rm_ci_1", changed(body), True, '"8"'), deps(redis, outcomes, retry))
    [next_one] = retry.published
    assert (next_one.spec_version, next_one.base_version) == (3, 8)


async def test_an_update_under_way_replays_as_the_body_it_will_be(redis, outcomes):
    """Acknowledged, not projected yet (the job still at the version it applies onto): its body
    replays, and the job's body before is no longer the replay."""
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7)
    bus = FakeBus()
    await import_or_update(ImportJob(ORG, "rm_ci_1", changed(body), True, '"7"'), deps(redis, outcomes, bus))
    quick = await import_or_update(ImportJob(ORG, "rm_ci_1", changed(body), True), deps(redis, outcomes, FakeBus()))
    assert quick.replayed and quick.job_id == job_id
    with pytest.raises(Problem) as conflict:
        await import_or_update(command(body), deps(redis, outcomes, FakeBus()))
    assert conflict.value.status == 409


async def test_our_outcome_announced_while_an_earlier_one_is_opened_is_not_missed(redis, outcomes):
    """Opening a heard outcome reads the job's key from Redis, and the loop turns meanwhile: an
    earlier spec's outcome heard, then ours announced while that one is opened, with no waiter here
    in between. Status keeps each outcome before announcing it, so the update finds its own there
    at once (200), instead of after its whole wait."""
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7)
    read = outcomes.keys.keys

    async def slow_read(job_ids):
        found = await read(job_ids)
        await asyncio.sleep(0.05)
        return found

    outcomes.keys.keys = slow_read
    view = {"job_id": job_id, "version": 9, "spec_version": 2}
    later: list[asyncio.Task] = []

    async def pipeline(event):
        await announce(redis, event, {"job_id": job_id, "version": 8, "spec_version": 1})  # an earlier one

        async def ours():
            await asyncio.sleep(0.01)
            await announce(redis, event, view)

        later.append(asyncio.create_task(ours()))

    started = time.monotonic()
    answer = await import_or_update(command(changed(body), '"7"'), deps(redis, outcomes, FakeBus(then=pipeline)))
    assert isinstance(answer, Settled) and answer.updated and answer.view == view
    assert time.monotonic() - started < 1  # its wait is 2 s


@pytest.mark.parametrize("if_match", [None, '"8"'], ids=["plain", "if-match"])
async def test_a_replay_corrects_the_reservation_so_it_outlives_the_jobs_head(redis, outcomes, if_match):
    """After an async update was refused, the job's own body replays, and its replay sets the
    reservation back to it: the job's head lives a day, the reservation a week."""
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7)
    await import_or_update(ImportJob(ORG, "rm_ci_1", changed(body), True, '"7"'), deps(redis, outcomes, FakeBus()))
    await head(redis, job_id, version=8)  # the job moved past the update's base: it is refused
    again = await import_or_update(command(body, if_match), deps(redis, outcomes, FakeBus()))
    assert isinstance(again, Settled) and again.replayed
    reservation = await Reservations(redis, 3600).get(Reservations.key(ORG, body["external_job_id"]))
    assert reservation.spec_version == 2  # still the latest spec published
    await redis.delete(jobhead_key(job_id))  # a day on
    assert (await import_or_update(command(body), deps(redis, outcomes, FakeBus()))).replayed
    with pytest.raises(Problem) as conflict:
        await import_or_update(command(changed(body)), deps(redis, outcomes, FakeBus()))
    assert conflict.value.status == 409


async def test_a_reservation_is_corrected_only_while_it_holds_what_was_read(redis):
    reservations = Reservations(redis, 3600)
    await reservations.reserve("rm:r", "job_1", "import")
    read = await reservations.get("rm:r")
    await reservations.updated("rm:r", "job_1", "update", 3)  # an update acknowledged meanwhile
    assert not await reservations.correct("rm:r", read, "import", 1)
    now = await reservations.get("rm:r")
    assert now.payload_hash == "update"
    assert await reservations.correct("rm:r", now, "import", 1)
    fixed = await reservations.get("rm:r")
    assert (fixed.payload_hash, fixed.spec_version) == ("import", 3) and await redis.ttl("rm:r") > 0
    await redis.delete("rm:r")  # erased meanwhile: not made again
    assert not await reservations.correct("rm:r", fixed, "update", 1) and await redis.get("rm:r") is None


async def test_a_replay_of_a_job_never_updated_reads_nothing_more(redis, outcomes):
    body, _ = await imported(redis, outcomes)
    d = deps(redis, outcomes, FakeBus())

    async def unread(*args):
        raise AssertionError("read on the import path of a job never updated")

    d.heads.get = unread
    d.reservations.attempts = unread
    assert (await import_or_update(command(body), d)).replayed


async def test_the_updated_body_again_with_its_if_match_is_a_replay(redis, outcomes):
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7)
    view = {"job_id": job_id, "version": 9, "spec_version": 2}
    await import_or_update(
        command(changed(body), '"7"'), deps(redis, outcomes, FakeBus(then=lambda e: announce(redis, e, view)))
    )
    await head(redis, job_id, version=9, spec_version=2)
    again = await import_or_update(command(changed(body), '"7"'), deps(redis, outcomes, FakeBus()))
    assert isinstance(again, Settled) and again.replayed and not again.updated and again.view == view


async def test_an_update_record_kept_before_spec_1_was_recorded_gets_it_from_the_next_update(redis, outcomes):
    """An older release's update in doubt left the record without spec 1's body: the next update
    records it, so a refusal of that one still leaves the job's own body replaying."""
    body, job_id = await imported(redis, outcomes)
    key = Reservations.key(ORG, body["external_job_id"])
    assert await Reservations(redis, 3600).claim_update(key, job_id, 2, "older", 5)  # never landed
    await head(redis, job_id, version=7)
    bus = FakeBus()
    await import_or_update(ImportJob(ORG, "rm_ci_1", changed(body), True, '"7"'), deps(redis, outcomes, bus))
    assert bus.published[0].spec_version == 3
    await head(redis, job_id, version=8)  # refused
    assert (await import_or_update(command(body), deps(redis, outcomes, FakeBus()))).replayed


async def test_a_refusal_heard_after_a_later_update_was_acknowledged_does_not_put_the_old_body_back(redis, outcomes):
    """Spec 2 waits for its outcome; meanwhile a stop report moves the job and another request's
    update (spec 3, from the new version) is acknowledged. Spec 2's refusal must not make the
    reservation replay the body before spec 2 over spec 3's."""
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7)
    key = Reservations.key(ORG, body["external_job_id"])

    later: list[asyncio.Task] = []

    async def meanwhile(event):  # after spec 2's acknowledgement, while its request waits
        async def spec_3_then_the_refusal():
            await asyncio.sleep(0.05)
            await Reservations(redis, 3600).updated(key, job_id, "spec-3-body", 3)
            await announce(redis, event, {"job_id": job_id, "version": 8, "spec_version": 1}, rejected=2)

        later.append(asyncio.create_task(spec_3_then_the_refusal()))

    with pytest.raises(Problem) as refused:
        await import_or_update(command(changed(body), '"7"'), deps(redis, outcomes, FakeBus(then=meanwhile)))
    assert refused.value.status == 412
    held = await Reservations(redis, 3600).get(key)
    assert (held.payload_hash, held.spec_version) == ("spec-3-body", 3)


async def test_the_jobs_own_updated_body_after_a_refused_update_is_a_replay(redis, outcomes):
    """The job is at spec 2; an async spec 3 was refused. Spec 2's body again, with its old If-Match,
    is the job's own body: answered 200 with the job, and the reservation set back to it."""
    body, job_id = await imported(redis, outcomes)
    await head(redis, job_id, version=7)
    view = {"job_id": job_id, "version": 9, "spec_version": 2}
    second = changed(body)
    await import_or_update(
        command(second, '"7"'), deps(redis, outcomes, FakeBus(then=lambda e: announce(redis, e, view)))
    )
    await head(redis, job_id, version=9, spec_version=2)
    third = {**second, "title": "third"}
    await import_or_update(ImportJob(ORG, "rm_ci_1", third, True, '"9"'), deps(redis, outcomes, FakeBus()))
    await head(redis, job_id, version=10, spec_version=2)  # moved past spec 3's base: refused
    again = await import_or_update(command(second, '"7"'), deps(redis, outcomes, FakeBus()))
    assert isinstance(again, Settled) and again.view["spec_version"] == 2
    held = await Reservations(redis, 3600).get(Reservations.key(ORG, body["external_job_id"]))
    assert held.spec_version == 3
    assert (await import_or_update(command(second), deps(redis, outcomes, FakeBus()))).replayed
