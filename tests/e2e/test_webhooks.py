"""Webhooks over the real stack: status's outbox -> Kafka -> the notifier -> a local receiver that
verifies every signature with the independent `standardwebhooks` package.

The platform's notifier keeps the secure default (private targets refused): it answers the API
tests through the edge. Deliveries to the local receiver on 127.0.0.1 go through a second notifier
process with WEBHOOK_ALLOW_PRIVATE_TARGETS=true, its own database and consumer group, and the
retry schedule scaled down 50 times (5 s -> 0.1 s, 5 min -> 6 s, 30 min -> 36 s).
"""

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from shared.testing.processes import ROOT, start_service, stop_service
from shared.testing.receiver import Receiver
from shared.testing.stack import extra_port
from shared.testing.waiting import async_wait_until
from tests.conftest import Tenant

ALL_EVENTS = [
    "job.routed",
    "job.failed",
    "job.assigned",
    "job.in_progress",
    "job.completed",
    "job.updated",
    "job.cancelled",
    "stop.status_changed",
]


class NotifierProcess:
    """A second notifier (test settings) that can be killed with SIGKILL and started again."""

    def __init__(self, var_dir: Path) -> None:
        self.port = extra_port("notifier")
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "NOTIFIER_PORT": str(self.port),
            "NOTIFIER_ADMIN_PORT": str(self.port + 10),
            "VAR_DIR": str(var_dir),
            "NOTIFIER_GROUP": f"e2e-webhooks-{uuid.uuid4().hex[:8]}",
            "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "WEBHOOK_RETRY_SCALE": "0.02",
            "WEBHOOK_TIMEOUT_SECONDS": "2",  # leases of a killed process lapse after 4 x 2 + 5 s
            "WEBHOOK_POLL_SECONDS": "0.2",
        }
        self.log = ROOT / f"var/log/notifier-{self.port}.log"
        self.proc = None

    def start(self) -> None:
        self.proc = start_service("services.notifier", self.port, log=self.log, seconds=60, **self.env)

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no shutdown, leases left behind
        self.proc.wait(10)

    def stop(self) -> None:
        stop_service(self.proc)


@pytest.fixture(scope="module")
def notifier2(platform, tmp_path_factory) -> NotifierProcess:
    process = NotifierProcess(tmp_path_factory.mktemp("notifier2"))
    process.start()
    yield process
    process.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


async def register(tenant: Tenant, base: str, url: str, events: list[str] | None = None) -> dict:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        answer = await client.post(
            "/v1/integration-webhooks", json={"url": url, "events": events or ALL_EVENTS}, headers=tenant.auth
        )
    assert answer.status_code == 201, answer.text
    return answer.json()


def verified(receiver: Receiver, secret: str) -> list[dict]:
    """Every request's payload, each signature checked by standardwebhooks (raises if one is bad)."""
    return [Webhook(secret).verify(r.body, r.headers) for r in receiver.received]


async def arrived(receiver: Receiver, predicate, seconds: float = 60, what: str = "the webhooks") -> None:
    async def check() -> bool:
        return predicate(receiver)

    await async_wait_until(check, seconds, 0.1, what)


def by_type(payloads: list[dict], job_id: str) -> list[str]:
    return [p["type"] for p in payloads if p["data"].get("job_id") == job_id]


