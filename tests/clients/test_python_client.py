"""The Python client as its users get it: pip-installed from clients/python into a fresh virtualenv,
then its own suite (clients/python/tests) run with that virtualenv's Python against the platform."""

import os
import subprocess
import sys
import uuid

from tests.conftest import EDGE, REDIS_URL, ROOT, routemate

CLIENT = ROOT / "clients/python"


def test_python_client_suite_passes_against_the_platform(platform, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    installed = subprocess.run([*pip, f"{CLIENT}[test]"], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr

    org = f"pyclient-{uuid.uuid4().hex[:8]}"
    creds = routemate("integration", "create", "--org", org, "--name", "python client")
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
    done = subprocess.run(
        [str(venv / "bin/python"), "-m", "pytest", "-q", "tests"],
        cwd=CLIENT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(done.stdout[-6000:])
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
