"""A real Prometheus scrapes the running services and evaluates our rules while jobs flow."""

import asyncio
import shutil
import subprocess

import httpx
import yaml

from shared.testing.stack import PROMETHEUS_PORT, SERVICE_PORTS
from tests.conftest import ROOT, Tenant

PROM = f"http://127.0.0.1:{PROMETHEUS_PORT}"


async def query(http: httpx.AsyncClient, expr: str) -> list[dict]:
    answer = await http.get(f"{PROM}/api/v1/query", params={"query": expr})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]["result"]


async def test_prometheus_sees_the_pipeline_move(tenant: Tenant, tmp_path):
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    for target in config["scrape_configs"][0]["static_configs"]:  # the platform under test, wherever it listens
        target["targets"] = [f"127.0.0.1:{SERVICE_PORTS[target['labels']['service']]}"]
    shutil.copy(ROOT / "deploy/prometheus/routemate-rules.yml", tmp_path / "routemate-rules.yml")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            for _ in range(100):
                try:
                    if (await http.get(f"{PROM}/-/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
            for _ in range(60):  # service discovery hands the targets over after a few seconds
                targets = (await http.get(f"{PROM}/api/v1/targets")).json()["data"]["activeTargets"]
                if len(targets) == 7 and all(t["health"] == "up" for t in targets):
                    break
                await asyncio.sleep(0.5)
            assert sorted(t["labels"]["service"] for t in targets if t["health"] == "up") == [
                "auth",
                "console",
                "geocoder",
                "ingest",
                "notifier",
                "optimizer",
                "status",
            ]
            before = await query(http, 'sum(routemate_events_consumed_total{service="optimizer",outcome="ok"})')
            start = float(before[0]["value"][1]) if before else 0.0
            for _ in range(3):
                assert (await tenant.import_job()).status_code == 201
            moved = False
            for _ in range(40):
                await asyncio.sleep(0.5)
                after = await query(http, 'sum(routemate_events_consumed_total{service="optimizer",outcome="ok"})')
                if after and float(after[0]["value"][1]) >= start + 3:
                    moved = True
                    break
            assert moved, "the optimizer's consumed-events counter did not move in Prometheus"
            for _ in range(30):  # a recording rule, evaluated every second on what was scraped
                recorded = await query(http, 'routemate:events_consumed:rate1m{service="optimizer"}')
                if recorded and float(recorded[0]["value"][1]) > 0:
                    break
                await asyncio.sleep(0.5)
            assert recorded and float(recorded[0]["value"][1]) > 0
            latency = await query(http, 'sum(routemate_job_end_to_end_seconds_count{service="status"})')
            assert latency and float(latency[0]["value"][1]) > 0
            imports = await query(http, 'routemate_http_requests_total{route="/v1/integration-import",status="201"}')
            assert imports and float(imports[0]["value"][1]) >= 3
            rules = (await http.get(f"{PROM}/api/v1/rules")).json()["data"]["groups"]
            assert {g["name"] for g in rules} == {"routemate-recording", "routemate-alerts"}
            assert all(r["health"] == "ok" for g in rules for r in g["rules"])
    finally:
        proc.terminate()
        proc.wait(10)
