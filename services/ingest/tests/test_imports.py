"""The import use-case on MemoryRedis and a fake bus: exactly one job per import, however it is retried."""

import asyncio
import time

import pytest

from services.ingest.adapters import Lanes, Outcomes, Reservations
from services.ingest.handlers import (
    Accepted,
    ImportDependencies,
    ImportJob,
    Settled,
    admit,
    import_job,
    parse_import,
    payload_hash,
)
from services.ingest.metrics import RATE_LIMITED
from services.ingest.tests.support import FakeBus, FakeLimiter, data_keys, settle
from shared.channels import JOB_OUTCOME, JobSettled, announcement, inflight_key, outcome_key, pack_outcome, seal_outcome
from shared.errors import Problem
from shared.pii import BLOB
from shared.testing.builders import import_body
from shared.testing.fakes import MemoryRedis
from shared.testing.waiting import async_wait_until
from shared.vocabulary import JobStatus

ORG = "org_a"


@pytest.fixture
async def redis():
    redis = MemoryRedis()
    yield redis
    redis.down = False


@pytest.fixture
async def outcomes(redis):
    outcomes = Outcomes(redis, data_keys(redis))
    outcomes.start()

    async def subscribed():
        return redis.subscribers

    await async_wait_until(subscribed, seconds=2, every=0.01, what="the outcome listener subscribed")
    yield outcomes
    await outcomes.stop()


def dependencies(redis, outcomes, bus, **over) -> ImportDependencies:
    values = {"max_stops": 500, "publish_timeout_s": 0.5, "wait_s": 2.0, **over}
    lanes = Lanes(redis, fair_share=2, ttl_s=3600)
    return ImportDependencies(reservations=Reservations(redis, 3600), outcomes=outcomes, bus=bus, lanes=lanes, **values)


def command(body: dict, respond_async: bool = False, org_id: str = ORG) -> ImportJob:
    return ImportJob(org_id, "rm_ci_1", body, respond_async)


def digest_of(body: dict) -> str:
    return payload_hash(parse_import(body, 500)[0])


async def test_a_first_import_is_published_once_and_answered_with_its_route(redis, outcomes):
    bus = FakeBus(then=lambda event: settle(redis, event))
    answer = await import_job(command(import_body(priority="high")), dependencies(redis, outcomes, bus))
    [event] = bus.published
    assert isinstance(answer, Settled) and not answer.replayed
    assert answer.job_id == event.job_id and answer.view["status"] == "assigned"
    assert (event.org_id, event.integration_id) == (ORG, "rm_ci_1")
    assert [w.message.split()[0] for w in event.warnings] == ["/priority"]


async def test_respond_async_answers_pending_at_once_and_no_outcome_in_time_answers_processing(redis, outcomes):
    deps = dependencies(redis, outcomes, FakeBus(), wait_s=0.1)
    pending = await import_job(command(import_body(), respond_async=True), deps)
    processing = await import_job(command(import_body(external_job_id="another")), deps)
    assert isinstance(pending, Accepted) and pending.status == JobStatus.PENDING and not pending.replayed
    assert isinstance(processing, Accepted) and processing.status == JobStatus.PROCESSING


async def test_an_identical_concurrent_duplicate_waits_and_replays_the_same_job(redis, outcomes):
    bus = FakeBus(delay=0.3, then=lambda event: settle(redis, event))
    deps = dependencies(redis, outcomes, bus)
    body = import_body()
    first, second = await asyncio.gather(import_job(command(body), deps), import_job(command(body), deps))
    assert len(bus.attempts) == 1
    assert isinstance(first, Settled) and isinstance(second, Settled)
    assert first.job_id == second.job_id == bus.published[0].job_id
    assert sorted([first.replayed, second.replayed]) == [False, True]


async def test_the_same_external_id_with_another_body_conflicts(redis, outcomes):
    bus = FakeBus()
    deps = dependencies(redis, outcomes, bus)
    first = await import_job(command(import_body(), respond_async=True), deps)
    with pytest.raises(Problem) as conflict:
        await import_job(command(import_body(title="something else"), respond_async=True), deps)
    assert (conflict.value.status, conflict.value.code) == (409, "idempotency_conflict")
    assert conflict.value.extra["job_id"] == first.job_id and len(bus.published) == 1


async def test_the_same_external_id_in_another_organization_is_another_job(redis, outcomes):
    deps = dependencies(redis, outcomes, FakeBus())
    ours = await import_job(command(import_body(), respond_async=True), deps)
    theirs = await import_job(command(import_body(), respond_async=True, org_id="org_b"), deps)
    assert ours.job_id != theirs.job_id and not theirs.replayed


