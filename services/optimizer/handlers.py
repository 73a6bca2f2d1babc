"""Turning geocoded stops into an ordered route for one driver."""

import logging
from datetime import datetime

from services.optimizer import fleet, vrp
from services.optimizer.adapters import great_circle
from services.optimizer.adapters.matrix import Matrix, MatrixProvider, RoutingUnavailable
from services.optimizer.settings import OptimizerSettings
from services.optimizer.solver import RouteProblem, solve
from shared.events import JobFailed, JobWarning, ReplanRequested, RouteOptimized, StopsGeocoded, caused_by
from shared.events.jobs import JobSpec, Location, RequestedStop, RouteStop, RouteTotals, SolverStats, UnroutedStop
from shared.vocabulary import FailureCode, UnroutedReason, WarningCode

log = logging.getLogger(__name__)

REASON_TEXT = {
    UnroutedReason.TIME_WINDOW_VIOLATION: "The stop's time window cannot be met on this route.",
    UnroutedReason.CAPACITY_EXCEEDED: "The vehicle's capacity is used up before this stop.",
}


def service_seconds(stop: RequestedStop, settings: OptimizerSettings) -> int:
    minutes = (
        stop.service_minutes
        if stop.service_minutes is not None
        else (settings.default_service_minutes + settings.service_minutes_per_parcel * stop.parcel_count)
    )
    return int(round(minutes * 60))


def route_start(event: StopsGeocoded) -> datetime:
    """The job's start_time, else the time it was imported; a started route (an update with
    finished stops) departs no earlier than now."""
    start = event.job.start_time or event.occurred_at
    return max(start, event.occurred_at) if event.keep else start


def _departure(event: StopsGeocoded, by_id: dict[str, Location]) -> Location | None:
    """Where the route leaves from: the last finished stop that was placed, else the depot."""
    kept = {s.external_stop_id: s.stop_id for s in event.job.stops}
    for external in reversed(event.keep):
        loc = by_id.get(kept.get(external, ""))
        if loc is not None and loc.lat is not None:
            return loc
    return event.depot


def build_matrix(
    points: list[tuple[float, float]], settings: OptimizerSettings, matrices: MatrixProvider
) -> tuple[Matrix, list[JobWarning]]:
    """The matrix over these points, from the routing service or (it failed) great-circle estimates."""
    try:
        return matrices.build(points), []
    except RoutingUnavailable as exc:
        log.warning("routing service failed (%s); using great-circle distances", exc)
        warning = JobWarning(
            code=WarningCode.ROUTING_FALLBACK,
            message="The road routing service was unavailable; distances and times are great-circle estimates.",
        )
        return great_circle(settings).build(points), [warning]


def _placed(event: StopsGeocoded) -> tuple[list[RequestedStop], list[UnroutedStop], dict[str, Location]]:
    """The stops to route that were placed; the rest unrouted (the geocoder already warned)."""
    by_id = {loc.stop_id: loc for loc in event.locations}
    keep = set(event.keep)
    todo = [s for s in event.job.stops if s.external_stop_id not in keep]
    placed = [s for s in todo if (loc := by_id.get(s.stop_id)) and loc.lat is not None]
    placed_ids = {s.stop_id for s in placed}  # `s not in placed` compared whole models: n² pydantic __eq__
    unrouted = [
        UnroutedStop(stop_id=s.stop_id, external_stop_id=s.external_stop_id, reason=UnroutedReason.GEOCODE_FAILED)
        for s in todo
        if s.stop_id not in placed_ids
    ]
    return placed, unrouted, by_id


def optimize(event: StopsGeocoded, settings: OptimizerSettings, matrices: MatrixProvider) -> RouteOptimized | JobFailed:
    """A fleet job (vehicles, or the fleet's stop fields) goes to the fleet engine; any other to
    the single-driver portfolio."""
    if event.job.fleet:
        return optimize_fleet(event, settings, matrices)
    return optimize_single(event, settings, matrices)


