"""Optimizer metrics: solve time by engine and job size, stops per route, vehicles per job, stops
left unrouted by reason."""

from prometheus_client import Counter, Histogram

from shared.events import RouteOptimized

SOLVE_SECONDS = Histogram(
    "routemate_solver_seconds",
    "Solver time per job by engine and job size (stops)",
    ["engine", "size"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
ROUTE_STOPS = Histogram("routemate_route_stops", "Stops per optimized route", buckets=(1, 5, 10, 25, 50, 100, 200, 500))
UNROUTED = Counter("routemate_unrouted_stops_total", "Stops left off a route, by reason", ["reason"])
VEHICLES = Histogram(
    "routemate_job_vehicles", "Vehicles per optimized job (1 for a single-driver job)", buckets=(1, 2, 3, 5, 10, 20, 50)
)
SIZES = ((8, "1-8"), (25, "9-25"), (50, "26-50"), (100, "51-100"), (200, "101-200"), (500, "201-500"))


def size_bucket(stops: int) -> str:
    """A bounded label for a job's size, matching the solver targets' sizes."""
    return next((label for top, label in SIZES if stops <= top), "501+")


def observe_route(route: RouteOptimized) -> None:
    """Record one optimized route's solve time, length and unrouted stops."""
    solver = route.solver
    SOLVE_SECONDS.labels(solver.solver, size_bucket(solver.stop_count)).observe(solver.solve_ms / 1000)
    VEHICLES.observe(solver.vehicles or 1)
    for stops in [len(r.external_stop_ids) for r in route.routes] or [len(route.route)]:
        ROUTE_STOPS.observe(stops)
    for stop in route.unrouted:
        UNROUTED.labels(stop.reason).inc()
