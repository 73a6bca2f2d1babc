"""HTTP edge of the changes the status service takes: cancel a job, re-plan its remaining stops."""

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field

from services.status import changes, erasing
from services.status.handlers import Publish
from services.status.routes import PUBLISH_SECONDS, JobId, Queries, UpdateAdmitted
from shared import logs
from shared.http import publish_or_unavailable
from shared.inputs import SafeText
from shared.tokens import CurrentIntegration

router = APIRouter(tags=["status"])
IfMatch = Annotated[str | None, Header(max_length=2000)]
CHANGE_ERRORS = {400: {}, 401: {}, 404: {}, 409: {}, 412: {}, 422: {}, 503: {}}


def _publish(request: Request) -> Publish:
    bus = request.app.state.bus
    return lambda event: publish_or_unavailable(bus, event, PUBLISH_SECONDS, "The change to the job")


Publisher = Annotated[Publish, Depends(_publish)]


def _location(job_id: str) -> dict[str, str]:
    return {"Location": f"/v1/integration-jobs/{job_id}"}


class CancelIn(BaseModel):
    reason: SafeText(500) | None = None


@router.post(
    "/v1/integration-jobs/{job_id}/cancel",
    status_code=202,
    summary="Cancel a job: it becomes cancelled, its pending stops too",
    responses={200: {"description": "Cancelled already: the same answer again"}, **CHANGE_ERRORS},
)
async def cancel_job(
    job_id: JobId,
    queries: Queries,
    publish: Publisher,
    who: CurrentIntegration,
    body: Annotated[CancelIn | None, Body()] = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    reason = body.reason if body else None
    done = await changes.cancel_job(queries, publish, who.org_id, job_id, reason, if_match, logs.correlation_id.get())
    return JSONResponse(done.body, status_code=200 if done.replayed else 202, headers=_location(job_id))


class LatLng(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)


class ReplanIn(BaseModel):
    current_location: LatLng | None = None
    at: AwareDatetime | None = None


@router.post(
    "/v1/integration-jobs/{job_id}/reoptimize",
    status_code=202,
    summary="Re-order the remaining stops of a started route from where the driver is",
    responses=CHANGE_ERRORS,
)
async def reoptimize_job(
    job_id: JobId,
    queries: Queries,
    publish: Publisher,
    who: CurrentIntegration,
    body: Annotated[ReplanIn | None, Body()] = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    body = body or ReplanIn()
    here = (body.current_location.lat, body.current_location.lng) if body.current_location else None
    replan = changes.Replan(current_location=here, at=body.at)
    event = await changes.replan_job(queries, publish, who.org_id, job_id, replan, if_match, logs.correlation_id.get())
    answer = {
        "job_id": job_id,
        "event_id": str(event.event_id),
        "remaining_stops": len(event.stops),
        "start": event.start.model_dump() if event.start else None,
        "start_time": event.start_time.isoformat().replace("+00:00", "Z"),
        "links": {"job": _location(job_id)["Location"]},
    }
    return JSONResponse(answer, status_code=202, headers=_location(job_id))


def _eraser(request: Request) -> erasing.Eraser:
    return request.app.state.eraser


@router.delete(
    "/v1/integration-jobs/{job_id}",
    status_code=204,
    summary="Erase a job: it disappears, and its personal data is unreadable everywhere, also in the event log",
    responses={204: {"description": "Erased (now, or before: the request is idempotent)"}, 401: {}, 404: {}, 503: {}},
)
async def erase_job(
    job_id: JobId,
    admitted: UpdateAdmitted,
    eraser: Annotated[erasing.Eraser, Depends(_eraser)],
    who: CurrentIntegration,
) -> Response:
    """The job's data key is destroyed, its rows, cache entries and pending webhooks deleted."""
    await erasing.erase_job(eraser, who.org_id, job_id, "request", logs.correlation_id.get())
    return Response(status_code=204, headers=admitted)