async def test_every_event_type_arrives_signed_and_in_order(notifier2, tenant: Tenant, receiver: Receiver):
    endpoint = await register(tenant, notifier2.url, receiver.url)
    job = (await tenant.import_job()).json()
    assert job["status"] == "assigned"
    stops = [s["external_stop_id"] for s in job["stops"]]
    for stop in stops:
        answer = await tenant.http.post(
            f"/v1/integration-jobs/{job['job_id']}/stops/{stop}/status",
            json={"status": "completed"},
            headers=tenant.auth,
        )
        assert answer.status_code == 202, answer.text
    body = tenant.job(
        stops=[{"external_stop_id": f"X{i}", "address": "Qqqzx Nowhere Vxq 00000 Atlantis"} for i in range(2)]
    )
    failed = await tenant.import_job(body)
    failed_id = failed.json()["job_id"]

    expected = ["job.routed", "job.assigned", "stop.status_changed", "job.in_progress"]
    expected += ["stop.status_changed"] * (len(stops) - 1) + ["job.completed"]
    await arrived(
        receiver,
        lambda r: len(r.received) >= len(expected) + 1,
        60,
        "every event of the routed, progressed and completed job, and the failed one",
    )
    payloads = verified(receiver, endpoint["secret"])
    assert by_type(payloads, job["job_id"]) == expected
    assert by_type(payloads, failed_id) == ["job.failed"]
    versions = [p["data"]["version"] for p in payloads if p["data"].get("job_id") == job["job_id"]]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    # One job's deliveries are in order; two jobs' may cross (up to 4 attempts in flight per
    # endpoint), so the failed job's may come first: the routed job's first delivery (job.routed,
    # asserted above) carries the route.
    routed = next(p for p in payloads if p["data"].get("job_id") == job["job_id"])["data"]
    assert routed["optimization"]["total_distance_km"] > 0
    assert [s["external_stop_id"] for s in routed["stops"]] == stops  # the public job view
    assert payloads[-1]["data"]["status"] in ("completed", "failed")
    stop_change = next(p for p in payloads if p["type"] == "stop.status_changed")["data"]
    assert stop_change["stop"]["status"] == "completed" and stop_change["external_job_id"] == job["external_job_id"]
    assert len(set(receiver.ids())) == len(receiver.ids())


async def test_an_update_and_a_cancel_arrive_signed_with_the_jobs_etag_versions(
    notifier2, tenant: Tenant, receiver: Receiver
):
    endpoint = await register(tenant, notifier2.url, receiver.url)
    body = tenant.job()
    imported = await tenant.import_job(body)
    assert imported.status_code == 201, imported.text
    job_id = imported.json()["job_id"]
    body["title"] = "two more parcels for the last stop"
    body["stops"][-1] = {**body["stops"][-1], "parcel_count": 3}
    update = await tenant.import_job(body, **{"If-Match": imported.headers["ETag"]})
    assert update.status_code == 200, update.text
    cancel = await tenant.http.post(
        f"/v1/integration-jobs/{job_id}/cancel", json={"reason": "customer called"}, headers=tenant.auth
    )
    assert cancel.status_code == 202, cancel.text
    await arrived(receiver, lambda r: "job.cancelled" in by_type(verified(r, endpoint["secret"]), job_id), 60)

    payloads = [p for p in verified(receiver, endpoint["secret"]) if p["data"].get("job_id") == job_id]
    types = [p["type"] for p in payloads]
    assert types[:2] == ["job.routed", "job.assigned"] and types[-1] == "job.cancelled"
    updated = payloads[types.index("job.updated")]["data"]
    assert updated["spec_version"] == 2 and updated["title"] == body["title"]
    assert types.index("job.updated") < types.index("job.routed", 2)  # the new route follows the update
    versions = [p["data"]["version"] for p in payloads]
    assert versions == sorted(set(versions))  # strictly increasing per job
    assert updated["version"] > int(imported.headers["ETag"].strip('"'))
    cancelled = payloads[-1]["data"]
    assert cancelled["status"] == "cancelled" and cancelled["cancellation"]["reason"] == "customer called"
    now = await tenant.get_job(job_id)
    assert now.headers["ETag"] == f'"{cancelled["version"]}"'  # the webhook's version is the job's ETag


