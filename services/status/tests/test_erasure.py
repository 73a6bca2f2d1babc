"""Erasure in the status service: DELETE, JobErased, an organization's erasure, retention, and the
snapshot and rebuild pieces that keep an erased job erased (in-process: in-memory Kafka and Redis)."""

import uuid
from datetime import timedelta

from services.status.adapters import snapshots
from services.status.adapters.erasure import retention_days
from services.status.adapters.projection import Projection
from services.status.adapters.queries import JobQueries
from services.status.erasing import RetentionPolicy, erase_expired
from services.status.rebuild import align_versions
from services.status.views import job_head, job_view
from shared import pii
from shared.channels import jobhead_key, outcome_key
from shared.db import make_engine
from shared.events import JobCancelled, OrganizationErased, OrgRetentionSet, utcnow
from shared.testing.builders import geocoded, import_requested, routed, stop, stop_changed
from shared.testing.fakes import MemoryRedis
from shared.vocabulary import StopStatus

JOBS = "/v1/integration-jobs"


async def test_delete_erases_the_job_once_for_its_organization_only(status):
    await status.job("job_1")
    assert (await status.http.delete(f"{JOBS}/job_1", headers=status.auth("org_2"))).status_code == 404
    assert (await status.http.delete(f"{JOBS}/nope", headers=status.auth())).status_code == 404
    assert await status.redis.get(jobhead_key("job_1")) is not None
    erased = await status.http.delete(f"{JOBS}/job_1", headers=status.auth())
    assert erased.status_code == 204 and erased.content == b""
    assert (await status.http.get(f"{JOBS}/job_1", headers=status.auth())).status_code == 404
    assert (await status.http.delete(f"{JOBS}/job_1", headers=status.auth())).status_code == 204  # idempotent
    assert await status.redis.get(pii.data_key_name("job_1")) == pii.ERASED_MARK
    assert await status.redis.get(jobhead_key("job_1")) is None and await status.redis.get(outcome_key("job_1")) is None
    listed = await status.http.get(JOBS, headers=status.auth())
    assert listed.json()["jobs"] == []


async def test_a_job_published_sealed_reads_as_one_published_plain_and_its_geocodings_spec_stays_sealed(
    status, monkeypatch
):
    """The consumer opens the import's and the route's personal fields, not the copy of the spec a
    geocoding carries (KEPT_SEALED: the read model reads none of it): the job reads the same."""
    await status.job("job_plain")
    keys, sealed = pii.DataKeys.from_settings(status.redis, status.settings), []

    async def publish_sealed(*events):
        for event in events:
            sealed.append(await keys.seal(event))
            await status.bus.publish(sealed[-1])

    opened: list[str] = []
    open_with = pii._open_with
    monkeypatch.setattr(
        pii, "_open_with", lambda cipher, aad, value: opened.append(value) or open_with(cipher, aad, value)
    )
    monkeypatch.setattr(status, "publish", publish_sealed)
    await status.job("job_sealed")

    imported, geocoding, route = sealed
    assert all(pii.is_sealed(v) for v in pii.personal_values(geocoding)) and pii.personal_values(geocoding)
    assert sorted(opened) == sorted(pii.personal_values(imported) + pii.personal_values(route))
    views = {}
    for job_id in ("job_plain", "job_sealed"):
        view = (await status.http.get(f"{JOBS}/{job_id}", headers=status.auth())).json()
        assert not [v for v in _strings(view) if v.startswith(pii.TOKEN[:4])], view  # nothing sealed reads out
        stops = [{k: v for k, v in stop.items() if k not in ("eta", "status_at")} for stop in view["stops"]]
        views[job_id] = (view["status"], view["title"], view["driver_email"], stops)
    assert views["job_sealed"] == views["job_plain"]


def _strings(node) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


async def test_an_event_of_an_erased_job_arriving_late_brings_nothing_back(status):
    await status.job("job_1")
    await status.http.delete(f"{JOBS}/job_1", headers=status.auth())
    await status.publish(stop_changed(1, StopStatus.COMPLETED, org_id="org_1", job_id="job_1", notes="late"))
    await status.job("job_1")  # the whole import replayed, as a rebuild would
    assert (await status.http.get(f"{JOBS}/job_1", headers=status.auth())).status_code == 404
    assert b"late" not in status.database.read_bytes() and b"Queen St" not in status.database.read_bytes()


async def test_erasing_an_organization_takes_its_jobs_drivers_and_keys_and_no_other(status):
    await status.job("job_1")
    await status.job("job_2", org="org_2")
    await status.publish(OrganizationErased(org_id="org_1"))
    assert (await status.http.get(f"{JOBS}/job_1", headers=status.auth())).status_code == 404
    assert (await status.http.get(f"{JOBS}/job_2", headers=status.auth("org_2"))).status_code == 200
    assert await status.redis.get(pii.data_key_name("job_1")) == pii.ERASED_MARK
    await status.job("job_3")  # an import of the erased organization still in flight
    assert (await status.http.get(f"{JOBS}/job_3", headers=status.auth())).status_code == 404


async def test_retention_erases_finished_jobs_past_their_organizations_setting(status):
    await status.job("job_1")
    await status.job("job_2")
    await status.publish(JobCancelled(org_id="org_1", job_id="job_1"))
    await status.publish(OrgRetentionSet(org_id="org_1", job_retention_days=1))
    eraser = status.app.state.eraser
    assert await erase_expired(eraser, RetentionPolicy()) == 0  # cancelled just now: kept a day
    assert await erase_expired(eraser, RetentionPolicy(), now=utcnow() + timedelta(days=2)) == 1
    assert (await status.http.get(f"{JOBS}/job_1", headers=status.auth())).status_code == 404
    assert (await status.http.get(f"{JOBS}/job_2", headers=status.auth())).status_code == 200  # not finished