async def test_a_dead_publishers_reservation_is_taken_over_under_its_job_id(redis, outcomes):
    body = import_body()
    a_minute_ago = Reservations(redis, 3600, clock=lambda: time.time() - 60)
    await a_minute_ago.reserve(Reservations.key(ORG, body["external_job_id"]), "job_dead", digest_of(body))
    bus = FakeBus()
    answer = await import_job(command(body, respond_async=True), dependencies(redis, outcomes, bus))
    assert answer.job_id == "job_dead" and not answer.replayed
    assert [e.job_id for e in bus.published] == ["job_dead"]


@pytest.mark.parametrize("bus", [FakeBus(fail=True), FakeBus(delay=1.0)], ids=["kafka refuses", "kafka too slow"])
async def test_a_failed_publish_is_503_and_the_retry_publishes_under_the_same_job_id(redis, outcomes, bus):
    body = import_body()
    with pytest.raises(Problem) as unavailable:
        await import_job(command(body), dependencies(redis, outcomes, bus, publish_timeout_s=0.2))
    assert (unavailable.value.status, unavailable.value.code) == (503, "dependency_unavailable")
    assert unavailable.value.headers["Retry-After"] == "5"
    retry_bus = FakeBus()
    started = time.monotonic()
    again = await import_job(command(body, respond_async=True), dependencies(redis, outcomes, retry_bus))
    assert again.job_id == bus.attempts[0].job_id == retry_bus.published[0].job_id
    # the same event: if the slow attempt reached Kafka after all, the stages see a redelivery
    assert retry_bus.published[0].event_id == bus.attempts[0].event_id
    assert not again.replayed
    assert time.monotonic() - started < 1  # the failed attempt let go of its reservation: no waiting it out


async def test_a_retry_whose_timed_out_attempt_reached_kafka_after_all_and_settled_answers_with_that_route(
    redis, outcomes
):
    """A broker outage: the first attempt's ack never came (503), but the producer delivered it once
    the broker was back, and the job settled before the client retried. The retry's event is that
    same event again (the stages take it as a redelivery and nothing settles a second time): it
    answers with the kept route at once, not after INGEST_WAIT_SECONDS with a 202."""
    body, slow = import_body(), FakeBus(delay=1.0)
    with pytest.raises(Problem):
        await import_job(command(body), dependencies(redis, outcomes, slow, publish_timeout_s=0.2))
    # ... the producer delivered it after all, and its job settled (announced long before the retry)
    view = await settle(redis, slow.attempts[0], announce=False)
    retry_bus = FakeBus()
    started = time.monotonic()
    again = await import_job(command(body), dependencies(redis, outcomes, retry_bus, wait_s=10))
    assert isinstance(again, Settled) and not again.replayed
    assert again.job_id == slow.attempts[0].job_id and again.view == view
    assert retry_bus.published[0].event_id == slow.attempts[0].event_id  # a duplicate, not a second job
    assert time.monotonic() - started < 1
    assert await redis.zcard(inflight_key(ORG)) == 0  # settled: not counted in flight against the fair share


@pytest.mark.parametrize("kept", ["sealed", "packed", "plain"], ids=["sealed", "packed-before-sealing", "plain"])
async def test_a_replay_answers_at_once_with_the_outcome_the_status_service_kept(redis, outcomes, kept):
    deps = dependencies(redis, outcomes, FakeBus(), wait_s=10)
    body = import_body()
    first = await import_job(command(body, respond_async=True), deps)
    view = await settle(redis, deps.bus.published[0], announce=False, kept=kept)
    started = time.monotonic()
    replay = await import_job(command(body), deps)
    assert isinstance(replay, Settled) and replay.replayed
    assert replay.job_id == first.job_id and replay.view == view
    assert time.monotonic() - started < 1


async def test_a_replay_of_an_unsettled_job_answers_when_its_outcome_arrives(redis, outcomes):
    deps = dependencies(redis, outcomes, FakeBus(), wait_s=5)
    body = import_body()
    await import_job(command(body, respond_async=True), deps)
    replay = asyncio.create_task(import_job(command(body), deps))
    await asyncio.sleep(0.1)
    await redis.publish(JOB_OUTCOME, b"not json")  # malformed messages are ignored
    await redis.publish(JOB_OUTCOME, b'{"job_id": "%s"}' % deps.bus.published[0].job_id.encode())
    view = await settle(redis, deps.bus.published[0])
    answer = await replay
    assert isinstance(answer, Settled) and answer.replayed and answer.view == view


