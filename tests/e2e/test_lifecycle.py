"""A job's lifecycle over the real stack: versions and 304s, update by re-import, re-plan and
cancel, and the public seed shapes (UUID job ids, whole minutes, only the statuses present)."""

import asyncio
import uuid
from datetime import timedelta

from redis.asyncio import Redis

from shared.channels import JobHead, jobhead_key
from shared.events import StopsGeocoded, decode_event, utcnow
from shared.events.jobs import JOBS_GEOCODED, JOBS_OPTIMIZED
from shared.testing.stack import BOOTSTRAP, REDIS_URL
from shared.testing.waiting import async_wait_until
from shared.topic_reader import read_to_end
from shared.vocabulary import WarningCode
from tests.conftest import Tenant

JOBS = "/v1/integration-jobs"


async def changed_since(tenant: Tenant, job_id: str, etag: str, what: str) -> dict:
    """The job once its ETag moved on from `etag` (a 304 until then)."""

    async def probe():
        answer = await tenant.http.get(f"{JOBS}/{job_id}", headers={**tenant.auth, "If-None-Match": etag})
        return answer if answer.status_code == 200 else None

    answer = await async_wait_until(probe, seconds=30, what=what)
    assert answer.headers["ETag"] == f'"{answer.json()["version"]}"'
    return answer


async def report(tenant: Tenant, job_id: str, stop: str, status: str = "completed") -> None:
    answer = await tenant.http.post(
        f"{JOBS}/{job_id}/stops/{stop}/status", json={"status": status}, headers=tenant.auth
    )
    assert answer.status_code == 202, answer.text


async def test_the_seed_shape_and_a_304_while_the_job_is_unchanged(tenant: Tenant):
    imported = await tenant.import_job()
    assert imported.status_code == 201, imported.text
    job = imported.json()
    assert str(uuid.UUID(job["job_id"])) == job["job_id"]  # a UUID, as the public docs show
    minutes, seconds = job["optimization"]["total_duration_minutes"], job["optimization"]["total_duration_seconds"]
    assert isinstance(minutes, int) and isinstance(seconds, int) and minutes == round(seconds / 60)
    assert job["status_counts"] == {"pending": 8}
    first = await tenant.get_job(job["job_id"])
    tag = first.headers["ETag"]
    assert tag == f'"{first.json()["version"]}"' and first.headers["Cache-Control"] == "no-store"
    fresh = await tenant.http.get(f"{JOBS}/{job['job_id']}", headers={**tenant.auth, "If-None-Match": tag})
    assert (fresh.status_code, fresh.content, fresh.headers["ETag"]) == (304, b"", tag)
    await report(tenant, job["job_id"], job["stops"][0]["external_stop_id"])
    after = await changed_since(tenant, job["job_id"], tag, "the stop update to change the ETag")
    assert after.json()["status"] == "in_progress" and after.json()["status_counts"] == {"completed": 1, "pending": 7}


async def geocoded(job_id: str, spec_version: int) -> StopsGeocoded:
    """The job's StopsGeocoded of that spec, as the log holds it."""
    records = await read_to_end(BOOTSTRAP, [JOBS_GEOCODED], keep=lambda r: r.key == job_id.encode())
    events = [decode_event(r.value) for r in records]
    [found] = [e for e in events if isinstance(e, StopsGeocoded) and e.spec_version == spec_version]
    return found


