"""The console's read endpoints (/internal/v1, never routed by the edge): the jobs of the
organization the console names, behind the shared INTERNAL_TOKEN. Another organization's job
does not exist here (404), as on the public endpoint."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from services.status import handlers
from services.status.adapters.queries import JobFilter
from services.status.handlers import JobSearch, Page
from services.status.routes import Queries, Sizes
from services.status.views import job_view
from shared.errors import Problem
from shared.http import bearer_matches
from shared.vocabulary import JobStatus

internal = APIRouter(prefix="/internal/v1", include_in_schema=False)


async def _require_internal(request: Request) -> None:
    expected = request.app.state.settings.internal_token.get_secret_value()
    if not bearer_matches(request.headers.get("authorization"), expected):
        raise Problem(401, "invalid_internal_token", "A valid internal token is required.")


InternalOnly = Annotated[None, Depends(_require_internal)]


@internal.get("/orgs/{org_id}/jobs")
async def jobs(
    org_id: str,
    _: InternalOnly,
    queries: Queries,
    sizes: Sizes,
    status: JobStatus | None = None,
    created_on: date | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 25,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> dict[str, Any]:
    """A page of the organization's jobs, newest first; `created_on` is a UTC day."""
    start = datetime.combine(created_on, time(), tzinfo=UTC) if created_on else None
    flt = JobFilter(status=status, created_from=start, created_before=start + timedelta(days=1) if start else None)
    page = await handlers.find_jobs(queries, org_id, JobSearch(filter=flt, limit=limit, cursor=cursor), sizes)
    assert isinstance(page, Page)
    return {"jobs": page.jobs, "next_cursor": page.next_cursor}


@internal.get("/orgs/{org_id}/jobs/{job_id}")
async def job(org_id: str, job_id: str, _: InternalOnly, queries: Queries) -> dict[str, Any]:
    """One job in its public shape, plus where its depot was placed (the console draws it)."""
    row, stops = await handlers.read_job(queries, org_id, job_id=job_id)
    return {**job_view(row, stops), "depot": row.depot}
