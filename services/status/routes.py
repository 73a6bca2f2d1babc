"""HTTP edge of the status service: the jobs endpoint and stop status updates."""

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.status.queries import BadCursor, JobFilter, JobQueries
from services.status.views import job_view
from shared import logs
from shared.broker import EventBus
from shared.errors import Problem
from shared.events import StopStatusChanged, utcnow
from shared.events.stops import ProofOfDelivery
from shared.tokens import CurrentIntegration

router = APIRouter(tags=["status"])
JobStatus = Literal["pending", "processing", "assigned", "unassigned", "in_progress", "completed", "failed"]


def _not_found(what: str) -> Problem:
    return Problem(404, "job_not_found", f"No {what} for this organization.")


def _queries(request: Request) -> JobQueries:
    return request.app.state.queries


@router.get("/v1/integration-jobs", summary="One job by id, or the organization's jobs, newest first")
async def list_jobs(
    request: Request,
    who: CurrentIntegration,
    job_id: Annotated[str | None, Query(max_length=100)] = None,
    external_job_id: Annotated[str | None, Query(max_length=200)] = None,
    status: JobStatus | None = None,
    updated_since: datetime | None = None,
    driver_email: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> dict[str, Any]:
    queries = _queries(request)
    if job_id or external_job_id:
        found = await asyncio.to_thread(queries.job, who.org_id, job_id=job_id, external_job_id=external_job_id)
        if found is None:
            raise _not_found("such job")
        return job_view(*found)
    settings = request.app.state.settings
    size = min(limit or settings.page_size_default, settings.page_size_max)
    if updated_since is not None and updated_since.tzinfo is None:
        raise Problem(
            422,
            "validation_failed",
            "updated_since needs a UTC offset.",
            errors=[{"pointer": "?updated_since", "reason": "missing UTC offset", "type": "timezone"}],
        )
    try:
        rows, next_cursor = await asyncio.to_thread(
            queries.page, who.org_id, JobFilter(status, updated_since, driver_email), size, cursor
        )
    except BadCursor as exc:
        raise Problem(400, "invalid_cursor", str(exc)) from None
    return {"jobs": [job_view(job, stops) for job, stops in rows], "next_cursor": next_cursor}


@router.get("/v1/integration-jobs/{job_id}", summary="One job with its stops in route order")
async def get_job(
    job_id: Annotated[str, Field(max_length=100)], request: Request, who: CurrentIntegration
) -> dict[str, Any]:
    found = await asyncio.to_thread(_queries(request).job, who.org_id, job_id=job_id)
    if found is None:
        raise _not_found("such job")
    return job_view(*found)


class StopStatusIn(BaseModel):
    status: Literal["completed", "failed", "skipped"]
    occurred_at: datetime | None = None
    reason: Annotated[str, Field(max_length=500)] | None = None
    notes: Annotated[str, Field(max_length=2000)] | None = None
    recipient_name: Annotated[str, Field(max_length=200)] | None = None
    signature_url: Annotated[str, Field(max_length=2000, pattern=r"^https?://")] | None = None
    photo_urls: Annotated[
        list[Annotated[str, Field(max_length=2000, pattern=r"^https?://")]], Field(max_length=20)
    ] = []


@router.post(
    "/v1/integration-jobs/{job_id}/stops/{external_stop_id}/status",
    status_code=202,
    summary="Record the delivery outcome of one stop",
)
async def record_stop_status(
    job_id: Annotated[str, Field(max_length=100)],
    external_stop_id: Annotated[str, Field(max_length=200)],
    body: StopStatusIn,
    request: Request,
    who: CurrentIntegration,
) -> JSONResponse:
    found = await asyncio.to_thread(_queries(request).job, who.org_id, job_id=job_id)
    if found is None:
        raise _not_found("such job")
    job, stops = found
    stop = next((s for s in stops if s.external_stop_id == external_stop_id), None)
    if stop is None:
        raise Problem(404, "stop_not_found", f"Job {job_id} has no stop {external_stop_id!r}.")
    if job.status in ("pending", "processing", "failed"):
        raise Problem(
            409, "illegal_transition", f"The job is {job.status}; its stops cannot be updated.", job_status=job.status
        )
    if stop.status == "unroutable":
        raise Problem(409, "illegal_transition", "The stop is not on the route.", stop_status=stop.status)
    occurred = body.occurred_at or utcnow()
    if occurred.tzinfo is None:
        raise Problem(
            422,
            "validation_failed",
            "occurred_at needs a UTC offset.",
            errors=[{"pointer": "/occurred_at", "reason": "missing UTC offset", "type": "timezone"}],
        )
    proof = None
    if body.recipient_name or body.signature_url or body.photo_urls:
        proof = ProofOfDelivery(
            recipient_name=body.recipient_name, signature_url=body.signature_url, photo_urls=tuple(body.photo_urls)
        )
    event = StopStatusChanged(
        org_id=who.org_id,
        job_id=job_id,
        stop_id=stop.stop_id,
        external_stop_id=external_stop_id,
        status=body.status,
        status_at=occurred,
        reason=body.reason,
        notes=body.notes,
        proof=proof,
        correlation_id=logs.correlation_id.get(),
    )
    bus: EventBus = request.app.state.bus
    try:
        await asyncio.wait_for(bus.publish(event), 10)
    except Exception:  # noqa: BLE001 - nothing recorded unless Kafka acknowledged it
        raise Problem(
            503,
            "dependency_unavailable",
            "The update could not be recorded; retry shortly.",
            headers={"Retry-After": "5"},
        ) from None
    return JSONResponse(
        {
            "job_id": job_id,
            "external_stop_id": external_stop_id,
            "status": body.status,
            "status_at": occurred.isoformat(),
            "event_id": str(event.event_id),
        },
        status_code=202,
        headers={"Location": f"/v1/integration-jobs/{job_id}"},
    )