async def test_an_update_by_reimport_geocodes_only_changed_stops_and_keeps_finished_ones(tenant: Tenant):
    body = tenant.job()
    job = (await tenant.import_job(body)).json()
    done = job["stops"][0]["external_stop_id"]  # the first stop on the route is delivered
    await report(tenant, job["job_id"], done)
    seen = await changed_since(tenant, job["job_id"], f'"{job["version"]}"', "the delivery to be recorded")
    tag = seen.headers["ETag"]

    moved = body["stops"][3]["external_stop_id"]
    unique = f"Unit {uuid.uuid4().hex[:6]}"  # an address no earlier run has cached
    body["stops"][3] = {**body["stops"][3], "address": f"{unique}, 88 Creek St, Brisbane City QLD 4000"}
    body["stops"].append({"external_stop_id": "ADDED", "address": f"{unique}, 1 Eagle St, Brisbane City QLD 4000"})
    update = await tenant.import_job(body, **{"If-Match": tag})
    assert update.status_code == 200, update.text
    updated = update.json()
    assert updated["job_id"] == job["job_id"] and updated["spec_version"] == 2
    assert updated["version"] > seen.json()["version"] and update.headers["ETag"] == f'"{updated["version"]}"'
    stops = updated["stops"]
    assert (stops[0]["external_stop_id"], stops[0]["sequence"], stops[0]["status"]) == (done, 1, "completed")
    assert [s["sequence"] for s in stops] == list(range(1, 10)) and {"ADDED", moved} <= {
        s["external_stop_id"] for s in stops
    }

    sources = {loc.external_stop_id: loc.source for loc in (await geocoded(job["job_id"], 2)).locations}
    assert {stop for stop, source in sources.items() if source == "provider"} == {moved, "ADDED"}
    assert {source for stop, source in sources.items() if stop not in (moved, "ADDED")} == {"cache"}

    body["title"] = "changed again, from a stale version"
    stale = await tenant.import_job(body, **{"If-Match": tag})
    assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"
    assert stale.headers["ETag"] == f'"{updated["version"]}"'
    no_match = await tenant.import_job(body)
    assert no_match.status_code == 409  # without If-Match a changed body stays a conflict


async def test_an_async_update_the_projection_refused_leaves_the_job_replaying_its_own_body(tenant: Tenant):
    """The race a careless integrator meets: an async update (no request waits for its verdict)
    sent with the ETag the driver's report has just made stale, before status mirrored the new
    version to ingest. Ingest takes it; the projection refuses it (the job moved past its base).
    The job's own body must still replay, and the refused one must not (409 plain, 412 with its
    ETag). The mirror's lag is made wide here by writing the job's head back for the update."""
    body = tenant.job()
    job = (await tenant.import_job(body)).json()
    await report(tenant, job["job_id"], job["stops"][0]["external_stop_id"])
    seen = await changed_since(tenant, job["job_id"], f'"{job["version"]}"', "the delivery to be recorded")
    redis = Redis.from_url(REDIS_URL)
    try:

        async def mirrored():
            head = await redis.get(jobhead_key(job["job_id"]))
            return head if JobHead.model_validate_json(head).version == seen.json()["version"] else None

        current = await async_wait_until(mirrored, seconds=10, what="the job's head mirrored")
        lagging = JobHead.model_validate_json(current).model_copy(update={"version": job["version"], "finished": ()})
        await redis.set(jobhead_key(job["job_id"]), lagging.model_dump_json(), keepttl=True)
        added = {"external_stop_id": "ADDED", "address": "1 Eagle St, Brisbane City QLD 4000"}
        changed = {**body, "title": "changed from a version already gone", "stops": [*body["stops"], added]}
        update = await tenant.import_job(changed, **{"If-Match": f'"{job["version"]}"', "Prefer": "respond-async"})
        assert update.status_code == 202, update.text
        # the mirror catches up (unless status wrote a newer head meanwhile)
        if await redis.get(jobhead_key(job["job_id"])) == lagging.model_dump_json().encode():
            await redis.set(jobhead_key(job["job_id"]), current, keepttl=True)
    finally:
        await redis.aclose()

    async def refused():
        view = (await tenant.get_job(job["job_id"])).json()
        return view if any(w["code"] == WarningCode.UPDATE_CONFLICT for w in view["warnings"]) else None

    final = await async_wait_until(refused, seconds=30, what="the projection to refuse the update")
    assert final["spec_version"] == 1 and final["title"] == body.get("title")
    again = await tenant.import_job(body)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true", again.text
    assert again.json()["job_id"] == job["job_id"]
    conflict = await tenant.import_job(changed)
    assert conflict.status_code == 409 and conflict.json()["code"] == "idempotency_conflict"
    stale = await tenant.import_job(changed, **{"If-Match": f'"{job["version"]}"'})
    assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"

    async def routed_all_the_same():  # the stages never hear of the refusal
        records = await read_to_end(BOOTSTRAP, [JOBS_OPTIMIZED], keep=lambda r: r.key == job["job_id"].encode())
        return any(decode_event(r.value).spec_version == 2 for r in records) or None

    await async_wait_until(routed_all_the_same, seconds=30, what="the refused spec routed by the stages")
    await asyncio.sleep(3)  # status consumes that route meanwhile (in milliseconds)
    after = (await tenant.get_job(job["job_id"])).json()
    assert after["spec_version"] == 1 and "ADDED" not in {s["external_stop_id"] for s in after["stops"]}
    assert after["stops"] == final["stops"]  # none moved, none re-sequenced


