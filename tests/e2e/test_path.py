"""The thin real path through all five services, over the edge proxy, real Kafka and Redis."""

import asyncio
import base64

import httpx
from redis.asyncio import Redis

from services.status.settings import StatusSettings
from shared.channels import JOB_OUTCOME, JobSettled, announced, open_outcome, outcome_key, unpack_outcome
from shared.pii import BLOB, DataKeys
from shared.testing.stack import REDIS_URL, service_url
from tests.conftest import Tenant


async def wait_for(tenant: Tenant, job_id: str, status: set[str], seconds: float = 30) -> dict:
    for _ in range(int(seconds * 10)):
        answer = await tenant.get_job(job_id)
        if answer.status_code == 200 and answer.json()["status"] in status:
            return answer.json()
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {status}: {answer.status_code} {answer.text[:300]}")


async def test_the_public_example_comes_back_optimized_and_assigned(tenant: Tenant):
    body = tenant.job()
    answer = await tenant.import_job(body)
    assert answer.status_code == 201, answer.text
    job = answer.json()
    assert job["status"] == "assigned" and job["driver"]["email"] == tenant.driver
    assert job["external_job_id"] == body["external_job_id"]
    assert job["optimization"]["total_distance_km"] > 0 and job["optimization"]["total_duration_minutes"] > 0
    assert [s["sequence"] for s in job["stops"]] == list(range(1, 9))
    assert sorted(s["external_stop_id"] for s in job["stops"]) == sorted(s["external_stop_id"] for s in body["stops"])
    assert all(s["lat"] and s["lng"] and s["eta"] for s in job["stops"])
    assert {w["code"] for w in job["warnings"]} == {"GEOCODE_APPROXIMATE"}  # offline gazetteer: honest
    assert answer.headers["Location"] == f"/v1/integration-jobs/{job['job_id']}"

    by_id = await tenant.http.get("/v1/integration-jobs", params={"job_id": job["job_id"]}, headers=tenant.auth)
    by_ext = await tenant.http.get(
        "/v1/integration-jobs", params={"external_job_id": body["external_job_id"]}, headers=tenant.auth
    )
    assert by_id.status_code == by_ext.status_code == 200
    assert by_id.json()["job_id"] == by_ext.json()["job_id"] == job["job_id"]
    assert by_id.json()["stop_count"] == 8 and by_id.json()["status_counts"]["pending"] == 8
    assert [s["external_stop_id"] for s in by_id.json()["stops"]] == [s["external_stop_id"] for s in job["stops"]]

    async with httpx.AsyncClient() as direct:  # the optimizer's own metrics saw the solve, by engine and size
        metrics = (await direct.get(service_url("optimizer") + "/metrics")).text
    solves = [
        line
        for line in metrics.splitlines()
        if line.startswith('routemate_solver_seconds_count{engine="exact",size="1-8"}')
    ]
    assert solves and float(solves[0].split()[-1]) >= 1


async def test_tokens_come_in_all_three_rfc6749_forms(tenant: Tenant):
    cid, secret = tenant.creds["client_id"], tenant.creds["client_secret"]
    form = await tenant.http.post(
        "/v1/integration-token", data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret}
    )
    basic = await tenant.http.post(
        "/v1/integration-token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic " + base64.b64encode(f"{cid}:{secret}".encode()).decode()},
    )
    for answer in (form, basic):
        assert answer.status_code == 200, answer.text
        assert answer.json()["token_type"] == "Bearer" and answer.json()["expires_in"] == 3600
        assert answer.headers["Cache-Control"] == "no-store"
        listed = await tenant.http.get(
            "/v1/integration-jobs", headers={"Authorization": f"Bearer {answer.json()['access_token']}"}
        )
        assert listed.status_code == 200


async def test_respond_async_answers_202_and_the_job_is_followed_to_its_route(tenant: Tenant):
    answer = await tenant.import_job(Prefer="respond-async")
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    assert answer.headers["Location"] == f"/v1/integration-jobs/{job_id}"
    job = await wait_for(tenant, job_id, {"assigned"})
    assert len(job["stops"]) == 8


async def test_the_same_import_again_is_the_same_job_and_a_different_body_conflicts(tenant: Tenant):
    body = tenant.job()
    first = await tenant.import_job(body)
    again = await tenant.import_job(body)
    assert first.status_code == 201 and again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["job_id"] == first.json()["job_id"]
    # the route again, from the outcome the status service keeps in Redis, packed
    assert [s["external_stop_id"] for s in again.json()["stops"]] == [
        s["external_stop_id"] for s in first.json()["stops"]
    ]
    job_id = first.json()["job_id"]
    redis = Redis.from_url(REDIS_URL)
    try:
        kept = await redis.get(outcome_key(job_id))
        key = (await DataKeys(redis, StatusSettings().kek_material).keys([job_id]))[job_id]
    finally:
        await redis.aclose()
    # sealed under the job's data key: the durable Redis' files hold nothing an erasure leaves readable
    assert kept.startswith(BLOB) and open_outcome(kept, None, job_id) is None and unpack_outcome(kept) is None
    view = open_outcome(kept, key, job_id)
    assert JobSettled.model_validate_json(view).job["job_id"] == job_id
    assert len(kept) * 3 < len(view)
    changed = await tenant.import_job({**body, "title": "something else"})
    assert changed.status_code == 409 and changed.json()["code"] == "idempotency_conflict"
    assert changed.headers["content-type"].startswith("application/problem+json")


