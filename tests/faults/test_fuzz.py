"""Schemathesis against every public endpoint's OpenAPI, through the edge proxy, with a valid token:
no 5xx, and every 4xx in its documented error shape."""

import json
import os
import re
import subprocess
import sys

import httpx
import pytest

from shared.testing.builders import at
from shared.testing.stack import SERVICE_PORTS
from tests.conftest import ROOT, Tenant


@pytest.mark.parametrize("service, port", [(s, SERVICE_PORTS[s]) for s in ("auth", "ingest", "status", "notifier")])
def test_generated_requests_never_get_a_server_error(service: str, port: int, tenant: Tenant, platform):
    workdir = ROOT / "var" / "schemathesis"
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz_checks", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"http://127.0.0.1:{port}/openapi.json",
            "--url",
            platform,
            "-H",
            f"Authorization: Bearer {tenant.token}",
            "--include-path-regex",
            "^/v1/",
            "-c",
            "not_a_server_error,errors_are_problem_json",
            "-n",
            "50",
            "--max-time",
            "60",
            "--generation-deterministic",
            "--phases",
            "examples,coverage,fuzzing",
        ],
        cwd=workdir,  # schemathesis keeps its cache in the working directory: run state lives under var/
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    output = done.stdout + done.stderr
    cases = re.findall(r"(\d+) generated", output)
    print(f"{service}: {cases[-1] if cases else '?'} generated cases")
    assert done.returncode == 0, output[-4000:]


FAR = ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "1970-01-01T00:00:00+14:00")
DATE_FIELDS = {"start_time", "start", "end", "occurred_at"}


def leaves(value, path=()):
    """(path, value) of every string leaf of a JSON body."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, (*path, index))
    elif isinstance(value, str):
        yield path, value


def replaced(body, path, new):
    copy = json.loads(json.dumps(body))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


def hostile(body: dict) -> list[bytes]:
    """The shapes that used to reach a 500 or poison a consumer: a NUL in every string, times
    far from now in every time field, and nesting deep enough to exhaust a recursive parser."""
    shapes = [json.dumps(replaced(body, path, value + "\u0000")) for path, value in leaves(body)]
    shapes += [
        json.dumps(replaced(body, path, far)) for path, _ in leaves(body) if path[-1] in DATE_FIELDS for far in FAR
    ]
    deep = "[" * 5000 + "]" * 5000
    shapes += [json.dumps({**body, "extra": "DEEP"}).replace('"DEEP"', deep), deep]
    return [s.encode() for s in shapes]


async def test_hostile_shapes_never_get_a_server_error(http: httpx.AsyncClient, tenant: Tenant):
    job = (await tenant.import_job()).json()
    stop = job["stops"][0]["external_stop_id"]
    creds = {"client_id": tenant.creds["client_id"], "client_secret": tenant.creds["client_secret"]}
    import_body = tenant.job(start_time=at(), stops=tenant.job()["stops"][:2])
    import_body["stops"][0]["time_window"] = {"start": at(1), "end": at(2)}
    targets = [
        ("/v1/integration-token", creds, {}),
        ("/v1/integration-import", import_body, {**tenant.auth, "Prefer": "respond-async"}),
        (
            f"/v1/integration-jobs/{job['job_id']}/stops/{stop}/status",
            {"status": "failed", "reason": "r", "notes": "n", "occurred_at": at(-30, day=0)},
            tenant.auth,
        ),
    ]
    sent = 0
    for url, body, headers in targets:
        for raw in hostile(body):
            answer = await http.post(url, content=raw, headers={**headers, "Content-Type": "application/json"})
            sent += 1
            assert answer.status_code < 500, (url, raw[:200], answer.text[:300])
            assert answer.headers["content-type"].startswith(("application/problem+json", "application/json"))
    for name in ("cursor", "job_id", "external_job_id", "driver_email", "status", "updated_since"):
        for value in ("%00", "a%00b", *FAR):
            answer = await http.get(f"/v1/integration-jobs?{name}={value}", headers=tenant.auth)
            sent += 1
            assert answer.status_code < 500, (name, value, answer.text[:300])
    print(f"{sent} hostile requests, no server error")