async def test_a_replan_orders_the_remaining_stops_from_the_drivers_location(tenant: Tenant):
    job = (await tenant.import_job()).json()
    done = job["stops"][0]["external_stop_id"]
    await report(tenant, job["job_id"], done)
    tag = (await changed_since(tenant, job["job_id"], f'"{job["version"]}"', "the delivery")).headers["ETag"]
    here = job["stops"][5]  # the driver stands at this stop's door
    at = (utcnow() + timedelta(minutes=10)).replace(microsecond=0)
    body = {"current_location": {"lat": here["lat"], "lng": here["lng"]}, "at": at.isoformat()}
    answer = await tenant.http.post(
        f"{JOBS}/{job['job_id']}/reoptimize", json=body, headers={**tenant.auth, "If-Match": tag}
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["remaining_stops"] == 7 and answer.json()["start"]["origin"] == "current_location"
    stops = (await changed_since(tenant, job["job_id"], tag, "the re-planned route")).json()["stops"]
    assert (stops[0]["external_stop_id"], stops[0]["sequence"], stops[0]["status"]) == (done, 1, "completed")
    assert stops[1]["external_stop_id"] == here["external_stop_id"]  # no way from here is shorter
    assert stops[1]["eta"].startswith(at.isoformat().replace("+00:00", "")[:16])
    assert [s["sequence"] for s in stops] == list(range(1, 9))
    stale = await tenant.http.post(
        f"{JOBS}/{job['job_id']}/reoptimize", json={}, headers={**tenant.auth, "If-Match": tag}
    )
    assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"


async def test_a_cancelled_job_takes_no_more_stop_updates(tenant: Tenant):
    job = (await tenant.import_job()).json()
    cancel = await tenant.http.post(
        f"{JOBS}/{job['job_id']}/cancel", json={"reason": "customer called"}, headers=tenant.auth
    )
    assert cancel.status_code == 202, cancel.text

    async def cancelled():
        answer = (await tenant.get_job(job["job_id"])).json()
        return answer if answer["status"] == "cancelled" else None

    shown = await async_wait_until(cancelled, seconds=30, what="the job to be cancelled")
    assert shown["status_counts"] == {"cancelled": 8} and shown["cancellation"]["reason"] == "customer called"
    late = await tenant.http.post(
        f"{JOBS}/{job['job_id']}/stops/{job['stops'][0]['external_stop_id']}/status",
        json={"status": "completed"},
        headers=tenant.auth,
    )
    assert late.status_code == 409 and late.json()["code"] == "illegal_transition"
    again = await tenant.http.post(f"{JOBS}/{job['job_id']}/cancel", headers=tenant.auth)
    assert again.status_code == 200 and again.json() == cancel.json()
