"""Redis or Kafka stopped: clear 503s with Retry-After, never a 500 or a hang; all well after restart."""

import asyncio
import subprocess

import httpx

from tests.conftest import ROOT, Tenant


def platform(*args: str) -> None:
    subprocess.run(["bash", str(ROOT / "deploy/local/platform.sh"), *args], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)


def kafka(action: str) -> None:
    subprocess.run(["bash", str(ROOT / "deploy/kafka/kafka.sh"), action], cwd=ROOT, check=True,
                   env={"KAFKA_STATE_DIR": str(ROOT / "var/kafka"), "PATH": "/usr/bin:/bin:/usr/local/bin"},
                   stdout=subprocess.DEVNULL)


def assert_unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["Retry-After"]) > 0


async def test_redis_down_means_503_everywhere_and_tokens_survive_a_restart(http: httpx.AsyncClient, tenant: Tenant):
    subprocess.run(["redis-cli", "-p", "6379", "shutdown"], check=False, stdout=subprocess.DEVNULL)
    try:
        token = await http.post("/v1/integration-token", json={"client_id": tenant.creds["client_id"],
                                                               "client_secret": tenant.creds["client_secret"]})
        assert_unavailable(token)
        assert token.json()["error"] == "temporarily_unavailable" and "access_token" not in token.json()
        assert_unavailable(await tenant.import_job())
        assert_unavailable(await http.get("/v1/integration-jobs", headers=tenant.auth))
    finally:
        platform("up")
    await asyncio.sleep(1)
    assert (await http.get("/v1/integration-jobs", headers=tenant.auth)).status_code == 200  # token persisted
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
    # the same import after recovery is a fresh, normal import: the failed attempt reserved nothing
    for _ in range(60):
        again = await tenant.import_job(body)
        if again.status_code != 503:
            break
        await asyncio.sleep(1)
    assert again.status_code == 201, again.text
    assert "Idempotent-Replayed" not in again.headers and again.json()["status"] == "assigned"
