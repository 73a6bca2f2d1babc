"""Fleet jobs: the geocoded job as a vrp Problem (services/optimizer/vrp), and its Solution as one
RouteOptimized with a route per vehicle.

Locations given to the engine: the placed stops 0..n-1, then each distinct vehicle start/end
point, then (only when a vehicle starts "anywhere", a single-driver job without a depot) a
zero-cost dummy. Times are seconds from the plan's origin: the job's start_time, else the
earliest shift start, else the time the job was imported.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from services.optimizer import vrp
from services.optimizer.adapters.matrix import Matrix
from shared.events import StopsGeocoded
from shared.events.jobs import (
    JobSpec,
    JobWarning,
    Location,
    RequestedStop,
    RouteStop,
    RouteTotals,
    VehicleRoute,
    VehicleSpec,
)
from shared.vocabulary import UnroutedReason

REASON_TEXT = {
    UnroutedReason.TIME_WINDOW_VIOLATION: "The stop's time windows cannot be met by any vehicle.",
    UnroutedReason.CAPACITY_EXCEEDED: "No vehicle has the capacity left for this stop.",
}
GENERIC_REASON = "The stop could not be fitted on any vehicle's route ({reason})."


def reason_text(reason: str) -> str:
    return REASON_TEXT.get(reason, GENERIC_REASON.format(reason=reason))


@dataclass
class FleetPlan:
    """A fleet job as the engine sees it, and how to map its answer back."""

    problem: "vrp.Problem"
    stops: list[RequestedStop]  # visit i -> the stop
    vehicles: list[int]  # engine vehicle j -> index in the spec's vehicles
    drivers: list[str | None]  # engine vehicle j -> its driver's email
    origin: datetime
    matrix: Matrix
    unrouted: dict[str, str] = field(default_factory=dict)  # stop_id -> reason, decided before solving
    warnings: list[JobWarning] = field(default_factory=list)


def plan_origin(event: StopsGeocoded) -> datetime:
    """Time zero of the plan (an update of a started job departs no earlier than now)."""
    job = event.job
    shifts = [v.shift_start for v in job.vehicles if v.shift_start is not None]
    origin = job.start_time or (min(shifts) if shifts else None) or event.occurred_at
    return max(origin, event.occurred_at) if event.keep else origin


def _offset(at: datetime | None, origin: datetime) -> int | None:
    return None if at is None else int((at - origin).total_seconds())


def windows_of(stop: RequestedStop, origin: datetime) -> tuple["vrp.Window", ...] | None:
    """The stop's windows in plan seconds; None when it has windows and every one closed before time zero."""
    given = stop.windows()
    out = []
    for w in given:
        start, end = _offset(w.start, origin), _offset(w.end, origin)
        if end >= 0:
            out.append(vrp.Window(max(0, start), end))
    return None if given and not out else tuple(out)


def vehicles_of(event: StopsGeocoded) -> list[VehicleSpec]:
    """The job's vehicles; a single-driver job (using the fleet's stop fields) is a fleet of one."""
    job = event.job
    if job.vehicles:
        return list(job.vehicles)
    return [VehicleSpec(driver_email=job.driver_email or "", capacity=job.vehicle_capacity)]


class _Places:
    """Distinct points of the plan, in matrix order."""

    def __init__(self, stops: list[tuple[float, float]]) -> None:
        self.points = list(stops)
        self.index: dict[tuple[float, float], int] = {}

    def of(self, loc: Location | None) -> int | None:
        if loc is None or loc.lat is None:
            return None
        key = (loc.lat, loc.lng)
        if key not in self.index:
            self.index[key] = len(self.points)
            self.points.append(key)
        return self.index[key]


def _with_dummy(matrix: Matrix) -> tuple[np.ndarray, np.ndarray, int]:
    """The matrices with one more location (the last) that is free to and from everywhere ("anywhere")."""

    def grow(m: np.ndarray) -> np.ndarray:
        return np.pad(np.asarray(m, dtype=np.int64), ((0, 1), (0, 1)))

    return grow(matrix.distance_m), grow(matrix.duration_s), matrix.distance_m.shape[0]


def _ends(event: StopsGeocoded, places: _Places) -> list[tuple[int, int | None, int | None]]:
    """(spec index, start, end) of each vehicle whose start and end were placed; start None:
    "anywhere" (no depot either), end None: an open route."""
    given = {p.vehicle: p for p in event.vehicles}
    out = []
    for i, vehicle in enumerate(vehicles_of(event)):
        placed = given.get(i)
        start = places.of(placed.start if placed else None) if vehicle.start else places.of(event.depot)
        if vehicle.start is not None and start is None:
            continue  # its start could not be placed (the geocoder warned)
        if vehicle.end is not None:
            end = places.of(placed.end if placed else None)
            if end is None:
                continue
        else:
            end = places.of(event.depot) if event.job.return_to_depot and start is not None else None
        out.append((i, start, end))
    return out


