"""HTTP edge of the status service: the jobs endpoint and stop status updates."""

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError

from services.status import handlers
from services.status.adapters.queries import FoundJob, JobFilter, JobQueries
from services.status.handlers import JobSearch, Page, PageSizes, Publish, StopReport
from services.status.views import etag, job_view
from shared import logs
from shared.errors import Problem, problem_response
from shared.events.stops import StopOutcome
from shared.http import etag_matches, publish_or_unavailable
from shared.inputs import SafeText
from shared.tokens import CurrentIntegration
from shared.vocabulary import JobStatus

router = APIRouter(tags=["status"])
log = logging.getLogger(__name__)
PUBLISH_SECONDS = 10  # nothing is recorded unless Kafka acknowledged it within this


def _queries(request: Request) -> JobQueries:
    return request.app.state.queries


def _page_sizes(request: Request) -> PageSizes:
    settings = request.app.state.settings
    return PageSizes(settings.page_size_default, settings.page_size_max, settings.max_page_bytes)


def _publish(request: Request) -> Publish:
    bus = request.app.state.bus
    return lambda event: publish_or_unavailable(bus, event, PUBLISH_SECONDS, "The stop update")


def _limited(kind: str):
    """A dependency taking one `kind` ("read" or "update") from the integration's bucket before
    anything else is done; its RateLimit-* headers go on the answer."""

    async def admit(request: Request, response: Response, who: CurrentIntegration) -> dict[str, str]:
        headers = await handlers.admit(request.app.state.limiters[kind], who.client_id, kind)
        response.headers.update(headers)
        return headers

    return admit


Queries = Annotated[JobQueries, Depends(_queries)]
ReadAdmitted = Annotated[dict[str, str], Depends(_limited("read"))]
UpdateAdmitted = Annotated[dict[str, str], Depends(_limited("update"))]
Sizes = Annotated[PageSizes, Depends(_page_sizes)]
Publisher = Annotated[Publish, Depends(_publish)]
JobId = Annotated[str, Field(max_length=100)]
IfNoneMatch = Annotated[str | None, Header(max_length=2000)]
# Jobs hold personal data: no cache stores them (the edge and the services' middleware say the
# same). A client that keeps a job itself revalidates with its ETag in If-None-Match: 304.
JOB_CACHING = "no-store"


def job_answer(found: FoundJob, if_none_match: str | None, limits: dict[str, str]) -> Response:
    """One job with its strong ETag (its version); 304 without a body when the client has it (RFC 9110)."""
    headers = {**limits, "ETag": etag(found[0]), "Cache-Control": JOB_CACHING}
    if etag_matches(if_none_match, headers["ETag"], weak=True):
        return Response(status_code=304, headers=headers)
    return JSONResponse(job_view(*found), headers=headers)


@router.get("/v1/integration-jobs", summary="One job by id, or the organization's jobs, newest first")
async def list_jobs(
    limits: ReadAdmitted,
    queries: Queries,
    sizes: Sizes,
    who: CurrentIntegration,
    job_id: Annotated[str | None, Query(max_length=100)] = None,
    external_job_id: Annotated[str | None, Query(max_length=200)] = None,
    status: JobStatus | None = None,
    updated_since: datetime | None = None,
    driver_email: Annotated[str | None, Query(max_length=320)] = None,
    driver: Annotated[
        str | None,
        Query(max_length=320, description="jobs in which this driver has a route; each job shows only their route"),
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    if_none_match: IfNoneMatch = None,
) -> Any:
    search = JobSearch(
        job_id,
        external_job_id,
        JobFilter(status=status, updated_since=updated_since, driver_email=driver_email, driver=driver),
        limit,
        cursor,
    )
    found = await handlers.find_jobs(queries, who.org_id, search, sizes)
    if isinstance(found, Page):
        jobs = {"jobs": found.jobs, "next_cursor": found.next_cursor}
        return JSONResponse(jobs, headers={**limits, "Cache-Control": JOB_CACHING})
    return job_answer(found, if_none_match, limits)


@router.get(
    "/v1/integration-jobs/{job_id}",
    summary="One job with its stops in route order",
    responses={304: {"description": "The job is unchanged since the ETag in If-None-Match"}},
)
async def get_job(
    job_id: JobId,
    limits: ReadAdmitted,
    queries: Queries,
    who: CurrentIntegration,
    if_none_match: IfNoneMatch = None,
) -> Any:
    """The job's `version` comes back as a strong ETag; send it in If-None-Match to get 304 while it is unchanged."""
    return job_answer(await handlers.read_job(queries, who.org_id, job_id=job_id), if_none_match, limits)


class StopStatusIn(BaseModel):
    status: StopOutcome
    occurred_at: datetime | None = None
    reason: SafeText(500) | None = None
    notes: SafeText(2000) | None = None
    recipient_name: SafeText(200) | None = None
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
    job_id: JobId,
    external_stop_id: Annotated[str, Field(max_length=200)],
    admitted: UpdateAdmitted,
    body: StopStatusIn,
    queries: Queries,
    publish: Publisher,
    who: CurrentIntegration,
) -> JSONResponse:
    report = StopReport(**body.model_dump(exclude={"photo_urls"}), photo_urls=tuple(body.photo_urls))
    event = await handlers.record_stop_status(
        queries, publish, who.org_id, job_id, external_stop_id, report, logs.correlation_id.get()
    )
    return JSONResponse(
        {
            "job_id": job_id,
            "external_stop_id": external_stop_id,
            "status": event.status,
            "status_at": event.status_at.isoformat(),
            "event_id": str(event.event_id),
        },
        status_code=202,
        headers={**admitted, "Location": f"/v1/integration-jobs/{job_id}"},
    )


async def database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
    """The read model's database is down or locked: 503 with a retry hint, never a 500."""
    log.warning("read model unavailable: %s", exc.orig)
    problem = Problem(
        503, "database_unavailable", "The job store is unavailable; retry shortly.", headers={"Retry-After": "5"}
    )
    return problem_response(problem, request.url.path)
