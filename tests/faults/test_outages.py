"""Redis or Kafka stopped: clear 503s with Retry-After, never a 500 or a hang; all well after restart."""

import asyncio
import os
import signal
import subprocess
from urllib.parse import urlsplit

import httpx

from shared.testing.stack import REDIS_URL
from tests.conftest import ROOT, Tenant

REDIS_PORT = str(urlsplit(REDIS_URL).port or 6379)  # this platform's Redis, never another one's


def platform(*args: str) -> None:
    subprocess.run(
        ["bash", str(ROOT / "deploy/local/platform.sh"), *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )


def kafka(action: str) -> None:
    subprocess.run(
        ["bash", str(ROOT / "deploy/kafka/kafka.sh"), action],
        cwd=ROOT,
        check=True,
        env={"KAFKA_STATE_DIR": str(ROOT / "var/kafka"), "PATH": "/usr/bin:/bin:/usr/local/bin"},
        stdout=subprocess.DEVNULL,
    )


def assert_unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["Retry-After"]) > 0


async def test_redis_down_means_503_everywhere_and_tokens_survive_a_restart(http: httpx.AsyncClient, tenant: Tenant):
    subprocess.run(["redis-cli", "-p", REDIS_PORT, "shutdown"], check=False, stdout=subprocess.DEVNULL)
    try:
        token = await http.post(
            "/v1/integration-token",
            json={"client_id": tenant.creds["client_id"], "client_secret": tenant.creds["client_secret"]},
        )
        assert_unavailable(token)
        assert token.json()["error"] == "temporarily_unavailable" and "access_token" not in token.json()
        assert_unavailable(await tenant.import_job())
        assert_unavailable(await http.get("/v1/integration-jobs", headers=tenant.auth))
    finally:
        platform("up")
    for _ in range(20):  # as a client would: retry while told to
        listed = await http.get("/v1/integration-jobs", headers=tenant.auth)
        if listed.status_code != 503:
            break
        await asyncio.sleep(0.5)
    assert listed.status_code == 200  # the token survived the restart (Redis appends to disk)
    assert (await tenant.import_job()).status_code == 201


async def test_kafka_down_means_503_and_nothing_half_accepted(http: httpx.AsyncClient, tenant: Tenant):
    body = tenant.job()
    kafka("stop")
    try:
        started = asyncio.get_running_loop().time()
        answer = await tenant.import_job(body)
        assert_unavailable(answer)
        assert asyncio.get_running_loop().time() - started < 20
        assert answer.json()["code"] == "dependency_unavailable"
    finally:
        platform("up")
    # the retry after recovery imports it normally, under the job_id the failed attempt reserved
    for _ in range(60):
        again = await tenant.import_job(body)
        if again.status_code != 503:
            break
        await asyncio.sleep(1)
    # 201 with the route, or 202 when the stages, just back from the outage, take longer than the
    # import's wait: either way the one job under the reserved id, imported once and then routed.
    assert again.status_code in (201, 202), again.text
    assert "Idempotent-Replayed" not in again.headers
    job_id = again.json()["job_id"]
    for _ in range(120):
        if (await tenant.get_job(job_id)).json().get("status") == "assigned":
            break
        await asyncio.sleep(0.5)
    assert (await tenant.get_job(job_id)).json()["status"] == "assigned"


