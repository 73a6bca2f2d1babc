"""Fixtures for the end-to-end suite: the real platform, started by the project's own script."""

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocol

from shared.testing.processes import running_service
from shared.testing.stack import BOOTSTRAP, EDGE, REDIS_URL, service_url

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = json.loads((ROOT / "deploy/examples/brisbane-job.json").read_text())


@contextmanager
def extra_process(service: str, port: int, **env: str) -> Iterator[str]:
    """One more process of `service` on `port`, sharing the platform's Kafka, Redis and database;
    yields its URL once it is healthy. Its log goes to var/log/SERVICE-PORT.log."""
    log = ROOT / f"var/log/{service}-{port}.log"
    if service in ("auth", "notifier"):  # its admin listener too, clear of the platform's (PORT+10)
        env = {f"{service.upper()}_ADMIN_PORT": str(port + 10), **env}
    with running_service(f"services.{service}", port, log=log, **{f"{service.upper()}_PORT": str(port), **env}) as url:
        yield url


async def consumer_group(group: str) -> tuple[str, frozenset[str]]:
    """A consumer group's state and member ids, as the broker's coordinator sees them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        _, _, state, _, _, members, *_ = response.groups[0]
        return state, frozenset(member[0] for member in members)
    finally:
        await admin.close()


async def group_partitions(group: str) -> tuple[str, dict[str, list[TopicPartition]]]:
    """A consumer group's state and each member's partitions, as its coordinator assigned them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        _, _, state, _, _, members, *_ = response.groups[0]
        return state, {
            member[0]: ConsumerProtocol.ASSIGNMENT.decode(member[-1]).partitions() if member[-1] else []
            for member in members
        }
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def platform() -> str:
    """The platform (on ROUTEMATE_BASE_URL, default port 8080); started (or repaired) here, never skipped."""
    subprocess.run(
        ["bash", str(ROOT / "deploy/local/platform.sh"), "up"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )
    return EDGE


def routemate(*args: str, timeout: float = 60) -> dict:
    """Run the real `routemate` CLI and parse its JSON."""
    # The notifier of the platform under test (a shifted one's too), not the default port's.
    env = {**os.environ, "NOTIFIER_URL": os.environ.get("NOTIFIER_URL", service_url("notifier"))}
    done = subprocess.run(
        [sys.executable, "-m", "routemate_cli.main", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class Tenant:
    """One organization with an integration, a driver and a bearer token."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.org = f"test-{uuid.uuid4().hex[:10]}"
        self.http = http
        self.creds = routemate("integration", "create", "--org", self.org, "--name", "e2e")
        self.driver = f"driver-{uuid.uuid4().hex[:6]}@example.com"
        routemate("driver", "add", "--org", self.org, "--email", self.driver, "--name", "Dana")
        self.token = ""

    async def login(self) -> "Tenant":
        answer = await self.http.post(
            "/v1/integration-token",
            json={"client_id": self.creds["client_id"], "client_secret": self.creds["client_secret"]},
        )
        assert answer.status_code == 200, answer.text
        self.token = answer.json()["access_token"]
        return self

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def job(self, **over) -> dict:
        body = json.loads(json.dumps(EXAMPLE))
        body.update(external_job_id=f"E2E-{uuid.uuid4().hex[:12]}", driver_email=self.driver)
        body.update(over)
        return body

    async def import_job(self, body: dict | None = None, **headers: str) -> httpx.Response:
        return await self.http.post("/v1/integration-import", json=body or self.job(), headers={**self.auth, **headers})

    async def get_job(self, job_id: str) -> httpx.Response:
        return await self.http.get(f"/v1/integration-jobs/{job_id}", headers=self.auth)


@pytest.fixture(autouse=True)
def forget_failed_logins():
    """Every test comes from 127.0.0.1: keep one test's failed logins (token endpoint, admin API)
    from locking out the next."""
    yield
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for pattern in ("rm:*:ip:*", "rm:*:pair:*", "rm:*:admin:*"):
            for key in client.scan_iter(pattern):
                client.delete(key)
    except redis.RedisError:
        pass  # a fault test may have Redis down; it brings it back itself
    finally:
        client.close()


@pytest.fixture
async def http(platform):
    async with httpx.AsyncClient(base_url=platform, timeout=60) as client:
        yield client


@pytest.fixture
async def tenant(http) -> Tenant:
    return await Tenant(http).login()
