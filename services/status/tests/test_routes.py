"""Every route of the status service, its answers and its problems, through create_app in-process."""

import json
import os
from datetime import timedelta, timezone

import pytest
from aiokafka.errors import KafkaConnectionError

from shared.errors import PROBLEM_JSON
from shared.events import utcnow
from shared.vocabulary import JobStatus, StopStatus

JOBS = "/v1/integration-jobs"
OTHER_ORG = "org_2"  # the conftest's second organization, with a token and a driver of its own


def stop_url(job_id: str, external_stop_id: str) -> str:
    return f"{JOBS}/{job_id}/stops/{external_stop_id}/status"


def problem(answer, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_JSON)
    body = answer.json()
    assert body["status"] == status and body["code"] == code
    return body


async def test_the_list_pages_newest_first_and_the_cursor_continues_it(status):
    t0 = utcnow()
    for i in range(5):
        await status.job(f"job_{i}", at=t0 + timedelta(seconds=i))
    await status.job("theirs", OTHER_ORG, at=t0 + timedelta(seconds=9))
    seen, cursor = [], None
    for _ in range(3):
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        answer = await status.http.get(JOBS, params=params, headers=status.auth())
        assert answer.status_code == 200, answer.text
        seen.append([job["job_id"] for job in answer.json()["jobs"]])
        cursor = answer.json()["next_cursor"]
    assert seen == [["job_4", "job_3"], ["job_2", "job_1"], ["job_0"]]
    assert cursor is None  # the last page says so


async def test_the_list_filters_by_status(status):
    await status.job("routed")
    await status.job("waiting", route=False)
    answer = await status.http.get(JOBS, params={"status": "assigned"}, headers=status.auth())
    assert [job["job_id"] for job in answer.json()["jobs"]] == ["routed"]
    answer = await status.http.get(JOBS, params={"status": "processing"}, headers=status.auth())
    assert [(job["job_id"], job["status"]) for job in answer.json()["jobs"]] == [("waiting", JobStatus.PROCESSING)]
    problem(await status.http.get(JOBS, params={"status": "lost"}, headers=status.auth()), 422, "validation_failed")


async def test_a_cursor_the_endpoint_never_gave_is_400(status):
    for cursor in ("not-a-cursor", "bm90IGEgY3Vyc29y"):  # garbage, and base64 of garbage
        answer = await status.http.get(JOBS, params={"cursor": cursor}, headers=status.auth())
        body = problem(answer, 400, "invalid_cursor")
        assert "cursor" in body["detail"]


async def test_updated_since_needs_an_offset(status):
    answer = await status.http.get(JOBS, params={"updated_since": "2026-01-01T00:00:00"}, headers=status.auth())
    assert problem(answer, 422, "validation_failed")["errors"][0]["pointer"] == "?updated_since"
    answer = await status.http.get(JOBS, params={"updated_since": "2026-01-01T00:00:00Z"}, headers=status.auth())
    assert answer.status_code == 200


async def test_the_list_finds_one_job_by_id_or_external_id(status):
    await status.job("job_1")
    by_id = await status.http.get(JOBS, params={"job_id": "job_1"}, headers=status.auth())
    by_external = await status.http.get(JOBS, params={"external_job_id": "EXT-job_1"}, headers=status.auth())
    assert by_id.status_code == by_external.status_code == 200
    assert by_id.json() == by_external.json()
    assert by_id.json()["job_id"] == "job_1" and by_id.json()["stop_count"] == 3
    problem(await status.http.get(JOBS, params={"job_id": "nope"}, headers=status.auth()), 404, "job_not_found")


async def test_one_job_comes_with_its_route_and_only_to_its_organization(status):
    await status.job("job_1")
    answer = await status.http.get(f"{JOBS}/job_1", headers=status.auth())
    assert answer.status_code == 200, answer.text
    job = answer.json()
    assert job["status"] == JobStatus.ASSIGNED and job["driver"]["email"] == "dana@example.com"
    assert [(s["external_stop_id"], s["sequence"]) for s in job["stops"]] == [("S1", 1), ("S0", 2)]
    assert [s["external_stop_id"] for s in job["unrouted_stops"]] == ["S2"]
    problem(await status.http.get(f"{JOBS}/job_1", headers=status.auth(OTHER_ORG)), 404, "job_not_found")
    listed = await status.http.get(JOBS, params={"job_id": "job_1"}, headers=status.auth(OTHER_ORG))
    problem(listed, 404, "job_not_found")
    assert (await status.http.get(JOBS, headers=status.auth(OTHER_ORG))).json()["jobs"] == []


async def test_a_stop_update_is_accepted_and_reaches_the_job(status):
    await status.job("job_1")
    when = (utcnow() - timedelta(minutes=5)).replace(microsecond=0)
    local = when.astimezone(timezone(timedelta(hours=10))).isoformat()
    report = {"status": "completed", "occurred_at": local, "recipient_name": "Sam"}
    answer = await status.http.post(stop_url("job_1", "S1"), json=report, headers=status.auth())
    assert answer.status_code == 202, answer.text
    assert answer.headers["Location"] == f"{JOBS}/job_1"
    accepted = answer.json()
    assert accepted["job_id"] == "job_1" and accepted["external_stop_id"] == "S1"
    assert accepted["status"] == "completed" and accepted["status_at"] == local
    assert accepted["event_id"]
    job = (await status.http.get(f"{JOBS}/job_1", headers=status.auth())).json()  # the consumer applied it
    assert job["status"] == JobStatus.IN_PROGRESS
    s1 = next(s for s in job["stops"] if s["external_stop_id"] == "S1")
    assert s1["status"] == StopStatus.COMPLETED and s1["status_at"] == when.isoformat().replace("+00:00", "Z")
    assert s1["proof_of_delivery"]["recipient_name"] == "Sam"