async def test_another_organizations_outcome_is_never_a_replays_answer(redis, outcomes):
    deps = dependencies(redis, outcomes, FakeBus(), wait_s=0.2)
    body = import_body()
    await import_job(command(body, respond_async=True), deps)
    await settle(redis, deps.bus.published[0], org_id="org_b", announce=False)
    quick = await import_job(command(body, respond_async=True), deps)
    waited = await import_job(command(body), deps)
    assert isinstance(quick, Accepted) and quick.replayed and quick.status == JobStatus.PENDING
    assert isinstance(waited, Accepted) and waited.replayed and waited.status == JobStatus.PROCESSING


@pytest.mark.parametrize(
    "kept",
    [
        b"{not json",
        b"\x00not packed",
        pack_outcome(b'{"job_id": "x"}')[:-3],
        pack_outcome(b"not json"),
        BLOB + b"too short",
        BLOB + bytes(64),
    ],
    ids=["bad-json", "not-zlib", "cut-short", "packed-not-json", "sealed-cut-short", "sealed-not-by-this-key"],
)
async def test_a_malformed_kept_outcome_counts_as_none(redis, outcomes, kept):
    deps = dependencies(redis, outcomes, FakeBus())
    body = import_body()
    first = await import_job(command(body, respond_async=True), deps)
    await redis.set(outcome_key(first.job_id), kept)
    replay = await import_job(command(body, respond_async=True), deps)
    assert isinstance(replay, Accepted) and replay.replayed and replay.job_id == first.job_id


async def test_an_erased_jobs_sealed_outcome_is_no_answer_and_another_jobs_key_does_not_open_it(redis, outcomes):
    deps = dependencies(redis, outcomes, FakeBus())
    body, other = import_body(), import_body(external_job_id="ANOTHER-1")
    first = await import_job(command(body, respond_async=True), deps)
    await import_job(command(other, respond_async=True), deps)
    await settle(redis, deps.bus.published[0], announce=False)
    await settle(redis, deps.bus.published[1], announce=False)
    assert await outcomes.kept(first.job_id) is not None
    # one job's sealed outcome copied under another job's name opens as nothing
    await redis.set(outcome_key(deps.bus.published[1].job_id), await redis.get(outcome_key(first.job_id)))
    assert await outcomes.kept(deps.bus.published[1].job_id) is None
    await data_keys(redis).destroy([first.job_id])  # erased: its kept outcome is unreadable, wherever it lies
    assert await outcomes.kept(first.job_id) is None
    replay = await import_job(command(body, respond_async=True), deps)
    assert isinstance(replay, Accepted) and replay.replayed


async def test_an_idempotency_store_outage_is_503_and_nothing_is_published(redis, outcomes):
    bus = FakeBus()
    redis.down = True
    with pytest.raises(Problem) as unavailable:
        await import_job(command(import_body()), dependencies(redis, outcomes, bus))
    assert (unavailable.value.status, unavailable.value.code) == (503, "dependency_unavailable")
    assert bus.attempts == []


async def test_an_integration_over_its_rate_is_told_when_to_come_back():
    limiter = FakeLimiter(burst=1)
    headers = await admit(limiter, "rm_ci_1")
    assert headers["RateLimit-Limit"] == "1" and headers["RateLimit-Remaining"] == "0"
    before = RATE_LIMITED._value.get()
    with pytest.raises(Problem) as limited:
        await admit(limiter, "rm_ci_1")
    assert (limited.value.status, limited.value.code) == (429, "rate_limited")
    assert int(limited.value.headers["Retry-After"]) >= 1
    assert RATE_LIMITED._value.get() == before + 1
    assert await admit(limiter, "rm_ci_2")  # every integration has its own bucket


async def test_a_rate_limiter_outage_is_503():
    limiter = FakeLimiter()
    limiter.down = True
    with pytest.raises(Problem) as unavailable:
        await admit(limiter, "rm_ci_1")
    assert (unavailable.value.status, unavailable.value.code) == (503, "dependency_unavailable")


# Lanes: an organization's first FAIR_SHARE_JOBS jobs in flight travel the normal lane, the rest bulk.


def lane_of(bus: FakeBus) -> list[tuple[str, str]]:
    return [(event.lane, event.topic) for event in bus.published]


