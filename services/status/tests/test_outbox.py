"""The webhooks' outbox: each public change of a job becomes one row, in the projection's own
transaction, with an id that a redelivered source event reproduces."""

import asyncio
from datetime import timedelta

from faststream.kafka import TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from sqlmodel import Session, select

from services.status.adapters.outbox import Outbox
from services.status.adapters.projection import Projection
from services.status.adapters.queries import JobQueries
from services.status.adapters.tables import OutboxRow
from services.status.relay import OutboxRelay
from services.status.tests.test_projection import T0, events
from services.status.views import job_view
from shared.broker import EventBus, make_broker
from shared.db import make_engine
from shared.events import JOBS_CHANGES, DriverRegistered, JobChanged, JobFailed, decode_event
from shared.settings import PlatformSettings
from shared.testing.builders import geocoded, import_requested, routed, stop, stop_changed
from shared.vocabulary import StopStatus


def rows(engine) -> list[OutboxRow]:
    with Session(engine) as s:
        return list(s.exec(select(OutboxRow).order_by(OutboxRow.seq)).all())


def projection(tmp_path, name="o") -> Projection:
    p = Projection(make_engine(f"sqlite:///{tmp_path / name}.db"))
    p.apply(DriverRegistered(org_id="org_1", email="dana@example.com", name="Dana"))
    return p


def test_each_public_change_of_a_job_is_one_row_in_order(tmp_path):
    p = projection(tmp_path)
    life = events()
    p.apply_many(life)
    written = rows(p.engine)
    assert [r.change_type for r in written] == [
        "job.routed",
        "job.assigned",
        "stop.status_changed",
        "job.in_progress",
        "stop.status_changed",
        "job.completed",
    ]
    versions = [r.version for r in written]
    assert versions == sorted(set(versions))  # strictly increasing, one per change
    assert (
        written[-1].version
        == written[-1].data["version"]
        == job_view(*JobQueries(p.engine).job("org_1", job_id="job_1"))["version"]
    )
    routed_view = written[0].data
    assert routed_view["job_id"] == "job_1" and routed_view["optimization"]["total_distance_km"] > 0
    assert [s["external_stop_id"] for s in routed_view["stops"]] == ["S1", "S0"]
    assert routed_view["version"] == versions[0] and routed_view["updated_at"]
    stop_change = written[4].data
    assert stop_change["stop"]["external_stop_id"] == "S0" and stop_change["stop"]["status"] == "failed"
    assert stop_change["job_status"] == "completed" and stop_change["external_job_id"] == "EXT-job_1"
    assert written[-1].data["status"] == "completed"


def test_a_redelivered_event_writes_nothing_and_a_replay_elsewhere_has_the_same_ids(tmp_path):
    first, second = projection(tmp_path, "a"), projection(tmp_path, "b")
    life = events()
    first.apply_many(life)
    first.apply_many(life)  # redelivered: already applied
    second.apply_many(life)
    assert len(rows(first.engine)) == 6
    assert [r.change_id for r in rows(first.engine)] == [r.change_id for r in rows(second.engine)]


def test_out_of_order_events_announce_the_job_once_its_import_is_known(tmp_path):
    p = projection(tmp_path)
    imported, geo, route, *_ = events()
    p.apply_many([route, geo])
    assert rows(p.engine) == []  # routed, but nobody knows the job yet
    p.apply(imported)
    assert [r.change_type for r in rows(p.engine)] == ["job.routed", "job.assigned"]