async def test_the_settled_jobs_announcement_is_sealed_and_its_waiting_import_opens_it(tenant: Tenant):
    """Every ingest replica (and any client subscribed to the channel) hears every settled job:
    it crosses Redis sealed under the job's data key, and the import waiting for it answers 201
    with the route it opened."""
    redis = Redis.from_url(REDIS_URL)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(JOB_OUTCOME)
    try:
        body = tenant.job()
        answer = await tenant.import_job(body)
        assert answer.status_code == 201, answer.text  # the waiter's answer: the opened outcome
        job_id = answer.json()["job_id"]
        heard: dict[str, bytes] = {}
        for _ in range(100):
            message = await pubsub.get_message(timeout=0.1)
            if message is not None and (one := announced(message["data"])) is not None:
                heard[one[0]] = message["data"]
            if job_id in heard:
                break
        key = (await DataKeys(redis, StatusSettings().kek_material).keys([job_id]))[job_id]
    finally:
        await pubsub.aclose()
        await redis.aclose()
    message = heard[job_id]
    address = body["stops"][0]["address"].encode()
    assert message.startswith(job_id.encode() + b"\n" + BLOB) and address not in message
    _, sealed = announced(message)
    assert JobSettled.model_validate_json(open_outcome(sealed, key, job_id)).job == answer.json()


async def test_twenty_concurrent_duplicates_create_exactly_one_job(tenant: Tenant):
    body = tenant.job()
    answers = await asyncio.gather(*(tenant.import_job(body) for _ in range(20)))
    assert all(a.status_code in (200, 201, 202) for a in answers), [a.text for a in answers if a.status_code >= 300]
    assert len({a.json()["job_id"] for a in answers}) == 1
    assert sum(a.status_code == 201 for a in answers) <= 1
    listed = await tenant.http.get("/v1/integration-jobs", headers=tenant.auth, params={"limit": 100})
    assert [j["external_job_id"] for j in listed.json()["jobs"]].count(body["external_job_id"]) == 1


async def test_stop_updates_move_the_job_to_in_progress_then_completed(tenant: Tenant):
    job = (await tenant.import_job()).json()
    stops = [s["external_stop_id"] for s in job["stops"]]
    url = f"/v1/integration-jobs/{job['job_id']}/stops/{{}}/status"
    first = await tenant.http.post(
        url.format(stops[0]),
        headers=tenant.auth,
        json={"status": "completed", "recipient_name": "Sam", "photo_urls": ["https://example.com/p.jpg"]},
    )
    assert first.status_code == 202, first.text
    progressed = await wait_for(tenant, job["job_id"], {"in_progress"})
    assert progressed["stops"][0]["proof_of_delivery"]["recipient_name"] == "Sam"
    for i, stop in enumerate(stops[1:]):
        outcome = ("failed", "skipped", "completed")[i % 3]
        answer = await tenant.http.post(
            url.format(stop), headers=tenant.auth, json={"status": outcome, "reason": "test"}
        )
        assert answer.status_code == 202
    done = await wait_for(tenant, job["job_id"], {"completed"})
    assert "pending" not in done["status_counts"]
    missing = await tenant.http.post(url.format("NO-SUCH-STOP"), headers=tenant.auth, json={"status": "completed"})
    assert missing.status_code == 404 and missing.json()["code"] == "stop_not_found"
    bad = await tenant.http.post(url.format(stops[0]), headers=tenant.auth, json={"status": "teleported"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/status"


async def test_one_organization_never_sees_another_organizations_jobs(tenant: Tenant, http: httpx.AsyncClient):
    other = await Tenant(http).login()
    job = (await tenant.import_job()).json()
    assert (await other.get_job(job["job_id"])).status_code == 404
    found = await http.get(
        "/v1/integration-jobs", params={"external_job_id": job["external_job_id"]}, headers=other.auth
    )
    assert found.status_code == 404
    listed = await http.get("/v1/integration-jobs", headers=other.auth)
    assert job["job_id"] not in [j["job_id"] for j in listed.json()["jobs"]]
    update = await http.post(
        f"/v1/integration-jobs/{job['job_id']}/stops/STOP-1/status", headers=other.auth, json={"status": "completed"}
    )
    assert update.status_code == 404


async def test_the_job_list_pages_newest_first(tenant: Tenant):
    ids = []
    for _ in range(5):
        ids.append((await tenant.import_job(Prefer="respond-async")).json()["job_id"])
    for job_id in ids:
        await wait_for(tenant, job_id, {"assigned"})
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await tenant.http.get("/v1/integration-jobs", params=params, headers=tenant.auth)).json()
        seen += [j["job_id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
