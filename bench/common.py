"""Helpers the benchmarks share: processes on loopback, the CLI, latency percentiles."""

import json
import os
import platform
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from shared.testing.processes import start_service
from shared.testing.stack import EDGE

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")


def start(module: str, port: int, **env: str) -> subprocess.Popen:
    """A service process on loopback; returns once its /healthz answers."""
    return start_service(module, port, seconds=20, **env)


def tenant() -> tuple[str, str]:
    """A fresh organization with an integration and a driver; returns (token, driver email)."""
    org = f"bench-{uuid.uuid4().hex[:8]}"

    def run(*args: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "routemate_cli.main", *args], cwd=ROOT, capture_output=True, text=True, check=True
        )
        return json.loads(done.stdout)

    creds = run("integration", "create", "--org", org)
    run("driver", "add", "--org", org, "--email", "bench@example.com")
    token = httpx.post(
        f"{EDGE}/v1/integration-token", json={"client_id": creds["client_id"], "client_secret": creds["client_secret"]}
    ).json()
    return token["access_token"], "bench@example.com"


def example_job(stops: int = 8) -> dict:
    job = json.loads((ROOT / "deploy/examples/brisbane-job.json").read_text())
    base = job["stops"]
    job["stops"] = [dict(base[i % len(base)], external_stop_id=f"S{i}") for i in range(stops)]
    return job