async def test_jobs_beyond_the_fair_share_in_flight_go_to_the_bulk_lane_and_back_once_one_settles(redis, outcomes):
    bus = FakeBus()
    deps = dependencies(redis, outcomes, bus)  # fair share: 2 jobs in flight
    for n in range(3):
        await import_job(command(import_body(external_job_id=f"big-{n}"), respond_async=True), deps)
    await import_job(command(import_body(external_job_id="small"), respond_async=True, org_id="org_small"), deps)
    assert lane_of(bus) == [
        ("normal", "routemate.jobs.requested"),
        ("normal", "routemate.jobs.requested"),
        ("bulk", "routemate.jobs.requested.bulk"),
        ("normal", "routemate.jobs.requested"),  # another organization has its own share
    ]
    await settle(redis, bus.published[0])  # the status service saw the first job settle: 2 still in flight
    await import_job(command(import_body(external_job_id="big-3"), respond_async=True), deps)
    assert lane_of(bus)[-1] == ("bulk", "routemate.jobs.requested.bulk")
    for event in bus.published[1:3]:
        await settle(redis, event)  # now only big-3 is in flight
    await import_job(command(import_body(external_job_id="big-4"), respond_async=True), deps)
    assert lane_of(bus)[-1] == ("normal", "routemate.jobs.requested")


async def test_a_concurrent_burst_gets_exactly_the_fair_share_in_the_normal_lane(redis, outcomes):
    bus = FakeBus(delay=0.05)
    deps = dependencies(redis, outcomes, bus)
    bodies = [import_body(external_job_id=f"burst-{n}") for n in range(10)]
    await asyncio.gather(*(import_job(command(body, respond_async=True), deps) for body in bodies))
    assert sorted(event.lane for event in bus.published) == ["bulk"] * 8 + ["normal"] * 2


async def test_a_retried_publish_keeps_its_lane_and_a_failed_one_stops_counting(redis, outcomes):
    deps = dependencies(redis, outcomes, FakeBus())
    await import_job(command(import_body(external_job_id="first"), respond_async=True), deps)
    with pytest.raises(Problem):
        await import_job(
            command(import_body(external_job_id="lost")), dependencies(redis, outcomes, FakeBus(fail=True))
        )
    bus = FakeBus()
    await import_job(
        command(import_body(external_job_id="second"), respond_async=True), dependencies(redis, outcomes, bus)
    )
    assert lane_of(bus) == [("normal", "routemate.jobs.requested")]  # the failed import took no share


async def test_a_job_whose_settling_was_never_seen_stops_counting_after_the_ttl(redis):
    now = [1000.0]
    lanes = Lanes(redis, fair_share=1, ttl_s=60, clock=lambda: now[0])
    assert await lanes.admit(ORG, "job_stuck") == "normal"
    now[0] = 1030.0
    assert await lanes.admit(ORG, "job_next") == "bulk"
    assert await lanes.admit(ORG, "job_stuck") == "normal"  # the same job published again keeps its place
    now[0] = 1061.0  # job_stuck's settling was never seen and it is over the TTL; job_next still counts
    assert await lanes.admit(ORG, "job_later") == "bulk"
    assert await redis.zrank("rm:inflight:" + ORG, "job_stuck") is None