async def test_a_stop_update_for_an_unknown_job_or_stop_is_404(status):
    await status.job("job_1")
    await status.job("theirs", OTHER_ORG)
    done = {"status": "completed"}
    problem(await status.http.post(stop_url("nope", "S1"), json=done, headers=status.auth()), 404, "job_not_found")
    problem(await status.http.post(stop_url("theirs", "S1"), json=done, headers=status.auth()), 404, "job_not_found")
    answer = await status.http.post(stop_url("job_1", "S9"), json=done, headers=status.auth())
    body = problem(answer, 404, "stop_not_found")
    assert "S9" in body["detail"]


async def test_a_stop_of_a_job_not_routed_yet_or_off_the_route_cannot_be_updated(status):
    await status.job("waiting", route=False)
    await status.job("job_1")
    done = {"status": "completed"}
    answer = await status.http.post(stop_url("waiting", "S0"), json=done, headers=status.auth())
    assert problem(answer, 409, "illegal_transition")["job_status"] == JobStatus.PROCESSING
    answer = await status.http.post(stop_url("job_1", "S2"), json=done, headers=status.auth())
    assert problem(answer, 409, "illegal_transition")["stop_status"] == StopStatus.UNROUTABLE


async def test_a_stop_update_needs_a_known_status_and_an_offset(status):
    await status.job("job_1")
    naive = {"status": "failed", "occurred_at": "2026-11-30T09:15:00"}
    answer = await status.http.post(stop_url("job_1", "S1"), json=naive, headers=status.auth())
    assert problem(answer, 422, "validation_failed")["errors"][0]["pointer"] == "/occurred_at"
    answer = await status.http.post(stop_url("job_1", "S1"), json={"status": "delivered"}, headers=status.auth())
    problem(answer, 422, "validation_failed")
    for year in ("9999", "1999"):  # a year-9999 outcome would pin the stop's status forever
        far = {"status": "failed", "occurred_at": f"{year}-12-31T00:00:00Z"}
        answer = await status.http.post(stop_url("job_1", "S1"), json=far, headers=status.auth())
        assert problem(answer, 422, "validation_failed")["errors"][0]["pointer"] == "/occurred_at"
    nul = {"status": "failed", "reason": "no\u0000body"}
    answer = await status.http.post(stop_url("job_1", "S1"), content=json.dumps(nul), headers=status.auth())
    problem(answer, 422, "validation_failed")


async def test_a_stop_update_kafka_did_not_take_is_503_and_changes_nothing(status, monkeypatch):
    await status.job("job_1")

    async def broker_down(event) -> None:
        raise KafkaConnectionError("no broker")

    monkeypatch.setattr(status.app.state.bus, "publish", broker_down)
    answer = await status.http.post(stop_url("job_1", "S1"), json={"status": "completed"}, headers=status.auth())
    problem(answer, 503, "dependency_unavailable")
    assert answer.headers["Retry-After"] == "5"
    job = (await status.http.get(f"{JOBS}/job_1", headers=status.auth())).json()
    assert job["status"] == JobStatus.ASSIGNED and "completed" not in job["status_counts"]


@pytest.mark.parametrize(
    "method, path",
    [("GET", JOBS), ("GET", f"{JOBS}/job_1"), ("POST", stop_url("job_1", "S1"))],
)
@pytest.mark.parametrize(
    "authorization, code",
    [(None, "missing_token"), ("Bearer rm_at_" + "A" * 43, "invalid_token"), ("Basic abc", "invalid_token")],
)
async def test_every_route_wants_a_live_token(status, method, path, authorization, code):
    headers = {"Authorization": authorization} if authorization else {}
    answer = await status.http.request(method, path, json={"status": "completed"}, headers=headers)
    problem(answer, 401, code)
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_database_that_is_gone_is_503_not_500(status):
    await status.job("job_1")
    status.app.state.queries.engine.dispose()
    os.replace(status.database, status.database.with_suffix(".gone"))
    status.database.mkdir()  # nothing can open a directory as its database
    for answer in (
        await status.http.get(f"{JOBS}/job_1", headers=status.auth()),
        await status.http.get(JOBS, headers=status.auth()),
    ):
        body = problem(answer, 503, "database_unavailable")
        assert answer.headers["Retry-After"] == "5" and "Traceback" not in answer.text
        assert body["detail"] == "The job store is unavailable; retry shortly."


async def test_the_list_filters_by_driver_and_by_driver_email_side_by_side(status):
    # Each filter reaches its own column (a positional filter once landed in a date column: 500).
    await status.job("job_1")
    for params in ({"driver": "nobody@example.com"}, {"driver_email": "nobody@example.com"}):
        answer = await status.http.get(JOBS, params=params, headers=status.auth())
        assert answer.status_code == 200, answer.text
        assert answer.json()["jobs"] == []
    everyone = await status.http.get(JOBS, params={"status": "pending"}, headers=status.auth())
    assert everyone.status_code == 200
