"""CORS as a browser sees it: a page on a listed origin gets a token and imports a job with fetch
(JSON bodies and a bearer header, so every call is preflighted); a page on any other origin is
refused by the browser."""

import functools
import http.server
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import EXAMPLE, routemate
from tests.contract.test_docs_browser import browser  # noqa: F401 - the Chromium fixture
from tests.contract.test_edge_contract import edge_with, eventually, preflight

CALL_THE_API = """
const [base, clientId, clientSecret, job, done] = arguments;
(async () => {
  const token = await fetch(base + "/v1/integration-token", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({client_id: clientId, client_secret: clientSecret}),
  });
  const {access_token} = await token.json();
  const imported = await fetch(base + "/v1/integration-import", {
    method: "POST", headers: {"Content-Type": "application/json", Authorization: "Bearer " + access_token,
                              Prefer: "respond-async"},
    body: JSON.stringify(job),
  });
  done({token: token.status, import: imported.status, location: imported.headers.get("Location")});
})().catch((error) => done({error: String(error)}));
"""


@contextmanager
def origin(tmp_path) -> Iterator[str]:
    """An empty page served from its own port: an origin other than the edge's."""
    (tmp_path / "index.html").write_text("<!doctype html><title>integrator</title>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def call_from(browser, page: str, edge: str, creds: dict) -> dict:  # noqa: F811
    browser.get(page + "/")
    browser.set_script_timeout(60)
    job = {**EXAMPLE, "external_job_id": f"CORS-{uuid.uuid4().hex[:10]}"}
    return browser.execute_async_script(CALL_THE_API, edge, creds["client_id"], creds["client_secret"], job)


def test_a_listed_origin_calls_the_api_and_another_is_refused(platform, browser, tmp_path):  # noqa: F811
    creds = routemate("integration", "create", "--org", f"cors-{uuid.uuid4().hex[:8]}", "--name", "browser")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with origin(tmp_path / "a") as listed, origin(tmp_path / "b") as other:
        try:
            edge_with(listed)
            assert eventually(lambda: preflight(platform, listed).headers.get("access-control-allow-origin"))
            # The browser's own connections too: one kept alive to an old nginx worker is answered
            # with the old configuration (no CORS) until that worker lets it go (seen once in CI).
            answers: list[dict] = []

            def went_through() -> bool:
                answers.append(call_from(browser, listed, platform, creds))
                return "error" not in answers[-1]

            eventually(went_through)
            answer = answers[-1]
            assert answer.get("token") == 200 and answer.get("import") == 202, answer
            assert re.fullmatch(r"/v1/integration-jobs/[0-9a-f-]{36}", answer["location"])  # an exposed header
            refused = call_from(browser, other, platform, creds)
            assert "error" in refused and "Failed to fetch" in refused["error"], refused
        finally:
            edge_with(None)
