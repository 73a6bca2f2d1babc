"""Single-driver route optimization, a portfolio chosen by the job:

- up to `exact_max` stops without constraints: exact dynamic programming (optimal, milliseconds);
- larger jobs without time windows or capacity: iterated local search (2-opt, Or-opt, kicks),
  compiled by numba (ils.py), or in plain Python (ils_small.py) for jobs under `compiled_min`
  stops where the caller would rather not load numba (`routemate optimize`);
- time windows, or a capacity that binds: the fleet engine (services/optimizer/vrp, PyVRP behind it)
  with one vehicle; it serves every stop some route can serve, stops on effort (the same job gets
  the same route) and leaves the others unrouted with their reason.

Node layout given to the solvers: stops 0..n-1, then the depot (when there is one), then a
zero-cost dummy that stands for "anywhere" at the open start or end of a route.
"""

import time
from dataclasses import dataclass, field

import numpy as np

from services.optimizer import ils_small, vrp
from shared.vocabulary import UnroutedReason

DROP_PENALTY = 10**10
NEIGHBOURS = 10  # candidate stops per stop in local search; more costs time, not quality (bench)
FULL_EFFORT_FROM = 50  # stops; smaller jobs reach the optimum with proportionally fewer kicks (bench)
ACCEPT_SLACK = 0.005  # a kicked route up to 0.5 % longer than the best may be kept: escapes local optima
# The plain-Python search stops once this many kicks in a row found nothing shorter, on symmetric
# costs (great-circle): on 300 random 20-stop jobs it then ended on the compiled search's
# full-effort length every time, and on LKH-3's (bench/cli_optimize.py --quality); 150 missed
# twice, by up to 2.2 %. Asymmetric (road) costs get the full effort.
SMALL_PATIENCE = 300


@dataclass(frozen=True)
class RouteProblem:
    distance_m: np.ndarray  # stops (+ depot) square matrix
    duration_s: np.ndarray
    has_depot: bool
    return_to_depot: bool
    service_s: list[int]
    windows: list[tuple[int, int] | None]  # seconds after the route's start
    demands: list[int]
    capacity: int | None

    @property
    def n(self) -> int:
        return len(self.service_s)

    @property
    def constrained(self) -> bool:
        """Time windows, or more parcels than the vehicle holds: some stops may have to stay unrouted."""
        return any(self.windows) or (self.capacity is not None and sum(self.demands) > self.capacity)


@dataclass
class RouteSolution:
    order: list[int]
    arrival_s: list[int]
    unrouted: dict[int, UnroutedReason] = field(default_factory=dict)
    solver: str = ""
    solve_ms: float = 0.0


def _needs_dummy(p: RouteProblem) -> bool:
    """A closed tour from the depot has no open end; any other route starts or ends "anywhere"."""
    return not (p.has_depot and p.return_to_depot)


def _with_dummy(m: np.ndarray) -> np.ndarray:
    """The matrix with a zero-cost dummy node appended; only ever a route's start or end node,
    never a node to visit (as a visitable node it would let the route teleport)."""
    size = m.shape[0]
    out = np.zeros((size + 1, size + 1), dtype=np.int64)
    out[:size, :size] = m
    return out


def _ends(p: RouteProblem) -> tuple[int, int]:
    """(start node, end node) in the layout with the dummy appended last."""
    dummy = p.distance_m.shape[0]
    depot = p.n if p.has_depot else None
    start = depot if depot is not None else dummy
    end = depot if (depot is not None and p.return_to_depot) else dummy
    return start, end