async def test_500_then_200_is_retried_with_the_same_webhook_id(notifier2, tenant: Tenant, receiver: Receiver):
    endpoint = await register(tenant, notifier2.url, receiver.url, ["job.routed"])
    receiver.statuses = [500]
    job = (await tenant.import_job()).json()
    await arrived(receiver, lambda r: len(r.received) >= 2, 30, "the retry")
    assert receiver.ids()[0] == receiver.ids()[1]
    payloads = verified(receiver, endpoint["secret"])
    assert payloads[1]["data"]["job_id"] == job["job_id"]
    async with httpx.AsyncClient(base_url=notifier2.url) as client:
        log = (await client.get(f"/v1/integration-webhooks/{endpoint['id']}/deliveries", headers=tenant.auth)).json()
    assert [a["status_code"] for a in log["deliveries"][0]["attempts"]] == [200, 500]
    async with httpx.AsyncClient() as client:  # what an SRE sees of it
        metrics = (await client.get(notifier2.url + "/metrics")).text
    for series in (
        'routemate_webhook_attempts_total{outcome="success"}',
        'routemate_webhook_attempts_total{outcome="http_error"}',
        'routemate_webhook_deliveries_total{outcome="succeeded"}',
        "routemate_webhook_delivery_latency_seconds_count",
    ):
        values = [line.split()[-1] for line in metrics.splitlines() if line.startswith(series)]
        assert values and float(values[0]) >= 1, series


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_receiver_down_for_30_s_gets_everything_once_it_is_back(notifier2, tenant: Tenant):
    port = free_port()
    down = Receiver()
    endpoint = await register(tenant, notifier2.url, f"http://127.0.0.1:{port}/hooks", ["job.routed", "job.assigned"])
    outage_started = time.monotonic()
    jobs = [(await tenant.import_job(None, Prefer="respond-async")).json()["job_id"] for _ in range(3)]

    async def retried() -> bool:  # each job's first event failed twice; its second waits behind it, in order
        async with httpx.AsyncClient(base_url=notifier2.url) as client:
            log = await client.get(f"/v1/integration-webhooks/{endpoint['id']}/deliveries", headers=tenant.auth)
        deliveries = log.json()["deliveries"]
        tried = sorted(d["event_type"] for d in deliveries if d["attempt_count"] >= 2)
        waiting = [d["event_type"] for d in deliveries if d["attempt_count"] == 0]
        return len(deliveries) == 6 and tried == ["job.routed"] * 3 and waiting == ["job.assigned"] * 3

    await async_wait_until(retried, 30, 0.5, "two failed attempts of each job's first delivery")
    await asyncio.sleep(max(0.0, 30 - (time.monotonic() - outage_started)))  # the outage lasts 30 s
    await down.start(port)
    try:
        await arrived(down, lambda r: len(set(r.ids())) >= 6, 60, "every delivery after the outage")
        payloads = verified(down, endpoint["secret"])
        assert {p["data"]["job_id"] for p in payloads} == set(jobs)
        for job_id in jobs:
            assert by_type(payloads, job_id) == ["job.routed", "job.assigned"]
    finally:
        await down.stop()


async def test_kill_9_mid_burst_loses_nothing(notifier2, tenant: Tenant, receiver: Receiver):
    endpoint = await register(tenant, notifier2.url, receiver.url, ["job.routed", "job.assigned"])
    receiver.delay_s = 0.3  # deliveries are in flight when the process dies
    jobs = [(await tenant.import_job(None, Prefer="respond-async")).json()["job_id"] for _ in range(8)]
    await arrived(receiver, lambda r: len(r.received) >= 3, 60, "the burst under way")
    notifier2.kill()
    notifier2.start()
    await arrived(receiver, lambda r: len(set(r.ids())) >= 16, 90, "every delivery after the restart")
    payloads = verified(receiver, endpoint["secret"])
    assert {p["data"]["job_id"] for p in payloads} == set(jobs)
    by_id: dict[str, str] = {}
    for got, payload in zip(receiver.received, payloads, strict=True):  # a duplicate is the same event, same id
        body = json.dumps(payload, sort_keys=True)
        assert by_id.setdefault(got.headers["webhook-id"], body) == body
    for job_id in jobs:
        assert sorted(set(by_type(payloads, job_id))) == ["job.assigned", "job.routed"]


