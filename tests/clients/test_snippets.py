"""The docs' three quick starts (curl, fetch, requests) run unchanged against the platform."""

import os
import subprocess
import sys
import uuid

import pytest

from tests.conftest import EDGE, ROOT, routemate

SNIPPETS = ROOT / "docs/snippets"
RUNNERS = {
    "curl.sh": ["bash"],
    "fetch.mjs": ["node"],
    "requests_example.py": [sys.executable],
}


@pytest.mark.parametrize("snippet", list(RUNNERS))
def test_the_snippet_runs_unchanged(platform, snippet):
    creds = routemate("integration", "create", "--org", f"snippet-{uuid.uuid4().hex[:8]}", "--name", snippet)
    env = {
        **os.environ,
        "ROUTEMATE_BASE_URL": EDGE,
        "ROUTEMATE_CLIENT_ID": creds["client_id"],
        "ROUTEMATE_CLIENT_SECRET": creds["client_secret"],
    }
    done = subprocess.run(
        [*RUNNERS[snippet], str(SNIPPETS / snippet)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "job_" in done.stdout and "STOP-1" in done.stdout, done.stdout
    assert "unassigned" in done.stdout, done.stdout  # routed; its driver is not registered in this organization