def _vehicle(v: VehicleSpec, start: int, end: int | None, origin: datetime) -> "vrp.Vehicle | None":
    """The engine's vehicle, times from the plan's origin; None when its shift is over before it."""
    shift_start = max(0, _offset(v.shift_start, origin) or 0)
    shift_end = _offset(v.shift_end, origin)
    if shift_end is not None and shift_end <= shift_start:
        return None
    return vrp.Vehicle(
        start=start,
        end=end,
        capacity=v.capacity,
        shift_start=shift_start,
        shift_end=shift_end,
        max_stops=v.max_stops,
        max_duration=None if v.max_duration_minutes is None else int(v.max_duration_minutes * 60),
        skills=frozenset(v.skills),
    )


def build_plan(
    event: StopsGeocoded,
    placed: list[RequestedStop],
    by_id: dict[str, Location],
    service_s: list[int],
    build_matrix: Callable[[list[tuple[float, float]]], tuple[Matrix, list[JobWarning]]],
) -> FleetPlan:
    """The vrp Problem of a geocoded fleet job (the placed stops are matrix locations 0..n-1)."""
    origin, fleet = plan_origin(event), vehicles_of(event)
    places = _Places([(by_id[s.stop_id].lat, by_id[s.stop_id].lng) for s in placed])
    ends = _ends(event, places)
    matrix, warnings = build_matrix(places.points)
    distances, durations = matrix.distance_m, matrix.duration_s
    if any(start is None for _, start, _ in ends):
        distances, durations, anywhere = _with_dummy(matrix)
        ends = [(i, anywhere if start is None else start, end) for i, start, end in ends]
    vehicles = [(i, v) for i, start, end in ends if (v := _vehicle(fleet[i], start, end, origin)) is not None]
    visits, kept, unrouted = [], [], {}
    for index, stop in enumerate(placed):
        windows = windows_of(stop, origin)
        if windows is None:
            unrouted[stop.stop_id] = UnroutedReason.TIME_WINDOW_VIOLATION
            continue
        kept.append(stop)
        visits.append(
            vrp.Visit(
                location=index,
                demand=stop.parcel_count,
                service=service_s[index],
                windows=windows,
                skills=frozenset(stop.skills),
                priority=stop.priority,
            )
        )
    return FleetPlan(
        problem=vrp.Problem(distances, durations, tuple(visits), tuple(v for _, v in vehicles)),
        stops=kept,
        vehicles=[i for i, _ in vehicles],
        drivers=[fleet[i].driver_email or None for i, _ in vehicles],
        origin=origin,
        matrix=Matrix(np.asarray(distances), np.asarray(durations), matrix.provider),
        unrouted=unrouted,
        warnings=warnings,
    )


def at(origin: datetime, seconds: int) -> datetime:
    return origin + timedelta(seconds=int(seconds))


def routes_of(
    job: JobSpec, plan: FleetPlan, solution: "vrp.Solution", by_id: dict[str, Location]
) -> tuple[tuple[RouteStop, ...], tuple[VehicleRoute, ...]]:
    """The flat route (route by route, in the spec's vehicle order) and each vehicle's summary."""
    distance, duration = plan.matrix.distance_m, plan.matrix.duration_s
    legs: list[RouteStop] = []
    routes: list[VehicleRoute] = []
    for route in sorted(solution.routes, key=lambda r: plan.vehicles[r.vehicle]):
        spec_index = plan.vehicles[route.vehicle]
        prev = plan.problem.vehicles[route.vehicle].start
        for k, (visit, arrival) in enumerate(zip(route.visits, route.arrivals, strict=True), start=1):
            stop, location = plan.stops[visit], plan.problem.visits[visit].location
            loc = by_id[stop.stop_id]
            legs.append(
                RouteStop(
                    stop_id=stop.stop_id,
                    external_stop_id=stop.external_stop_id,
                    sequence=len(legs) + 1,
                    lat=loc.lat,
                    lng=loc.lng,
                    leg_distance_km=round(int(distance[prev, location]) / 1000, 3),
                    leg_duration_minutes=round(int(duration[prev, location]) / 60, 2),
                    eta_offset_minutes=round(arrival / 60, 2),
                    service_minutes=round(plan.problem.visits[visit].service / 60, 2),
                    vehicle=spec_index,
                    route_sequence=k,
                )
            )
            prev = location
        routes.append(
            VehicleRoute(
                vehicle=spec_index,
                driver_email=plan.drivers[route.vehicle] or "",
                external_stop_ids=tuple(plan.stops[v].external_stop_id for v in route.visits),
                totals=RouteTotals(
                    total_distance_km=round(route.distance / 1000, 2),
                    total_duration_minutes=round(route.duration / 60, 1),
                    total_duration_seconds=int(route.duration),
                ),
                start_time=at(plan.origin, route.start_time),
                end_time=at(plan.origin, route.end_time),
                parcels=sum(plan.problem.visits[v].demand for v in route.visits),
            )
        )
    return tuple(legs), tuple(routes)