def held_karp(cost: np.ndarray, n: int, start: int, end: int) -> list[int]:
    """Exact shortest path from `start` through stops 0..n-1 to `end` (bitmask dynamic programming)."""
    if n == 1:
        return [0]
    full = 1 << n
    dp = np.full((full, n), np.iinfo(np.int64).max // 4, dtype=np.int64)
    parent = np.full((full, n), -1, dtype=np.int64)
    for j in range(n):
        dp[1 << j, j] = cost[start, j]
    stops = cost[:n, :n]
    bits = 1 << np.arange(n)
    for mask in range(1, full):
        row = dp[mask]
        if mask & (mask - 1) == 0:
            continue
        members = np.nonzero(mask & bits)[0]
        for j in members:
            prev = mask ^ (1 << j)
            ks = members[members != j]
            cand = dp[prev, ks] + stops[ks, j]
            best = int(np.argmin(cand))
            row[j] = cand[best]
            parent[mask, j] = ks[best]
    last = dp[full - 1] + cost[:n, end]
    j, mask, order = int(np.argmin(last)), full - 1, []
    while j != -1:
        order.append(j)
        j, mask = int(parent[mask, j]), mask ^ (1 << j)
    return order[::-1]


def _time_limit_s(p: RouteProblem, ms_per_stop: float, max_s: float) -> float:
    return min(max_s, max(0.02, p.n * ms_per_stop / 1000))


def ortools_route(p: RouteProblem, ms_per_stop: float, max_s: float) -> tuple[list[int], set[int], list[int] | None]:
    """(order, dropped stops, arrival seconds or None) from the OR-Tools routing solver."""
    pad = _with_dummy if _needs_dummy(p) else (lambda m: m.astype(np.int64))
    dist, dur = pad(p.distance_m), pad(p.duration_s)
    start, end = _ends(p)
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2  # constrained jobs only: 0.1-0.3 s to import

    manager = pywrapcp.RoutingIndexManager(dist.shape[0], 1, [start], [end])
    routing = pywrapcp.RoutingModel(manager)
    arc = routing.RegisterTransitMatrix(dist.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(arc)
    # Nodes the route never visits (depot in an open route, or the dummy) must not be demanded.
    time_dim = None
    if any(p.windows):
        service = np.zeros(dur.shape[0], dtype=np.int64)
        service[: p.n] = p.service_s
        travel = routing.RegisterTransitMatrix((dur + service[:, None]).tolist())
        horizon = max(w[1] for w in p.windows if w) + int(dur.max()) * 2 + sum(p.service_s) + 86_400
        routing.AddDimension(travel, horizon, horizon, True, "time")
        time_dim = routing.GetDimensionOrDie("time")
        for i, window in enumerate(p.windows):
            if window:
                time_dim.CumulVar(manager.NodeToIndex(i)).SetRange(max(window[0], 0), max(window[1], 0))
    if p.capacity is not None:
        demand = routing.RegisterUnaryTransitVector([*p.demands, *([0] * (dist.shape[0] - p.n))])
        routing.AddDimensionWithVehicleCapacity(demand, 0, [p.capacity], True, "parcels")
    if p.constrained:
        for i in range(p.n):
            routing.AddDisjunction([manager.NodeToIndex(i)], DROP_PENALTY)
            if p.windows[i] and p.windows[i][1] < 0:  # the window closed before the route starts
                routing.ActiveVar(manager.NodeToIndex(i)).SetValue(0)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(int(_time_limit_s(p, ms_per_stop, max_s) * 1000))
    solution = routing.SolveWithParameters(params)
    if solution is None:
        return [], set(range(p.n)), None
    order, arrivals, index = [], [], routing.Start(0)
    while not routing.IsEnd(index):
        node = manager.IndexToNode(index)
        if node < p.n:
            order.append(node)
            if time_dim is not None:
                arrivals.append(solution.Min(time_dim.CumulVar(index)))
        index = solution.Value(routing.NextVar(index))
    return order, set(range(p.n)) - set(order), arrivals if time_dim is not None else None


def as_vrp(p: RouteProblem) -> vrp.Problem:
    """The single-driver job as a one-vehicle fleet problem: stops 0..n-1, the depot (if any), then
    a free dummy that stands for "anywhere" at an open start; an open end is the engine's own."""
    dist, dur = _with_dummy(p.distance_m), _with_dummy(p.duration_s)
    start, end = _ends(p)
    visits = tuple(
        vrp.Visit(
            location=i,
            demand=p.demands[i],
            service=p.service_s[i],
            windows=(vrp.Window(*p.windows[i]),) if p.windows[i] else (),
        )
        for i in range(p.n)
    )
    vehicle = vrp.Vehicle(start=start, end=end if end != dist.shape[0] - 1 else None, capacity=p.capacity)
    return vrp.Problem(dist, dur, visits, (vehicle,))


def vrp_route(p: RouteProblem, max_s: float) -> RouteSolution:
    """A constrained single-driver job through the fleet engine; arrivals leave at the route's start."""
    problem = as_vrp(p)
    cap = max(max_s, vrp.engine.default_cap_seconds(p.n))
    solution = vrp.solve(problem, vrp.Effort(max_seconds=cap))
    order = list(solution.routes[0].visits) if solution.routes else []
    arrivals = list(vrp.check.schedule(problem, 0, order, latest_departure=False).arrivals)
    unrouted = {i: UnroutedReason(reason) for i, reason in sorted(solution.unassigned.items())}
    return RouteSolution(order, arrivals, unrouted, solver="pyvrp")


def _cycle(p: RouteProblem) -> tuple[np.ndarray, np.ndarray]:
    """(cost, nearness) over stops 0..n-1 plus an anchor n that closes the route into a cycle.

    Closed tour: the anchor is the depot. From a depot without return: the depot, with every
    leg back to it free. No depot: a dummy free to and from everywhere (a path open at both ends).
    """
    if p.has_depot:
        cost = p.distance_m.astype(np.int64)
        if not p.return_to_depot:
            cost[: p.n, p.n] = 0
        near = p.distance_m
    else:
        cost = near = _with_dummy(p.distance_m)
    return np.ascontiguousarray(cost), np.minimum(near, near.T)


def nearest_neighbour(cost: np.ndarray, anchor: int) -> list[int]:
    """A first route: always drive to the nearest stop not yet visited."""
    free = np.ones(cost.shape[0], dtype=bool)
    free[anchor] = False
    order, here = [], anchor
    for _ in range(cost.shape[0] - 1):
        here = int(np.argmin(np.where(free, cost[here], np.iinfo(np.int64).max)))
        free[here] = False
        order.append(here)
    return order


def local_search_route(
    p: RouteProblem, kicks_per_stop: int, max_s: float, seed: int = 7, compiled: bool = True
) -> list[int]:
    """Order of an unconstrained route by iterated local search (services/optimizer/ils.py, or
    without `compiled` the same search in plain Python, ils_small.py).

    Effort is `kicks_per_stop` kicks per stop, run in short slices so that `max_s` caps a huge
    job; under the cap the same job always gets the same route.
    """
    deadline = time.perf_counter() + max_s
    cost, near = _cycle(p)
    anchor = p.n
    neighbours = ils_small.neighbours(near, anchor, NEIGHBOURS)
    tour = np.array([anchor, *nearest_neighbour(cost, anchor), anchor], dtype=np.int64)
    remaining, part = int(kicks_per_stop * p.n * min(1.0, p.n / FULL_EFFORT_FROM)), 0
    segment = max(10, p.n // 2)
    if not compiled:
        stops = cost[: p.n, : p.n]
        patience = SMALL_PATIENCE if np.array_equal(stops, stops.T) else None
        tour, _ = ils_small.improve(
            cost, neighbours, tour, anchor, remaining, segment, seed, ACCEPT_SLACK, patience, deadline
        )
        return [int(node) for node in tour[1:-1]]
    from services.optimizer import ils  # numba: loaded at the service's start, or here on first use

    slice_kicks = max(10, 200_000 // p.n)  # a slice takes about 20 ms at any size: the cap is checked that often
    while True:
        kicks = min(slice_kicks, remaining)
        tour, _ = ils.improve(cost, neighbours, tour, anchor, kicks, segment, seed + part, ACCEPT_SLACK)
        remaining, part = remaining - kicks, part + 1
        if remaining <= 0 or time.perf_counter() > deadline:
            break
    return [int(node) for node in tour[1:-1]]


def walk_arrivals(p: RouteProblem, order: list[int]) -> list[int]:
    """Arrival seconds at each stop of `order`, driving without waiting."""
    start, _ = _ends(p)
    dur = _with_dummy(p.duration_s)
    clock, prev, out = 0, start, []
    for node in order:
        clock += int(dur[prev, node])
        out.append(clock)
        clock += p.service_s[node]
        prev = node
    return out


def solve(
    p: RouteProblem,
    ms_per_stop: float = 9.0,
    max_s: float = 1.8,
    exact_max: int = 8,
    kicks_per_stop: int = 150,
    compiled_min: int = 0,
) -> RouteSolution:
    """The best visiting order we can find for one driver; unroutable stops come back with a reason.

    `kicks_per_stop` is the local search's effort, which it stops at unless `max_s` is hit; a
    constrained job stops on the fleet engine's effort, capped by the larger of `max_s` and the
    engine's per-size cap (vrp.engine.default_cap_seconds). `ms_per_stop` only matters to
    `ortools_route`, kept as the benchmark's record of the previous constrained path. Local
    search under `compiled_min` stops runs in plain Python (no numba to load).
    """
    started = time.perf_counter()
    if p.n == 0:
        return RouteSolution([], [], solver="none")
    if not p.constrained and p.n <= exact_max:
        start, end = _ends(p)
        order = held_karp(_with_dummy(p.distance_m), p.n, start, end)
        solution = RouteSolution(order, walk_arrivals(p, order), solver="exact")
    elif not p.constrained:
        order = local_search_route(p, kicks_per_stop, max_s, compiled=p.n >= compiled_min)
        solution = RouteSolution(order, walk_arrivals(p, order), solver="local_search")
    else:
        solution = vrp_route(p, max_s)
    solution.solve_ms = (time.perf_counter() - started) * 1000
    return solution