def test_the_operator_overrides_and_caps_an_organizations_retention():
    assert retention_days(None, None, None) is None  # the default: kept for ever
    assert retention_days(30, None, None) == 30
    assert retention_days(30, 7, None) == 7  # the platform's override
    assert retention_days(30, None, 10) == 10 and retention_days(None, None, 10) == 10  # the cap


def _job_events(job_id: str):
    stops = [stop(i, f"{i} Queen St", job_id=job_id, notes=f"note {i}") for i in range(2)]
    imported = import_requested(*stops, job_id=job_id, driver_email="d@example.com")
    geo = geocoded([(-27.47, 153.02), (-27.48, 153.01)], job_id=job_id)
    return imported, geo, routed(geo, [0, 1])


async def test_a_rebuild_takes_the_live_versions_even_when_it_counts_differently(tmp_path):
    """Live, the route arrived before the geocoding (one change fewer); the replay takes them in
    log order. The heads the live projection mirrored to Redis set the rebuilt versions."""
    imported, geo, route = _job_events("j")
    live = Projection(make_engine(f"sqlite:///{tmp_path / 'live.db'}"))
    live.apply_many([imported, route, geo])
    replay_engine = make_engine(f"sqlite:///{tmp_path / 'replay.db'}")
    Projection(replay_engine).apply_many([imported, geo, route])
    live_job = JobQueries(live.engine).job("o", job_id="j")
    replayed = JobQueries(replay_engine).job("o", job_id="j")
    assert live_job[0].version != replayed[0].version  # the bug: a false 304 waiting to happen
    redis = MemoryRedis()
    await redis.set(jobhead_key("j"), job_head(*live_job).model_dump_json())
    assert await align_versions(replay_engine, redis) == 1
    assert JobQueries(replay_engine).job("o", job_id="j")[0].version == live_job[0].version


async def test_a_rebuild_dates_each_view_as_live_did_when_a_duplicate_came_in_another_order(tmp_path):
    """The geocoding delivered twice: live, the second copy came after the route and changed
    nothing; the log holds it first, so the replay dates the view by it. The head's time (written
    with the version) wins, and the rebuilt view is the live one: one ETag, one body."""
    imported, geo, route = _job_events("j")
    t0 = utcnow() - timedelta(hours=1)
    at = [t0 + timedelta(seconds=n) for n in range(3)]
    imported, geo, route = (
        e.model_copy(update={"occurred_at": t}) for e, t in zip((imported, geo, route), at, strict=True)
    )
    again = geo.model_copy(update={"event_id": uuid.uuid4(), "occurred_at": t0 + timedelta(seconds=5)})
    live = Projection(make_engine(f"sqlite:///{tmp_path / 'live.db'}"))
    live.apply_many([imported, geo, route, again])
    replay_engine = make_engine(f"sqlite:///{tmp_path / 'replay.db'}")
    Projection(replay_engine).apply_many([imported, again, geo, route])
    live_job = JobQueries(live.engine).job("o", job_id="j")
    before = JobQueries(replay_engine).job("o", job_id="j")
    assert job_view(*before)["updated_at"] != job_view(*live_job)["updated_at"]
    redis = MemoryRedis()
    await redis.set(jobhead_key("j"), job_head(*live_job).model_dump_json())
    assert await align_versions(replay_engine, redis) == 1
    assert job_view(*JobQueries(replay_engine).job("o", job_id="j")) == job_view(*live_job)
    assert await align_versions(replay_engine, redis) == 0  # aligned: nothing more to set


async def test_a_rebuild_keeps_its_own_version_where_the_live_head_describes_an_earlier_state(tmp_path):
    """The live consumer lagged: its head is of the geocoded job, the log (and the replay) holds the
    route too. Taking that head would give the routed view the geocoded view's ETag and time."""
    imported, geo, route = _job_events("j")
    live = Projection(make_engine(f"sqlite:///{tmp_path / 'live.db'}"))
    live.apply_many([imported, geo])
    replay_engine = make_engine(f"sqlite:///{tmp_path / 'replay.db'}")
    Projection(replay_engine).apply_many([imported, geo, route])
    replayed = job_view(*JobQueries(replay_engine).job("o", job_id="j"))
    redis = MemoryRedis()
    await redis.set(jobhead_key("j"), job_head(*JobQueries(live.engine).job("o", job_id="j")).model_dump_json())
    assert await align_versions(replay_engine, redis) == 0
    assert job_view(*JobQueries(replay_engine).job("o", job_id="j")) == replayed


def test_a_snapshot_holds_personal_columns_sealed_and_restores_without_the_jobs_erased_since(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'live.db'}")
    projection = Projection(engine)
    for job_id in ("kept", "gone"):
        projection.apply_many(list(_job_events(job_id)))
    rows = snapshots.dump_rows(engine)
    keys = {"kept": b"k" * 32, "gone": b"g" * 32}
    snapshots.seal_rows(rows, keys)
    path = snapshots.write(tmp_path / "snaps", utcnow(), {("t", 0): 5}, rows).path
    assert b"Queen St" not in __import__("gzip").open(path).read()
    offsets, read_back = snapshots.read(path)
    snapshots.open_rows(read_back, {"kept": keys["kept"], "gone": None})  # "gone" was erased since
    target = make_engine(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    Projection(target)  # an empty read model, migrated
    snapshots.restore(target, read_back)
    assert offsets == {("t", 0): 5}
    assert JobQueries(target).job("o", job_id="gone") is None
    kept = JobQueries(target).job("o", job_id="kept")
    assert sorted(s.address for s in kept[1]) == ["0 Queen St", "1 Queen St"]
    assert kept[0].version == JobQueries(engine).job("o", job_id="kept")[0].version