async def test_kafka_stopped_mid_burst_loses_and_doubles_nothing(http: httpx.AsyncClient, tenant: Tenant):
    bodies = [tenant.job() for _ in range(60)]

    async def post(i: int, body: dict) -> httpx.Response:
        await asyncio.sleep(i * 0.05)  # a steady burst over 3 s; the broker stops after 0.5 s
        return await tenant.import_job(body, Prefer="respond-async")

    posts = [asyncio.create_task(post(i, b)) for i, b in enumerate(bodies)]
    await asyncio.sleep(0.5)
    await asyncio.to_thread(kafka, "stop")
    try:
        answers = await asyncio.gather(*posts)
    finally:
        await asyncio.to_thread(platform, "up")
    accepted = [a.json()["job_id"] for a in answers if a.status_code == 202]
    refused = [a for a in answers if a.status_code != 202]
    assert accepted, "some imports were accepted before the broker stopped"
    assert refused, "some imports met the stopped broker"
    for answer in refused:
        assert_unavailable(answer)
    for job_id in accepted:  # every 2xx job completes once the broker is back
        for _ in range(600):
            got = await tenant.get_job(job_id)
            if got.status_code == 200 and got.json()["status"] == "assigned":
                break
            await asyncio.sleep(0.1)
        assert got.status_code == 200 and got.json()["status"] == "assigned", got.text
    # the refused ones, retried, become exactly one job each
    for answer, body in zip(answers, bodies, strict=False):
        if answer.status_code != 202:
            for _ in range(20):  # as a client would: retry while told to
                retry = await tenant.import_job(body)
                if retry.status_code != 503:
                    break
                await asyncio.sleep(0.5)
            assert retry.status_code in (200, 201), retry.text
    listed = (await http.get("/v1/integration-jobs", params={"limit": 200}, headers=tenant.auth)).json()["jobs"]
    external = [j["external_job_id"] for j in listed]
    assert sorted(external) == sorted(b["external_job_id"] for b in bodies)


async def test_an_update_kafka_took_only_after_its_503_is_answered_as_applied_on_retry(tenant: Tenant):
    """The broker frozen (SIGSTOP) past ingest's publish timeout: the update is answered 503 though
    the produce request sits in the broker's socket. Thawed, the broker takes it and the job moves
    to the new spec, which makes the client's If-Match stale. The client's retry with the same body
    and the same If-Match is answered 200 with the update (not 412), and the job has its spec once."""
    body = tenant.job()
    first = await tenant.import_job(body)
    assert first.status_code == 201, first.text
    job_id, etag = first.json()["job_id"], first.headers["ETag"]
    changed = {**body, "title": "changed while the broker stood still"}
    pid = int((ROOT / "var/kafka/kafka.pid").read_text().split()[0])
    os.kill(pid, signal.SIGSTOP)
    try:
        answer = await tenant.import_job(changed, **{"If-Match": etag})
    finally:
        os.kill(pid, signal.SIGCONT)
    assert_unavailable(answer)
    for _ in range(120):  # the producer's request, answered now: the job reaches spec 2
        view = (await tenant.get_job(job_id)).json()
        if view.get("spec_version") == 2:
            break
        await asyncio.sleep(0.5)
    assert view["spec_version"] == 2 and view["title"] == changed["title"], view
    assert view["version"] > int(etag.strip('"'))  # the update itself made the client's If-Match stale
    for _ in range(20):  # as a client would: retry while told to
        retry = await tenant.import_job(changed, **{"If-Match": etag})
        if retry.status_code != 503:
            break
        await asyncio.sleep(0.5)
    # 200 with the update; or 202 when its new route takes longer than the import's wait (the stages'
    # consumers rejoin their groups after the broker's pause): never 412, the update is in the job.
    assert retry.status_code in (200, 202), retry.text
    assert "Idempotent-Replayed" not in retry.headers
    for _ in range(120):
        routed = (await tenant.get_job(job_id)).json()
        if routed["status"] == "assigned":  # the new spec routed (an update leaves the job unrouted until then)
            break
        await asyncio.sleep(0.5)
    if retry.status_code == 200:
        assert retry.json()["spec_version"] == 2 and retry.json()["title"] == changed["title"]
        assert retry.json()["version"] == routed["version"]
    await asyncio.sleep(2)  # anything the retry published (another spec, or the update again) is applied by now
    after = (await tenant.get_job(job_id)).json()
    assert (after["spec_version"], after["title"]) == (2, changed["title"])
    assert after["version"] == routed["version"]  # the job moved no further
