"""The headers every service sets itself (for whoever reaches it without the edge), and no redirect
built from the client's Host header."""

import httpx
from fastapi import Response

from shared.service import service_app


def app_with_routes():
    app = service_app("probe")

    @app.get("/v1/integration-jobs")
    async def jobs() -> dict:
        return {"jobs": []}

    @app.get("/v1/integration-jobs/{job_id}")
    async def job(job_id: str, response: Response) -> dict:
        response.headers["ETag"] = '"v3"'
        response.headers["Cache-Control"] = "private, max-age=60"  # a route may not weaken no-store
        return {"job_id": job_id}

    return app


async def get(path: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app_with_routes())
    async with httpx.AsyncClient(transport=transport, base_url="http://routemate.test") as client:
        return await client.get(path, headers=headers)


async def test_personal_answers_are_no_store_and_nosniff_and_keep_their_etag():
    for path in ("/v1/integration-jobs", "/v1/integration-jobs/job_1", "/v1/nope", "/admin/v1/integrations"):
        answer = await get(path)
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers.get_list("cache-control") == ["no-store"], path
    assert (await get("/v1/integration-jobs/job_1")).headers["etag"] == '"v3"'


async def test_public_answers_are_nosniff_and_may_be_cached():
    answer = await get("/healthz")
    assert answer.status_code == 200 and answer.headers["x-content-type-options"] == "nosniff"
    assert "cache-control" not in answer.headers
    assert "cache-control" not in (await get("/openapi.json")).headers


async def test_a_trailing_slash_is_a_problem_404_not_a_redirect_to_the_callers_host():
    answer = await get("/v1/integration-jobs/", host="evil.example")
    assert answer.status_code == 404 and "location" not in answer.headers
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "not_found"
