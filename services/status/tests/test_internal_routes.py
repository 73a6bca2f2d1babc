"""The console's read endpoints: behind INTERNAL_TOKEN, scoped to the organization named, with a date filter."""

from datetime import timedelta

from services.status.tests.conftest import ORG, OTHER_ORG
from shared.events import utcnow
from shared.settings import LOCAL_INTERNAL_TOKEN

INTERNAL = {"Authorization": f"Bearer {LOCAL_INTERNAL_TOKEN}"}


async def test_the_console_reads_an_organizations_jobs_by_day_and_never_anothers(status):
    today = utcnow()
    await status.job("job_today", at=today)
    await status.job("job_before", at=today - timedelta(days=2))
    listed = await status.http.get(f"/internal/v1/orgs/{ORG}/jobs", headers=INTERNAL)
    assert [j["job_id"] for j in listed.json()["jobs"]] == ["job_today", "job_before"]
    day = await status.http.get(
        f"/internal/v1/orgs/{ORG}/jobs", params={"created_on": today.date().isoformat()}, headers=INTERNAL
    )
    assert [j["job_id"] for j in day.json()["jobs"]] == ["job_today"]
    one = await status.http.get(f"/internal/v1/orgs/{ORG}/jobs/job_today", headers=INTERNAL)
    assert one.status_code == 200 and [s["sequence"] for s in one.json()["stops"]] == [1, 2]
    assert "depot" in one.json()
    assert (await status.http.get(f"/internal/v1/orgs/{OTHER_ORG}/jobs/job_today", headers=INTERNAL)).status_code == 404
    assert (await status.http.get(f"/internal/v1/orgs/{OTHER_ORG}/jobs", headers=INTERNAL)).json()["jobs"] == []


async def test_the_internal_endpoints_refuse_integration_tokens_and_no_token(status):
    await status.job("job_1")
    for headers in ({}, status.auth(ORG), {"Authorization": "Bearer wrong"}):
        answer = await status.http.get(f"/internal/v1/orgs/{ORG}/jobs", headers=headers)
        assert answer.status_code == 401 and answer.json()["code"] == "invalid_internal_token"
