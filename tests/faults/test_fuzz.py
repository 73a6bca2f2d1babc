"""Schemathesis against every public endpoint's OpenAPI, through the edge proxy, with a valid token:
no 5xx, and every 4xx in its documented error shape."""

import os
import re
import subprocess
import sys

import pytest

from shared.testing.stack import SERVICE_PORTS
from tests.conftest import ROOT, Tenant


@pytest.mark.parametrize("service, port", [(s, SERVICE_PORTS[s]) for s in ("auth", "ingest", "status")])
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
