"""Builders of import bodies and pipeline events, so each test states only what it is about."""

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from shared.events import ImportRequested, RouteOptimized, StopsGeocoded, StopStatusChanged, utcnow
from shared.events.jobs import (
    Depot,
    JobSpec,
    Location,
    RequestedStop,
    RouteStop,
    RouteTotals,
    SolverStats,
    TimeWindow,
    UnroutedStop,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE: dict[str, Any] = json.loads((ROOT / "deploy/examples/brisbane-job.json").read_text())
BRISBANE = [(-27.468, 153.022), (-27.484, 153.010), (-27.470, 153.045), (-27.433, 153.044), (-27.456, 153.060)]
START = datetime(2026, 11, 30, 8, 0, tzinfo=timezone(timedelta(hours=10)))


def import_body(stops: int | None = None, **over: Any) -> dict[str, Any]:
    """The public docs' example import (8 Brisbane stops), or `stops` of them cycled; fields overridden."""
    body = copy.deepcopy(EXAMPLE)
    if stops is not None:
        base = body["stops"]
        body["stops"] = [dict(base[i % len(base)], external_stop_id=f"S{i}") for i in range(stops)]
    body.update(over)
    return body


def stop(
    i: int,
    address: str | None = None,
    lat: float | None = None,
    lng: float | None = None,
    job_id: str = "j",
    **over: Any,
) -> RequestedStop:
    """Stop number `i` of job `job_id` (stop_id `job_id.i`, external id `S{i}`)."""
    return RequestedStop(stop_id=f"{job_id}.{i}", external_stop_id=f"S{i}", address=address, lat=lat, lng=lng, **over)


def spec(*stops: RequestedStop, depot: Depot | None = None, **over: Any) -> JobSpec:
    fields: dict[str, Any] = {"external_job_id": "X", "title": "t", "payload_hash": "h", **over}
    return JobSpec(stops=stops, depot=depot, **fields)


def import_requested(
    *stops: RequestedStop, depot: Depot | None = None, org_id: str = "o", job_id: str = "j", **over: Any
) -> ImportRequested:
    return ImportRequested(org_id=org_id, job_id=job_id, integration_id="c", job=spec(*stops, depot=depot, **over))


def geocoded(
    points: list[tuple[float, float] | None],
    *,
    windows: dict[int, TimeWindow] | None = None,
    depot: tuple[float, float] | None = None,
    ret: bool = False,
    capacity: int | None = None,
    org_id: str = "o",
    job_id: str = "j",
) -> StopsGeocoded:
    """A geocoded job whose stop `i` sits at `points[i]` (None: not placed), 2 parcels each."""
    stops = tuple(
        RequestedStop(
            stop_id=f"{job_id}.{i}",
            external_stop_id=f"S{i}",
            address=f"{i} St",
            parcel_count=2,
            time_window=(windows or {}).get(i),
        )
        for i in range(len(points))
    )
    job = spec(*stops, start_time=START, return_to_depot=ret, vehicle_capacity=capacity)
    locs = tuple(
        Location(
            stop_id=s.stop_id,
            external_stop_id=s.external_stop_id,
            lat=p[0] if p else None,
            lng=p[1] if p else None,
            precision="rooftop" if p else None,
        )
        for s, p in zip(stops, points, strict=True)
    )
    dep = Location(stop_id="depot", external_stop_id="depot", lat=depot[0], lng=depot[1]) if depot else None
    return StopsGeocoded(org_id=org_id, job_id=job_id, job=job, locations=locs, depot=dep)


def routed(geo: StopsGeocoded, order: list[int], unrouted: dict[int, str] | None = None, **over: Any) -> RouteOptimized:
    """The route an optimizer would publish for `geo`: stops `order` visited in that order (legs
    of 1 km and 2 min, ETAs 5 min apart), the stops in `unrouted` left off for the reason given."""
    stops, where = geo.job.stops, {loc.stop_id: loc for loc in geo.locations}

    def leg(sequence: int, i: int) -> RouteStop:
        at = where[stops[i].stop_id]
        return RouteStop(
            stop_id=stops[i].stop_id,
            external_stop_id=stops[i].external_stop_id,
            sequence=sequence,
            lat=at.lat if at.lat is not None else 0.0,
            lng=at.lng if at.lng is not None else 0.0,
            leg_distance_km=1.0,
            leg_duration_minutes=2.0,
            eta_offset_minutes=sequence * 5.0,
        )

    route = tuple(leg(sequence, i) for sequence, i in enumerate(order, 1))
    left = tuple(
        UnroutedStop(stop_id=stops[i].stop_id, external_stop_id=stops[i].external_stop_id, reason=reason)
        for i, reason in (unrouted or {}).items()
    )
    fields: dict[str, Any] = {
        "org_id": geo.org_id,
        "job_id": geo.job_id,
        "external_job_id": geo.job.external_job_id,
        "route": route,
        "unrouted": left,
        "locations": geo.locations,
        "totals": RouteTotals(total_distance_km=1.0 * len(route), total_duration_minutes=7.0 * len(route)),
        "solver": SolverStats(solver="exact", matrix_provider="great_circle", solve_ms=1.0, stop_count=len(route)),
        "start_time": geo.job.start_time,
    }
    return RouteOptimized(**{**fields, **over})


def stop_changed(
    i: int, status: str, at: datetime | None = None, *, org_id: str = "o", job_id: str = "j", **over: Any
) -> StopStatusChanged:
    """Stop number `i` of job `job_id` reported `status` at `at` (now, if not given)."""
    at = at or utcnow()
    return StopStatusChanged(
        org_id=org_id,
        job_id=job_id,
        stop_id=f"{job_id}.{i}",
        external_stop_id=f"S{i}",
        status=status,
        status_at=at,
        **{"occurred_at": at, **over},
    )


def at(hours: float = 0.0, *, day: int = 1) -> str:
    """An ISO time `hours` after 08:00 UTC `day` days from today: inside every window the edges
    accept, however far in the future a test runs (hard-coded dates become time bombs)."""
    base = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) + timedelta(days=day)
    return (base + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")
