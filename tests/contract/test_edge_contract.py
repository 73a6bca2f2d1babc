"""What the edge publishes: /v1/openapi.json (the document the services generate), real answers
that fit it, the /docs page with its assets served locally, and CORS for listed origins only."""

import os
import subprocess
import time

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate

from routemate_cli.contract import openapi
from tests.conftest import ROOT, Tenant


@pytest.fixture(scope="module")
def served(platform) -> dict:
    answer = httpx.get(f"{platform}/v1/openapi.json", timeout=10)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    return answer.json()


def fits(document: dict, schema_name: str, body) -> None:
    """`body` validates against a component of `document` (refs resolved inside it)."""
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)


def test_the_edge_serves_the_generated_document(served):
    validate(served)
    assert served == openapi.build()


async def test_real_answers_fit_the_document(served, http: httpx.AsyncClient, tenant: Tenant):
    token = await http.post(
        "/v1/integration-token",
        json={"client_id": tenant.creds["client_id"], "client_secret": tenant.creds["client_secret"]},
    )
    fits(served, "TokenResponse", token.json())
    imported = await tenant.import_job()
    assert imported.status_code == 201
    job = imported.json()
    fits(served, "Job", job)
    documented = served["components"]["schemas"]
    assert set(job) <= set(documented["Job"]["properties"]), set(job) - set(documented["Job"]["properties"])
    assert set(job["stops"][0]) <= set(documented["Stop"]["properties"])
    fits(served, "Job", (await tenant.get_job(job["job_id"])).json())
    page = await http.get("/v1/integration-jobs", params={"limit": 1}, headers=tenant.auth)
    fits(served, "JobPage", page.json())
    accepted = await tenant.import_job(tenant.job(), Prefer="respond-async")
    assert accepted.status_code == 202
    fits(served, "ImportAccepted", accepted.json())
    stop = job["stops"][0]["external_stop_id"]
    update = await http.post(
        f"/v1/integration-jobs/{job['job_id']}/stops/{stop}/status", json={"status": "completed"}, headers=tenant.auth
    )
    fits(served, "StopStatusAccepted", update.json())
    for problem in (
        await tenant.get_job("job_missing"),
        await tenant.import_job({"external_job_id": "x", "title": "x", "stops": []}),
    ):
        assert problem.headers["content-type"] == "application/problem+json"
        fits(served, "Problem", problem.json())


def test_the_docs_page_renders_the_document_from_local_assets(platform):
    page = httpx.get(f"{platform}/docs", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    for asset, kind in (
        ("/docs/assets/swagger-ui-bundle.js", "javascript"),
        ("/docs/assets/swagger-ui.css", "text/css"),
        ("/docs/start.js", "javascript"),
    ):
        assert asset in page.text
        answer = httpx.get(f"{platform}{asset}", timeout=10)
        assert answer.status_code == 200 and kind in answer.headers["content-type"], asset
    assert "SwaggerUIBundle" in httpx.get(f"{platform}/docs/assets/swagger-ui-bundle.js", timeout=10).text
    assert '"/v1/openapi.json"' in httpx.get(f"{platform}/docs/start.js", timeout=10).text


def edge_with(origins: str | None) -> None:
    """Re-render the edge with CORS_ALLOWED_ORIGINS (or without it), as an operator would."""
    env = {k: v for k, v in os.environ.items() if k != "CORS_ALLOWED_ORIGINS"}
    if origins is not None:
        env["CORS_ALLOWED_ORIGINS"] = origins
    subprocess.run(
        ["bash", str(ROOT / "deploy/local/platform.sh"), "up"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )


def preflight(base: str, origin: str, path: str = "/v1/integration-import") -> httpx.Response:
    return httpx.options(
        f"{base}{path}",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
        timeout=10,
    )


def eventually(check, seconds: float = 10):
    """nginx reloads gracefully: old workers may answer a moment longer."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def reloaded(check, seconds: float = 15, in_a_row: int = 10) -> bool:
    """Whether the edge's new configuration is in place: nginx reloads gracefully, and an old worker
    may still take a fresh connection for a moment after a new one answered (a later request of the
    test then met the old configuration once in CI), so `in_a_row` fresh requests must all see it."""
    return bool(eventually(lambda: all(check() for _ in range(in_a_row)), seconds))


def test_cors_is_off_by_default_and_allows_only_the_listed_origins(platform):
    shop, other = "https://shop.example.com", "https://evil.example.net"
    edge_with(None)
    refused = preflight(platform, shop)
    assert refused.status_code == 204 and "access-control-allow-origin" not in refused.headers
    try:
        edge_with(f"{shop}, https://admin.example.com")
        assert reloaded(lambda: preflight(platform, shop).headers.get("access-control-allow-origin") == shop)
        allowed = preflight(platform, shop)
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == shop
        assert "POST" in allowed.headers["access-control-allow-methods"]
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        assert "origin" in allowed.headers["vary"].lower()
        assert "access-control-allow-origin" not in preflight(platform, other).headers
        for path in ("/v1/integration-token", "/v1/integration-jobs", "/v1/openapi.json"):
            assert preflight(platform, shop, path).headers["access-control-allow-origin"] == shop, path
        actual = httpx.get(f"{platform}/v1/integration-jobs", headers={"Origin": shop}, timeout=10)
        assert actual.status_code == 401 and actual.headers["access-control-allow-origin"] == shop
        assert "retry-after" in actual.headers["access-control-expose-headers"].lower()
        assert (
            "access-control-allow-origin"
            not in httpx.get(f"{platform}/v1/integration-jobs", headers={"Origin": other}, timeout=10).headers
        )
    finally:
        edge_with(None)
    assert reloaded(lambda: "access-control-allow-origin" not in preflight(platform, shop).headers)