def optimize_single(
    event: StopsGeocoded, settings: OptimizerSettings, matrices: MatrixProvider
) -> RouteOptimized | JobFailed:
    """Order the placed stops; stops without coordinates stay unrouted (the geocoder already warned).
    Finished stops (`keep`, an update of a started job) are not routed again: the rest are, from
    the last finished one."""
    job, warnings = event.job, list(event.warnings)
    placed, unrouted, by_id = _placed(event)
    points = [(by_id[s.stop_id].lat, by_id[s.stop_id].lng) for s in placed]
    origin = _departure(event, by_id)
    has_depot = origin is not None
    if has_depot:
        points.append((origin.lat, origin.lng))
    matrix, fallback = build_matrix(points, settings, matrices)
    warnings += fallback
    start = route_start(event)
    windows = [
        (int((s.time_window.start - start).total_seconds()), int((s.time_window.end - start).total_seconds()))
        if s.time_window
        else None
        for s in placed
    ]
    problem = RouteProblem(
        matrix.distance_m,
        matrix.duration_s,
        has_depot,
        job.return_to_depot and has_depot and origin is event.depot,  # a started route does not loop back
        [service_seconds(s, settings) for s in placed],
        windows,
        [s.parcel_count for s in placed],
        job.vehicle_capacity,
    )
    solution = solve(
        problem,
        settings.solver_ms_per_stop,
        settings.solver_budget(len(placed)),
        settings.exact_max_stops,
        settings.solver_kicks_per_stop,
        settings.solver_compiled_min_stops,
    )
    for index, reason in solution.unrouted.items():
        stop = placed[index]
        unrouted.append(UnroutedStop(stop_id=stop.stop_id, external_stop_id=stop.external_stop_id, reason=reason))
        warnings.append(JobWarning(code=reason, external_stop_id=stop.external_stop_id, message=REASON_TEXT[reason]))
    route, total_m, prev = [], 0, (len(placed) if has_depot else None)
    for seq, (index, arrival) in enumerate(zip(solution.order, solution.arrival_s, strict=False), start=1):
        stop, loc = placed[index], by_id[placed[index].stop_id]
        leg_m = int(matrix.distance_m[prev, index]) if prev is not None else 0
        leg_s = int(matrix.duration_s[prev, index]) if prev is not None else 0
        total_m += leg_m
        route.append(
            RouteStop(
                stop_id=stop.stop_id,
                external_stop_id=stop.external_stop_id,
                sequence=seq,
                lat=loc.lat,
                lng=loc.lng,
                leg_distance_km=round(leg_m / 1000, 3),
                leg_duration_minutes=round(leg_s / 60, 2),
                eta_offset_minutes=round(arrival / 60, 2),
                service_minutes=round(problem.service_s[index] / 60, 2),
            )
        )
        prev = index
    end_s = (solution.arrival_s[-1] + problem.service_s[solution.order[-1]]) if route else 0
    if route and problem.return_to_depot:
        total_m += int(matrix.distance_m[prev, len(placed)])
        end_s += int(matrix.duration_s[prev, len(placed)])
    if not route:
        return no_route(event, warnings)
    return RouteOptimized(
        **caused_by(event, "RouteOptimized"),
        job_id=event.job_id,
        external_job_id=job.external_job_id,
        route=tuple(route),
        unrouted=tuple(unrouted),
        start_time=start,
        warnings=tuple(warnings),
        locations=event.locations,
        totals=RouteTotals(
            total_distance_km=round(total_m / 1000, 2),
            total_duration_minutes=round(end_s / 60, 1),
            total_duration_seconds=int(end_s),
        ),
        solver=SolverStats(
            solver=solution.solver,
            matrix_provider=matrix.provider,
            solve_ms=round(solution.solve_ms, 2),
            stop_count=len(placed),
            objective_m=total_m,
        ),
        spec_version=event.spec_version,
        remaining_only=bool(event.keep),
    )


def no_route(event: StopsGeocoded, warnings: list[JobWarning]) -> JobFailed:
    return JobFailed(
        **caused_by(event, "JobFailed"),
        job_id=event.job_id,
        spec_version=event.spec_version,
        stage="optimizer",
        code=FailureCode.NO_ROUTABLE_STOPS,
        message="No stop could be placed on the route.",
        warnings=tuple(warnings),
    )


