"""The projection consumer through FastStream's in-memory Kafka: events in, read model and outcomes out."""

import random
import uuid

import pytest
from prometheus_client import REGISTRY

from services.status.adapters.projection import Projection
from services.status.handlers import FollowUp
from services.status.subscribers import ROUTES
from shared.channels import JOB_OUTCOME, JobSettled, announced, inflight_key, open_outcome, outcome_key
from shared.db import make_engine
from shared.events import DriverRegistered, DriverRemoved, JobFailed, TokenIssued, utcnow
from shared.pii import DataKeys
from shared.testing.builders import geocoded, import_requested, routed, stop, stop_changed
from shared.vocabulary import FailureCode, JobStatus, StopStatus, WarningCode

JOBS = "/v1/integration-jobs"


def latency() -> tuple[float, float]:
    """How many jobs the end-to-end histogram has seen, and their seconds in all."""
    name = "routemate_job_end_to_end_seconds"
    return REGISTRY.get_sample_value(f"{name}_count") or 0.0, REGISTRY.get_sample_value(f"{name}_sum") or 0.0


async def announcements(status) -> list[tuple[str, JobSettled | None]]:
    """Every settled job announced on the outcome channel so far: its id, and its outcome opened
    with the job's key as the ingest replica waiting for it opens it (None: announced without one)."""
    heard = [announced(message) for channel, message in status.redis.published if channel == JOB_OUTCOME]
    keys = await DataKeys(status.redis, status.settings.kek_material).keys(job_id for job_id, _ in heard)
    return [
        (job_id, JobSettled.model_validate_json(open_outcome(sealed, keys[job_id], job_id)) if sealed else None)
        for job_id, sealed in heard
    ]


async def outcomes(status) -> list[JobSettled]:
    """The outcomes announced so far, each sealed under its job's key (nothing of it in clear)."""
    messages = [message for channel, message in status.redis.published if channel == JOB_OUTCOME]
    assert not any(b'"job_id"' in message for message in messages)  # the view's JSON is never in clear
    return [settled for _, settled in await announcements(status) if settled is not None]


async def test_a_routed_job_reaches_the_read_model_and_is_announced_and_kept(status):
    await status.job("job_1")
    job = (await status.http.get(f"{JOBS}/job_1", headers=status.auth())).json()
    assert job["status"] == JobStatus.ASSIGNED and [s["external_stop_id"] for s in job["stops"]] == ["S1", "S0"]
    [announced] = await outcomes(status)
    assert announced == JobSettled(job_id="job_1", org_id="org_1", job=job)
    kept = await status.redis.get(outcome_key("job_1"))
    assert b"Queen St" not in kept and b"dana@" not in kept  # sealed: the durable Redis writes it to disk
    key = await DataKeys(status.redis, status.settings.kek_material).key_for("job_1")
    assert JobSettled.model_validate_json(open_outcome(kept, key, "job_1")) == announced  # any replica finds it
    assert len(kept) * 2 < len(announced.model_dump_json())  # packed: a day of outcomes is most of that Redis
    assert (
        status.settings.outcome_ttl_seconds - 5
        <= await status.redis.ttl(outcome_key("job_1"))
        <= status.settings.outcome_ttl_seconds
    )


async def test_an_erased_jobs_outcome_is_announced_but_never_kept(status):
    """Its data key destroyed (an erasure racing the routing): nothing of it is written to the
    durable Redis, where the erasure could not reach it again."""
    await DataKeys(status.redis, status.settings.kek_material).destroy(["job_1"])
    await status.job("job_1")
    assert await announcements(status) == [("job_1", None)]  # settled, announced without its view
    assert await status.redis.get(outcome_key("job_1")) is None


async def test_a_job_still_in_the_pipeline_is_not_announced(status):
    await status.job("job_1", route=False)
    job = (await status.http.get(f"{JOBS}/job_1", headers=status.auth())).json()
    assert job["status"] == JobStatus.PROCESSING
    assert await outcomes(status) == [] and await status.redis.get(outcome_key("job_1")) is None


async def test_a_failed_job_is_announced_with_its_failure(status):
    await status.job("job_1", route=False)
    await status.publish(
        JobFailed(org_id="org_1", job_id="job_1", stage="geocoder", code=FailureCode.GEOCODE_FAILED_ALL, message="m")
    )
    [announced] = await outcomes(status)
    assert announced.job["status"] == JobStatus.FAILED and announced.job["failure"]["code"] == "GEOCODE_FAILED_ALL"


async def test_redelivered_events_announce_nothing_more_but_an_import_published_again_does(status):
    events = await status.job("job_1")
    await status.publish(*events)  # the very same events again: a consumer that restarted before committing
    assert len(await outcomes(status)) == 1
    await status.publish(events[0].model_copy(update={"event_id": uuid.uuid4()}))  # a client's retried import
    assert [o.job_id for o in await outcomes(status)] == ["job_1", "job_1"]