async def test_a_dead_endpoint_of_one_tenant_does_not_delay_another(notifier2, http, receiver: Receiver):
    a, b = await Tenant(http).login(), await Tenant(http).login()
    hanging = await Receiver(delay_s=30).start()  # answers nothing within the 2 s timeout
    try:
        await register(a, notifier2.url, hanging.url, ["job.routed", "job.assigned"])
        await register(b, notifier2.url, receiver.url, ["job.routed"])
        for _ in range(6):
            await a.import_job(None, Prefer="respond-async")
        await arrived(hanging, lambda r: len(r.received) >= 4, 60, "tenant A's endpoint hanging")
        started = time.time()
        job = (await b.import_job()).json()
        await arrived(receiver, lambda r: len(r.received) >= 1, 30, "tenant B's webhook")
        assert json.loads(receiver.received[0].body)["data"]["job_id"] == job["job_id"]
        assert receiver.received[0].at - started < 10  # import + route + delivery, not A's timeouts
        assert len(hanging.received) <= 8  # A never has more than its 4 in flight per round
    finally:
        await hanging.stop()


async def test_the_api_through_the_edge_refuses_private_targets_and_hides_other_orgs(http, tenant: Tenant):
    refused = await http.post(
        "/v1/integration-webhooks",
        json={"url": "http://127.0.0.1:9/hooks", "events": ["job.routed"]},
        headers=tenant.auth,
    )
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_webhook_url"
    assert refused.json()["errors"][0]["pointer"] == "/url"
    metadata = await http.post(
        "/v1/integration-webhooks",
        json={"url": "http://169.254.169.254/latest/meta-data", "events": ["job.routed"]},
        headers=tenant.auth,
    )
    assert metadata.status_code == 422
    created = await http.post(
        "/v1/integration-webhooks",
        json={"url": "http://93.184.216.34/hooks", "events": ["job.completed"]},
        headers=tenant.auth,
    )
    assert created.status_code == 201 and created.json()["secret"].startswith("whsec_")
    other = await Tenant(http).login()
    hidden = await http.get(f"/v1/integration-webhooks/{created.json()['id']}", headers=other.auth)
    assert hidden.status_code == 404 and hidden.json()["code"] == "webhook_not_found"
    assert (await http.get("/v1/integration-webhooks", headers=other.auth)).json()["endpoints"] == []
    gone = await http.delete(f"/v1/integration-webhooks/{created.json()['id']}", headers=tenant.auth)
    assert gone.status_code == 204


def test_the_cli_creates_lists_and_deletes_an_organizations_endpoints(platform):
    import os
    import subprocess
    import sys

    from shared.testing.stack import NOTIFIER_ADMIN_URL, service_url
    from tests.conftest import routemate

    org = f"test-{uuid.uuid4().hex[:10]}"
    routemate("integration", "create", "--org", org)
    env = {**os.environ, "NOTIFIER_URL": service_url("notifier")}  # its admin listener: NOTIFIER_PORT+10
    public = httpx.get(f"{service_url('notifier')}/admin/v1/webhooks", params={"org_id": org}, timeout=10)
    assert public.status_code == 404  # the admin API is not on the public listener
    assert httpx.get(f"{NOTIFIER_ADMIN_URL}/admin/v1/webhooks", params={"org_id": org}, timeout=10).status_code == 401

    def cli(*args: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "routemate_cli.main", "webhook", *args], capture_output=True, text=True, env=env
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    created = cli("create", "--org", org, "--url", "https://93.184.216.34/hooks", "--event", "job.completed")
    assert created["secret"].startswith("whsec_") and created["events"] == ["job.completed"]
    assert [e["id"] for e in cli("list", "--org", org)["endpoints"]] == [created["id"]]
    cli("delete", "--org", org, created["id"])
    assert cli("list", "--org", org)["endpoints"] == []
