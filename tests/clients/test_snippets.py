"""The docs' three quick starts (curl, fetch, requests) run unchanged against the platform, over
plain http and over https with the local CA trusted the standard way: environment variables each
runtime reads (curl: CURL_CA_BUNDLE; Python's ssl: SSL_CERT_FILE; requests: REQUESTS_CA_BUNDLE;
Node: NODE_EXTRA_CA_CERTS), never by turning verification off or editing a snippet."""

import os
import re
import subprocess
import sys
import uuid

import pytest

from shared.testing.stack import EDGE_TLS, TLS_CA
from tests.conftest import EDGE, ROOT, routemate

SNIPPETS = ROOT / "docs/snippets"
RUNNERS = {
    "curl.sh": ["bash"],
    "fetch.mjs": ["node"],
    "requests_example.py": [sys.executable],
}


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("snippet", list(RUNNERS))
def test_the_snippet_runs_unchanged(platform, snippet, scheme):
    creds = routemate("integration", "create", "--org", f"snippet-{uuid.uuid4().hex[:8]}", "--name", snippet)
    env = {
        **os.environ,
        "ROUTEMATE_BASE_URL": EDGE,
        "ROUTEMATE_CLIENT_ID": creds["client_id"],
        "ROUTEMATE_CLIENT_SECRET": creds["client_secret"],
    }
    if scheme == "https":
        ca = str(TLS_CA)
        env |= {
            "ROUTEMATE_BASE_URL": EDGE_TLS,
            "CURL_CA_BUNDLE": ca,
            "SSL_CERT_FILE": ca,
            "REQUESTS_CA_BUNDLE": ca,
            "NODE_EXTRA_CA_CERTS": ca,
        }
    done = subprocess.run(
        [*RUNNERS[snippet], str(SNIPPETS / snippet)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", done.stdout), done.stdout
    assert "STOP-1" in done.stdout, done.stdout
    assert "unassigned" in done.stdout, done.stdout  # routed; its driver is not registered in this organization
