"""HTTP edge of the ingest gateway: POST /v1/integration-import."""

import asyncio
import json
import logging
import time
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from redis.exceptions import RedisError

from services.ingest import handlers
from services.ingest.adapters import Outcomes, RateLimiter, Reservations
from services.ingest.models import ImportIn
from services.ingest.settings import IngestSettings
from shared import logs
from shared.broker import EventBus
from shared.errors import Problem
from shared.events import ImportRequested
from shared.http import read_body
from shared.tokens import CurrentIntegration, Principal

log = logging.getLogger(__name__)
router = APIRouter()
RATE_LIMITED = Counter("routemate_rate_limited_total", "Imports refused by the per-integration rate limit")

SETTLED = {"assigned", "unassigned", "in_progress", "completed", "failed"}
JSON_TYPES = ("application/json",)


def _unavailable(what: str) -> Problem:
    return Problem(
        503,
        "dependency_unavailable",
        f"{what} is unavailable; nothing was accepted, retry shortly.",
        headers={"Retry-After": "5"},
    )


def _location(job_id: str) -> str:
    return f"/v1/integration-jobs/{job_id}"


def _accepted(job_id: str, external_job_id: str, status: str, replayed: bool, headers: dict[str, str]) -> JSONResponse:
    headers = {**headers, "Location": _location(job_id)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(
        {"job_id": job_id, "external_job_id": external_job_id, "status": status, "links": {"job": _location(job_id)}},
        status_code=202,
        headers=headers,
    )


def _settled(view: dict[str, Any], created: bool, replayed: bool, headers: dict[str, str]) -> JSONResponse:
    headers = {**headers, "Location": _location(view["job_id"])}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(view, status_code=201 if created else 200, headers=headers)


async def _rate_limit(request: Request, who: Principal) -> dict[str, str]:
    limiter: RateLimiter = request.app.state.limiter
    decision = await limiter.take(who.client_id)
    headers = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset_s),
    }
    if not decision.allowed:
        RATE_LIMITED.inc()
        raise Problem(
            429,
            "rate_limited",
            "Too many imports for this integration; slow down.",
            headers={**headers, "Retry-After": str(max(decision.retry_after_s, 1))},
        )
    return headers


async def _parse(request: Request, settings: IngestSettings) -> Any:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in JSON_TYPES:
        raise Problem(415, "unsupported_media_type", "Send the import as application/json.")
    body = await read_body(request, settings.max_body_bytes)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(400, "invalid_json", f"The request body is not valid JSON: {exc}.") from None


async def _current_view(request: Request, job_id: str) -> dict[str, Any] | None:
    """The job as the status service has it now (with the caller's own token), or None."""
    client: httpx.AsyncClient = request.app.state.status_client
    try:
        answer = await client.get(
            f"/v1/integration-jobs/{job_id}", headers={"Authorization": request.headers.get("authorization", "")}
        )
    except httpx.HTTPError:
        return None
    return answer.json() if answer.status_code == 200 else None


@router.post(
    "/v1/integration-import",
    status_code=201,
    tags=["ingest"],
    summary="Import a delivery job; answers with its optimized route",
    responses={202: {}, 400: {}, 401: {}, 409: {}, 413: {}, 415: {}, 422: {}, 429: {}, 503: {}},
)
async def import_job(request: Request, who: CurrentIntegration) -> JSONResponse:
    """Validate, reserve the external id, publish `ImportRequested`, then wait (bounded) for the route."""
    settings: IngestSettings = request.app.state.settings
    try:
        headers = await _rate_limit(request, who)
    except (RedisError, OSError):
        raise _unavailable("The rate limiter") from None
    model, warnings = handlers.parse_import(await _parse(request, settings), settings.max_stops)
    digest = handlers.payload_hash(model)
    respond_async = "respond-async" in request.headers.get("prefer", "").lower()
    try:
        return await _import(request, who, model, warnings, digest, respond_async, headers)
    except (RedisError, OSError):
        raise _unavailable("The idempotency store") from None


async def _import(
    request: Request,
    who: Principal,
    model: ImportIn,
    warnings: list,
    digest: str,
    respond_async: bool,
    headers: dict[str, str],
) -> JSONResponse:
    settings: IngestSettings = request.app.state.settings
    reservations: Reservations = request.app.state.reservations
    outcomes: Outcomes = request.app.state.outcomes
    key = Reservations.key(who.org_id, model.external_job_id)
    job_id = handlers.new_job_id()
    existing = await reservations.reserve(key, job_id, digest)
    deadline = time.time() + settings.publish_timeout_seconds + 2
    while existing is not None and existing.payload_hash == digest and not existing.accepted:
        if time.time() - existing.since > settings.publish_timeout_seconds + 2:
            job_id = existing.job_id  # its publisher failed or died: publish again under its job_id
            await reservations.take_over(key, job_id, digest)
            existing = None
            break
        if time.time() > deadline:
            break
        await asyncio.sleep(0.05)  # a concurrent duplicate is publishing: wait for its answer
        existing = await reservations.get(key)
        if existing is None:
            existing = await reservations.reserve(key, job_id, digest)
    if existing is not None:
        if existing.payload_hash != digest:
            raise Problem(
                409,
                "idempotency_conflict",
                f"external_job_id {model.external_job_id!r} was already imported with a different "
                "body; use a new external_job_id to import a different job.",
                job_id=existing.job_id,
                external_job_id=model.external_job_id,
            )
        return await _replay(request, existing.job_id, model.external_job_id, respond_async, headers)

    logs.job_id.set(job_id)
    future = outcomes.expect(job_id)
    event = ImportRequested(
        org_id=who.org_id,
        job_id=job_id,
        integration_id=who.client_id,
        correlation_id=logs.correlation_id.get(),
        job=handlers.job_spec(model, job_id, digest),
        warnings=tuple(warnings),
    )
    bus: EventBus = request.app.state.bus
    try:
        await asyncio.wait_for(bus.publish(event), settings.publish_timeout_seconds)
    except Exception as exc:  # noqa: BLE001 - any publish failure means: not accepted
        outcomes.forget(job_id, future)
        await reservations.publish_failed(key, job_id, digest)
        log.warning("import not accepted, Kafka did not acknowledge: %s", type(exc).__name__)
        raise _unavailable("The event broker") from None
    await reservations.accept(key, job_id, digest)
    log.info("import accepted with %d stops", len(model.stops))
    if respond_async:
        outcomes.forget(job_id, future)
        return _accepted(job_id, model.external_job_id, "pending", False, headers)
    outcome = await outcomes.wait(job_id, future, settings.ingest_wait_seconds)
    if outcome is None:
        return _accepted(job_id, model.external_job_id, "processing", False, headers)
    return _settled(outcome["job"], True, False, headers)


async def _replay(
    request: Request, job_id: str, external_job_id: str, respond_async: bool, headers: dict[str, str]
) -> JSONResponse:
    """The same import again: the same job and its current state, never a second job."""
    settings: IngestSettings = request.app.state.settings
    outcomes: Outcomes = request.app.state.outcomes
    future = outcomes.expect(job_id)
    view = await _current_view(request, job_id)
    if view and view.get("status") in SETTLED:
        outcomes.forget(job_id, future)
        return _settled(view, False, True, headers)
    if respond_async:
        outcomes.forget(job_id, future)
        return _accepted(job_id, external_job_id, (view or {}).get("status", "pending"), True, headers)
    outcome = await outcomes.wait(job_id, future, settings.ingest_wait_seconds)
    if outcome is None:
        return _accepted(job_id, external_job_id, "processing", True, headers)
    return _settled(outcome["job"], False, True, headers)