async def test_a_routed_job_observes_its_end_to_end_latency(status):
    before = latency()
    await status.job("job_1")  # routed one second after its import was accepted
    count, seconds = (now - then for now, then in zip(latency(), before, strict=True))
    assert count == 1 and seconds == pytest.approx(1.0)


async def test_with_redis_down_the_job_is_still_projected_and_clients_poll(status, caplog):
    status.redis.down = True
    await status.job("job_1")
    status.redis.down = False
    job = (await status.http.get(f"{JOBS}/job_1", headers=status.auth())).json()
    assert job["status"] == JobStatus.ASSIGNED
    assert await outcomes(status) == [] and await status.redis.get(outcome_key("job_1")) is None
    assert "waiting clients will poll" in caplog.text


async def test_the_driver_directory_decides_who_takes_a_routed_job(status):
    await status.publish(DriverRemoved(org_id="org_1", email="dana@example.com"))
    await status.job("job_1")
    job = (await status.http.get(f"{JOBS}/job_1", headers=status.auth())).json()
    assert job["status"] == JobStatus.UNASSIGNED and job["driver"] is None
    assert WarningCode.DRIVER_NOT_FOUND in [w["code"] for w in job["warnings"]]
    await status.publish(DriverRegistered(org_id="org_1", email="dana@example.com", name="Dana"))
    job = (await status.http.get(f"{JOBS}/job_1", headers=status.auth())).json()
    assert job["status"] == JobStatus.ASSIGNED and job["driver"] == {"email": "dana@example.com", "name": "Dana"}


async def test_a_stop_report_from_the_topic_moves_the_job_on(status):
    await status.job("job_1")
    await status.publish(stop_changed(1, StopStatus.SKIPPED, org_id="org_1", job_id="job_1", reason="closed"))
    job = (await status.http.get(f"{JOBS}/job_1", headers=status.auth())).json()
    assert job["status"] == JobStatus.IN_PROGRESS and job["status_counts"]["skipped"] == 1


async def test_audit_events_are_skipped(status):
    token = TokenIssued(org_id="org_1", client_id="rm_ci_1", token_fingerprint="abc", expires_at=utcnow())
    await status.publish(token)
    answer = await status.http.get(JOBS, headers=status.auth())
    assert answer.status_code == 200 and answer.json()["jobs"] == []


def lives(job_id: str) -> list:
    """One job's events: imported, geocoded, then routed or failed, and a stop report."""
    ids = {"org_id": "org_1", "job_id": job_id}
    geo = geocoded([(-27.47, 153.02), (-27.48, 153.01)], **ids)
    failed = JobFailed(**ids, stage="optimizer", code="X", message="m")
    return [
        import_requested(stop(0, job_id=job_id), stop(1, job_id=job_id), **ids, driver_email="dana@example.com"),
        geo,
        routed(geo, [0, 1]) if job_id.endswith("routed") else failed,
        stop_changed(0, StopStatus.COMPLETED, **ids),
    ]


@pytest.mark.parametrize("seed", range(6))
def test_only_events_the_routing_table_announces_ever_settle_a_job(tmp_path, seed):
    projection = Projection(make_engine(f"sqlite:///{tmp_path / 'routes.db'}"))
    projection.apply(DriverRegistered(org_id="org_1", email="dana@example.com"))
    stream = (lives("a_routed") + lives("b_failed")) * 2
    random.Random(seed).shuffle(stream)
    settled = [(type(event), job_id) for event in stream if (job_id := projection.apply(event))]
    assert sorted(job_id for _, job_id in settled) == ["a_routed", "b_failed"]
    assert all(FollowUp.ANNOUNCE_SETTLED in ROUTES[kind] for kind, _ in settled)


async def test_a_bulk_lane_job_is_projected_and_leaves_its_organizations_jobs_in_flight_when_settled(status):
    org, driver = "org_1", "dana@example.com"
    await status.redis.zadd(inflight_key(org), {"job_1": 1.0, "job_2": 2.0})  # as ingest admitted them
    stops = [stop(i, f"{i} Queen St", job_id="job_1") for i in range(2)]
    bulk = {"lane": "bulk"}
    imported = import_requested(*stops, org_id=org, job_id="job_1", external_job_id="EXT-1", driver_email=driver)
    geo = geocoded([(-27.47, 153.02), (-27.48, 153.01)], org_id=org, job_id="job_1").model_copy(update=bulk)
    await status.publish(imported.model_copy(update=bulk), geo, routed(geo, [1, 0], external_job_id="EXT-1"))
    job = (await status.http.get(f"{JOBS}/job_1", headers=status.auth())).json()
    assert job["status"] == JobStatus.ASSIGNED
    assert [o.job_id for o in await outcomes(status)] == ["job_1"]
    assert await status.redis.zrank(inflight_key(org), "job_1") is None  # ingest's next import counts one fewer
    assert await status.redis.zrank(inflight_key(org), "job_2") == 0