def test_a_failed_job_and_a_late_driver_are_announced(tmp_path):
    p = projection(tmp_path)
    ids = {"org_id": "org_1", "job_id": "job_f"}
    p.apply_many([import_requested(stop(0, job_id="job_f"), **ids, external_job_id="F")])
    p.apply(JobFailed(**ids, stage="geocoder", code="GEOCODE_FAILED", message="no stop could be placed"))
    assert [r.change_type for r in rows(p.engine)] == ["job.failed"]
    assert rows(p.engine)[0].data["failure"]["code"] == "GEOCODE_FAILED"

    late = {"org_id": "org_1", "job_id": "job_u"}
    s0 = stop(0, job_id="job_u")
    geo = geocoded([(-27.4, 153.0)], **late)
    p.apply_many([import_requested(s0, **late, external_job_id="U", driver_email="lee@example.com")])
    p.apply_many([geo, routed(geo, [0], external_job_id="U")])
    assert rows(p.engine)[-1].change_type == "job.routed" and rows(p.engine)[-1].data["status"] == "unassigned"
    p.apply(DriverRegistered(org_id="org_1", email="lee@example.com", name="Lee"))
    assert rows(p.engine)[-1].change_type == "job.assigned" and rows(p.engine)[-1].data["driver"]["name"] == "Lee"


def test_a_stale_stop_report_changes_nothing(tmp_path):
    p = projection(tmp_path)
    life = events()
    p.apply_many(life)
    before = len(rows(p.engine))
    p.apply(stop_changed(1, StopStatus.FAILED, T0 + timedelta(minutes=5), org_id="org_1", job_id="job_1"))
    assert len(rows(p.engine)) == before


async def test_the_relay_publishes_every_change_once_in_order_and_marks_it_sent(tmp_path):
    p = projection(tmp_path)
    p.apply_many(events())
    broker = make_broker(PlatformSettings(), "tests")
    received: list[JobChanged] = []

    @broker.subscriber(JOBS_CHANGES)
    async def on_change(msg: KafkaMessage) -> None:
        received.append(decode_event(msg.body))

    async with TestKafkaBroker(broker):
        relay = OutboxRelay(Outbox(p.engine), EventBus(broker, "status"))
        assert await relay.relay_once() == 6
        assert await relay.relay_once() == 0
        await asyncio.sleep(0)
    assert [e.change_type for e in received] == [r.change_type for r in rows(p.engine)]
    assert [str(e.event_id) for e in received] == [r.change_id for r in rows(p.engine)]
    assert all(r.sent_at is not None for r in rows(p.engine))


def test_an_update_and_a_cancel_are_announced_with_the_jobs_own_versions(tmp_path):
    from services.status.tests.test_versions import IDS, started, update, view
    from shared.events import JobCancelled

    projection, queries = started(tmp_path)
    etag = view(queries)["version"]
    projection.apply(update(base_version=etag))
    updated = rows(projection.engine)[-1]
    assert updated.change_type == "job.updated" and updated.data["spec_version"] == 2
    assert updated.version == updated.data["version"] == view(queries)["version"] > etag
    projection.apply(JobCancelled(**IDS, reason="customer called"))
    changes = [r for r in rows(projection.engine) if r.seq > updated.seq]
    # the update's route has not come: its stops were never announced as planned, the job is
    assert [r.change_type for r in changes] == ["job.cancelled"]
    assert [s["status"] for s in changes[-1].data["stops"]] == ["completed", "cancelled", "cancelled"]
    assert changes[-1].data["cancellation"]["reason"] == "customer called"
    versions = [r.version for r in rows(projection.engine)]
    assert versions == sorted(set(versions)) and versions[-1] == view(queries)["version"]


def test_a_cancel_of_a_routed_job_announces_each_cancelled_stop_then_the_job(tmp_path):
    from services.status.tests.test_versions import IDS, started, view
    from shared.events import JobCancelled

    projection, queries = started(tmp_path)
    before = len(rows(projection.engine))
    projection.apply(JobCancelled(**IDS, reason="customer called"))
    changes = rows(projection.engine)[before:]
    assert [(r.change_type, r.data.get("stop", {}).get("external_stop_id")) for r in changes] == [
        ("stop.status_changed", "S1"),
        ("stop.status_changed", "S2"),
        ("job.cancelled", None),
    ]
    assert [r.version for r in changes] == [
        view(queries)["version"] - 2,
        view(queries)["version"] - 1,
        view(queries)["version"],
    ]
