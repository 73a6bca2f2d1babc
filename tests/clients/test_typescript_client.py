"""The TypeScript client: installed from its lock file, built with tsc, and its own suite
(clients/typescript/test, Node's test runner) run against the platform."""

import os
import subprocess
import sys
import uuid

from tests.conftest import EDGE, REDIS_URL, ROOT, routemate

CLIENT = ROOT / "clients/typescript"


def npm(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["npm", *args], cwd=CLIENT, env=env, capture_output=True, text=True, timeout=timeout)


def test_typescript_client_builds_and_its_suite_passes_against_the_platform(platform):
    installed = npm("ci", "--ignore-scripts", "--no-audit", "--no-fund")
    assert installed.returncode == 0, installed.stderr
    built = npm("run", "build")
    assert built.returncode == 0, built.stdout + built.stderr

    org = f"tsclient-{uuid.uuid4().hex[:8]}"
    creds = routemate("integration", "create", "--org", org, "--name", "typescript client")
    driver = f"driver-{uuid.uuid4().hex[:6]}@example.com"
    routemate("driver", "add", "--org", org, "--email", driver, "--name", "Dana")
    env = {
        **os.environ,
        "ROUTEMATE_BASE_URL": EDGE,
        "ROUTEMATE_CLIENT_ID": creds["client_id"],
        "ROUTEMATE_CLIENT_SECRET": creds["client_secret"],
        "ROUTEMATE_DRIVER_EMAIL": driver,
        "REDIS_URL": REDIS_URL,
        "ROUTEMATE_ROOT": str(ROOT),
        "ROUTEMATE_PYTHON": sys.executable,
    }
    tested = npm("test", env=env, timeout=900)
    print(tested.stdout[-6000:])
    assert tested.returncode == 0, tested.stdout[-8000:] + tested.stderr[-2000:]