def optimize_fleet(
    event: StopsGeocoded, settings: OptimizerSettings, matrices: MatrixProvider
) -> RouteOptimized | JobFailed:
    """One route per vehicle from the fleet engine; stops that fit no vehicle stay unrouted, with
    the engine's reason (lowest priority first)."""
    warnings = list(event.warnings)
    placed, unrouted, by_id = _placed(event)
    service = [service_seconds(s, settings) for s in placed]
    plan = fleet.build_plan(event, placed, by_id, service, lambda points: build_matrix(points, settings, matrices))
    warnings += plan.warnings
    effort = vrp.Effort(max_seconds=settings.solver_budget(len(plan.stops)), seed=1)
    if plan.problem.visits and plan.problem.vehicles:
        solution = vrp.solve(plan.problem, effort)
    else:
        solution = None
    reasons = {**plan.unrouted}
    if solution is None:
        reasons.update({s.stop_id: UnroutedReason.NO_VEHICLE for s in plan.stops})
    else:
        reasons.update({plan.stops[i].stop_id: str(reason) for i, reason in solution.unassigned.items()})
    for stop in placed:
        if (reason := reasons.get(stop.stop_id)) is not None:
            unrouted.append(UnroutedStop(stop_id=stop.stop_id, external_stop_id=stop.external_stop_id, reason=reason))
            warnings.append(
                JobWarning(code=reason, external_stop_id=stop.external_stop_id, message=fleet.reason_text(reason))
            )
    if solution is None or not solution.routes:
        return no_route(event, warnings)
    legs, routes = fleet.routes_of(event.job, plan, solution, by_id)
    return RouteOptimized(
        **caused_by(event, "RouteOptimized"),
        job_id=event.job_id,
        external_job_id=event.job.external_job_id,
        route=legs,
        routes=routes,
        unrouted=tuple(unrouted),
        start_time=plan.origin,
        warnings=tuple(warnings),
        locations=event.locations,
        totals=RouteTotals(
            total_distance_km=round(solution.distance / 1000, 2),
            total_duration_minutes=round(solution.duration / 60, 1),
            total_duration_seconds=int(solution.duration),
        ),
        solver=SolverStats(
            solver=solution.engine,
            matrix_provider=plan.matrix.provider,
            solve_ms=round(solution.solve_ms, 2),
            stop_count=len(placed),
            objective_m=int(solution.distance),
            vehicles=len(event.job.vehicles) or 1,
            iterations=solution.iterations,
        ),
        spec_version=event.spec_version,
        remaining_only=bool(event.keep),
    )


def replan(event: ReplanRequested, settings: OptimizerSettings, matrices: MatrixProvider) -> RouteOptimized | JobFailed:
    """Re-order a started route's remaining stops from its start point, at its start time."""
    stops = tuple(
        RequestedStop(
            stop_id=s.stop_id,
            external_stop_id=s.external_stop_id,
            lat=s.lat,
            lng=s.lng,
            parcel_count=s.parcel_count,
            time_window=s.time_window,
            service_minutes=s.service_minutes,
        )
        for s in event.stops
    )
    spec = JobSpec(
        external_job_id=event.external_job_id or "",
        title="",
        stops=stops,
        start_time=event.start_time,
        vehicle_capacity=event.vehicle_capacity,
        payload_hash="",
    )
    start = event.start
    as_placed = StopsGeocoded(
        event_id=event.event_id,  # what comes out is derived from the re-plan: a redelivery repeats it
        org_id=event.org_id,
        correlation_id=event.correlation_id,
        occurred_at=event.occurred_at,
        job_id=event.job_id,
        job=spec,
        locations=tuple(
            Location(stop_id=s.stop_id, external_stop_id=s.external_stop_id, lat=s.lat, lng=s.lng, source="read_model")
            for s in event.stops
        ),
        depot=Location(stop_id="start", external_stop_id="start", lat=start.lat, lng=start.lng) if start else None,
        spec_version=event.spec_version,
    )
    outcome = optimize(as_placed, settings, matrices)
    if isinstance(outcome, RouteOptimized):  # where the stops were geocoded stays as the read model has it
        return outcome.model_copy(update={"locations": (), "remaining_only": True})
    return outcome
