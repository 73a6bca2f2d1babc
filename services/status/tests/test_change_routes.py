"""ETags and 304s, cancel and re-plan, through create_app in-process (in-memory Kafka and Redis)."""

from datetime import timedelta

import pytest
from aiokafka.errors import KafkaConnectionError

from shared.channels import JobHead, jobhead_key
from shared.errors import PROBLEM_JSON
from shared.events import utcnow
from shared.testing.builders import stop_changed
from shared.vocabulary import StopStatus

JOBS = "/v1/integration-jobs"


def problem(answer, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_JSON) and answer.json()["code"] == code
    return answer.json()


async def test_a_job_answers_its_version_as_a_strong_etag_and_304_while_unchanged(status):
    await status.job("job_1")
    first = await status.http.get(f"{JOBS}/job_1", headers=status.auth())
    tag = first.headers["ETag"]
    assert tag == f'"{first.json()["version"]}"' and first.headers["Cache-Control"] == "no-store"
    for header in (tag, "*", f'"0", {tag}', f"W/{tag}"):
        again = await status.http.get(f"{JOBS}/job_1", headers={**status.auth(), "If-None-Match": header})
        assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", tag)
    by_query = await status.http.get(JOBS, params={"job_id": "job_1"}, headers={**status.auth(), "If-None-Match": tag})
    assert by_query.status_code == 304
    await status.publish(stop_changed(1, StopStatus.COMPLETED, org_id="org_1", job_id="job_1"))
    changed = await status.http.get(f"{JOBS}/job_1", headers={**status.auth(), "If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["ETag"] != tag
    assert changed.json()["version"] == first.json()["version"] + 2  # the stop's change, then job.in_progress
    listed = await status.http.get(JOBS, headers=status.auth())
    assert listed.json()["jobs"][0]["version"] == changed.json()["version"]


async def test_each_committed_change_mirrors_the_jobs_head_to_redis(status):
    await status.job("job_1")
    await status.publish(stop_changed(1, StopStatus.COMPLETED, org_id="org_1", job_id="job_1"))
    head = JobHead.model_validate_json(await status.redis.get(jobhead_key("job_1")))
    job = (await status.http.get(f"{JOBS}/job_1", headers=status.auth())).json()
    assert (head.org_id, head.version, head.status, head.finished) == ("org_1", job["version"], "in_progress", ("S1",))


async def test_cancel_makes_the_job_and_its_pending_stops_cancelled_once(status):
    await status.job("job_1")
    await status.publish(stop_changed(1, StopStatus.COMPLETED, org_id="org_1", job_id="job_1"))
    first = await status.http.post(f"{JOBS}/job_1/cancel", json={"reason": "customer called"}, headers=status.auth())
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "cancelled" and first.headers["Location"] == f"{JOBS}/job_1"
    job = (await status.http.get(f"{JOBS}/job_1", headers=status.auth())).json()
    assert job["status"] == "cancelled" and [s["status"] for s in job["stops"]] == ["completed", "cancelled"]
    again = await status.http.post(f"{JOBS}/job_1/cancel", headers=status.auth())
    assert again.status_code == 200 and again.json() == first.json()
    late = await status.http.post(f"{JOBS}/job_1/stops/S0/status", json={"status": "completed"}, headers=status.auth())
    problem(late, 409, "illegal_transition")
    replan = await status.http.post(f"{JOBS}/job_1/reoptimize", json={}, headers=status.auth())
    problem(replan, 409, "illegal_transition")


async def test_a_completed_job_cannot_be_cancelled_and_a_stale_if_match_is_412(status):
    await status.job("job_1")
    stale = await status.http.post(f"{JOBS}/job_1/cancel", headers={**status.auth(), "If-Match": '"1"'})
    body = problem(stale, 412, "precondition_failed")
    assert stale.headers["ETag"] == f'"{body["current_version"]}"'
    for i in (1, 0):
        await status.publish(stop_changed(i, StopStatus.COMPLETED, org_id="org_1", job_id="job_1"))
    problem(await status.http.post(f"{JOBS}/job_1/cancel", headers=status.auth()), 409, "illegal_transition")
    problem(await status.http.post(f"{JOBS}/nope/cancel", headers=status.auth()), 404, "job_not_found")


async def test_a_replan_asks_for_the_remaining_stops_from_the_current_location(status):
    await status.job("job_1")
    await status.publish(stop_changed(1, StopStatus.COMPLETED, org_id="org_1", job_id="job_1"))
    tag = (await status.http.get(f"{JOBS}/job_1", headers=status.auth())).headers["ETag"]
    at = (utcnow() + timedelta(minutes=5)).isoformat()
    body = {"current_location": {"lat": -27.5, "lng": 153.0}, "at": at}
    answer = await status.http.post(f"{JOBS}/job_1/reoptimize", json=body, headers={**status.auth(), "If-Match": tag})
    assert answer.status_code == 202, answer.text
    assert answer.json()["remaining_stops"] == 1  # S0; S1 is done and S2 was never placed
    assert answer.json()["start"] == {"lat": -27.5, "lng": 153.0, "origin": "current_location"}
    from_last = await status.http.post(f"{JOBS}/job_1/reoptimize", headers=status.auth())
    assert from_last.json()["start"]["origin"] == "last_finished_stop"


async def test_a_replan_refuses_bad_times_and_unrouted_jobs(status):
    await status.job("job_1")
    await status.job("waiting", route=False)
    url = f"{JOBS}/job_1/reoptimize"
    naive = await status.http.post(url, json={"at": "2026-01-01T10:00:00"}, headers=status.auth())
    problem(naive, 422, "validation_failed")
    far = (utcnow() + timedelta(days=900)).isoformat()
    problem(await status.http.post(url, json={"at": far}, headers=status.auth()), 422, "validation_failed")
    off_earth = await status.http.post(url, json={"current_location": {"lat": 91, "lng": 0}}, headers=status.auth())
    problem(off_earth, 422, "validation_failed")
    problem(await status.http.post(f"{JOBS}/waiting/reoptimize", headers=status.auth()), 409, "illegal_transition")


async def test_with_kafka_down_a_change_is_503_and_nothing_changes(status, monkeypatch):
    await status.job("job_1")

    async def broker_down(event) -> None:
        raise KafkaConnectionError("no broker")

    monkeypatch.setattr(status.app.state.bus, "publish", broker_down)
    for path in ("cancel", "reoptimize"):
        answer = await status.http.post(f"{JOBS}/job_1/{path}", headers=status.auth())
        assert problem(answer, 503, "dependency_unavailable")["detail"].startswith("The change to the job")
    assert (await status.http.get(f"{JOBS}/job_1", headers=status.auth())).json()["status"] == "assigned"


@pytest.mark.parametrize("path", ["cancel", "reoptimize"])
async def test_changes_want_a_live_token_and_the_callers_own_job(status, path):
    await status.job("theirs", "org_2")
    problem(await status.http.post(f"{JOBS}/theirs/{path}"), 401, "missing_token")
    problem(await status.http.post(f"{JOBS}/theirs/{path}", headers=status.auth()), 404, "job_not_found")