def test_an_announced_outcome_is_opened_only_by_its_waiter_with_its_jobs_key(monkeypatch):
    """Every replica hears every settled job, its outcome sealed under the job's key: one with no
    import of that job waiting leaves it unopened (its key never read); a waiter gets its own
    job's outcome, opened; a sealed outcome announced under another job's id does not open (the
    seal is bound to the job), nor one whose key is gone, and a release before's JSON still reads."""
    redis = MemoryRedis()
    keys = data_keys(redis)
    outcomes = Outcomes(redis, keys)
    read: list[object] = []
    real = keys.keys

    async def counted(job_ids):
        job_ids = list(job_ids)
        read.extend(job_ids)
        return await real(job_ids)

    monkeypatch.setattr(keys, "keys", counted)

    async def scenario() -> None:
        key_1, key_2 = await keys.key_for("job_1"), await keys.key_for("job_2")
        settled_1 = JobSettled(job_id="job_1", org_id="org_a", job={"job_id": "job_1", "status": "assigned"})
        sealed_1 = seal_outcome(settled_1.model_dump_json(), key_1, "job_1")
        assert b"assigned" not in announcement("job_1", sealed_1)  # nothing of the view in clear
        outcomes._deliver(announcement("job_1", sealed_1))  # nobody waits here: nothing read, nothing opened
        future = outcomes.expect("job_1")
        outcomes._deliver(announcement("job_2", seal_outcome(b"{}", key_2, "job_2")))  # another job's
        assert not future.done()
        outcomes._deliver(b"not an announcement")
        outcomes._deliver(announcement("job_1", b"neither sealed nor JSON"))
        outcomes._deliver(announcement("job_1", settled_1.model_dump_json().encode()))  # clear: not ours
        assert not future.done()
        outcomes._deliver(announcement("job_1", sealed_1))
        assert read == [] and await outcomes.wait("job_1", future, 1) == settled_1
        assert read == ["job_1"] and outcomes._waiters == {}

        forged = outcomes.expect("job_2")  # job_1's sealed outcome, announced as job_2's
        outcomes._deliver(announcement("job_2", sealed_1))
        assert await outcomes.wait("job_2", forged, 1) is None

        erased = outcomes.expect("job_1")  # settled after its erasure: announced without an outcome
        outcomes._deliver(announcement("job_1", None))
        assert await outcomes.wait("job_1", erased, 1) is None

        legacy = outcomes.expect("job_1")
        outcomes._deliver(b'{"job_id": "job_1"}')  # a release before's JSON that is no outcome: ignored
        assert not legacy.done()
        outcomes._deliver(settled_1.model_dump_json())
        assert await outcomes.wait("job_1", legacy, 1) == settled_1

        # another job's outcome kept (in clear, as releases before kept them) under this job's name
        settled_2 = settled_1.model_copy(update={"job_id": "job_2"})
        await redis.set(outcome_key("job_1"), settled_2.model_dump_json())
        assert await outcomes.kept("job_1") is None

        async def failing(job_ids):
            raise ConnectionError("redis went away")

        keys.keys = failing  # the import was accepted already: no outcome (202), not an error
        unread = outcomes.expect("job_1")
        outcomes._deliver(announcement("job_1", sealed_1))
        assert await outcomes.wait("job_1", unread, 1) is None and outcomes._waiters == {}

    asyncio.run(scenario())


async def test_a_reservation_sent_again_after_its_reply_was_lost_wins_again_and_another_jobs_does_not():
    """redis-py sends a command again when its reply was lost (a batch, all of it): the reservation
    then finds itself, and must go on as the winner, not answer as a concurrent duplicate (the
    import would answer 202 for a job it never published)."""
    redis = MemoryRedis()
    reservations, lanes = Reservations(redis, 3600), Lanes(redis, 2, 3600)
    key = Reservations.key("org_a", "EXT-1")
    first = await reservations.reserve_new(key, "job-1", "digest", "org_a", lanes, None)
    again = await reservations.reserve_new(key, "job-1", "digest", "org_a", lanes, None)
    other = await reservations.reserve_new(key, "job-2", "digest", "org_a", lanes, None)
    assert first == again == (None, "normal")
    assert other[1] is None and other[0] is not None and other[0].job_id == "job-1"
    assert await redis.zcard(inflight_key("org_a")) == 1  # counted in flight once


async def test_a_plain_reservation_sent_again_after_its_reply_was_lost_is_ours():
    redis = MemoryRedis()
    reservations = Reservations(redis, 3600)
    key = Reservations.key("org_a", "EXT-2")
    assert await reservations.reserve(key, "job-1", "digest") is None
    assert await reservations.reserve(key, "job-1", "digest") is None  # the same SET again: still ours
    other = await reservations.reserve(key, "job-2", "digest")
    assert other is not None and other.job_id == "job-1"


async def test_an_update_claim_sent_again_after_its_reply_was_lost_is_still_won_and_another_is_refused():
    """A spec is one attempt's (body and base version): the same attempt claims it again (its
    request sent twice, or retried after a 503), another body or base does not, another job
    (imported afresh under the same external id) has its own; a release frees it."""
    redis = MemoryRedis()
    reservations = Reservations(redis, 3600)
    key = Reservations.key("org_a", "EXT-3")
    assert await reservations.claim_update(key, "job_1", 2, "d1", 7) is True
    assert await reservations.claim_update(key, "job_1", 2, "d1", 7) is True  # the same attempt again
    assert await reservations.claim_update(key, "job_1", 2, "d2", 7) is False  # another body from the same version
    assert await reservations.claim_update(key, "job_1", 2, "d1", 8) is False  # the same body onto another version
    assert await reservations.claim_update(key, "job_2", 2, "d2", 7) is True  # another job claims anew
    assert [(spec, body, base) for spec, (body, base, _) in (await reservations.attempts(key, "job_1")).items()] == [
        (2, "d1", 7)
    ]
    assert 3500 < await redis.ttl(f"{key}:job_1:updates") <= 3600
    await reservations.release_update(key, "job_1", 2)
    assert await reservations.claim_update(key, "job_1", 2, "d2", 7) is True
