"""HTTP edge of the ingest gateway: POST /v1/integration-import."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from services.ingest import handlers, updates
from services.ingest.settings import IngestSettings
from shared.errors import Problem
from shared.http import read_body
from shared.inputs import InvalidJson, parse_json
from shared.tokens import CurrentIntegration

router = APIRouter()
JSON_TYPES = ("application/json",)


# async, though they do not wait for anything: FastAPI runs a plain `def` dependency on a worker
# thread, two thread hand-offs per import for reading two attributes (bench/ingest_burst.py).
async def _settings(request: Request) -> IngestSettings:
    return request.app.state.settings


async def _dependencies(request: Request) -> handlers.ImportDependencies:
    return request.app.state.imports


async def _rate_limit(request: Request, who: CurrentIntegration) -> dict[str, str]:
    """Before the body is read: a client over its rate is refused without being heard out."""
    return await handlers.admit(request.app.state.limiter, who.client_id)


Settings = Annotated[IngestSettings, Depends(_settings)]
Imports = Annotated[handlers.ImportDependencies, Depends(_dependencies)]
RateLimitHeaders = Annotated[dict[str, str], Depends(_rate_limit)]


async def _json_body(request: Request, limit: int) -> Any:
    """The body as JSON, or a 415, 413 or 400 problem."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in JSON_TYPES:
        raise Problem(415, "unsupported_media_type", "Send the import as application/json.")
    body = await read_body(request, limit)
    try:
        return parse_json(body)
    except InvalidJson as exc:
        errors = [{"pointer": exc.pointer, "reason": exc.reason, "type": exc.code}]
        raise Problem(400, exc.code, exc.reason, errors=errors) from None


def _location(job_id: str) -> str:
    return f"/v1/integration-jobs/{job_id}"


def _response(answer: handlers.ImportAnswer, headers: dict[str, str]) -> JSONResponse:
    """201 with the route, 200 for a replayed one, 202 while the job has no outcome yet."""
    headers = {**headers, "Location": _location(answer.job_id)}
    if answer.replayed:
        headers["Idempotent-Replayed"] = "true"
    if isinstance(answer, handlers.Settled):
        if "version" in answer.view:
            headers["ETag"] = f'"{answer.view["version"]}"'
        status = 200 if answer.replayed or answer.updated else 201
        return JSONResponse(answer.view, status_code=status, headers=headers)
    body = {
        "job_id": answer.job_id,
        "external_job_id": answer.external_job_id,
        "status": answer.status,
        "links": {"job": _location(answer.job_id)},
    }
    return JSONResponse(body, status_code=202, headers=headers)


@router.post(
    "/v1/integration-import",
    status_code=201,
    tags=["ingest"],
    summary="Import a delivery job; answers with its optimized route",
    responses={200: {}, 202: {}, 400: {}, 401: {}, 409: {}, 412: {}, 413: {}, 415: {}, 422: {}, 429: {}, 503: {}},
)
async def import_job(
    request: Request,
    who: CurrentIntegration,
    rate_limit: RateLimitHeaders,
    settings: Settings,
    dependencies: Imports,
) -> JSONResponse:
    """Validate, reserve the external id, publish `ImportRequested`, then wait (bounded) for the route.

    A replay of the same import answers 200 with the job as it settled (its original answer,
    Stripe-style); the Location header points at the jobs endpoint for its current state.
    A changed body with `If-Match: "<version>"` updates the job (200), or answers 412 when stale.
    """
    body = await _json_body(request, settings.max_body_bytes)
    respond_async = "respond-async" in request.headers.get("prefer", "").lower()
    if_match = request.headers.get("if-match")
    command = handlers.ImportJob(who.org_id, who.client_id, body, respond_async, if_match)
    return _response(await updates.import_or_update(command, dependencies), rate_limit)
