"""The fleet problem in PyVRP (0.14, MIT): how each rule of the model maps onto it.

- Every visit is an optional client with a prize (serve as many as possible, weighted by priority).
  The prize of the lowest priority level is larger than any route's possible distance saving from
  dropping a visit; each higher level's prize is larger than all lower levels' prizes together, so
  the search never drops a higher-priority visit to keep lower ones (capped so the sums fit int64).
- Two time windows: the visit becomes two clients at the same place, one per window, in a
  mutually exclusive client group; the search picks the window (or neither).
- Skills: one routing profile per distinct vehicle skill set; in a profile, the edges into a visit
  the vehicle lacks the skills for cost a prohibitive time and distance (the vehicle's horizon makes
  them infeasible), and the result check drops such a visit should one slip through.
- Open routes (end=None): the vehicle ends at a dummy depot every client reaches for free.
- max_stops: a second load dimension, each client loading 1 against a capacity of max_stops.
- Shifts: the vehicle type's tw_early/tw_late; max_duration: its shift_duration.
- Identical vehicles share one vehicle type (num_available), which the search handles better.
Stop: NoImprovement and MaxIterations with a fixed seed (deterministic), plus a hard cap on the
solving thread's CPU time (and 3x that on the wall clock) as a safety net.
"""

import time
import warnings
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from services.optimizer.vrp import check
from services.optimizer.vrp.model import Effort, Problem

HORIZON = 10**8  # seconds (about 3 years): the latest end of a vehicle without a shift end
FORBIDDEN = 10**9  # the time and distance of an edge into a visit a vehicle may not serve
MAX_PRIZE = 10**13

if TYPE_CHECKING:
    import pyvrp


def default_iterations(n: int) -> tuple[int, int]:
    """(iterations without improvement before stopping, iteration cap) for `n` visits.

    Measured on this project's 2-core machine: an iteration costs about 0.7 ms of CPU at 100
    visits and 0.9 ms at 200, so the cap (100 per visit) lands near 7 s at 100 and 18 s at 200,
    inside the hard cap; most solves stop earlier, after 30 iterations per visit without gain.
    """
    return max(2_000, 30 * n), max(10_000, 100 * n)


def default_cap_seconds(n: int) -> float:
    """The documented hard cap, in CPU seconds of the solving thread: 10 s at 100 visits, 30 s at 200,
    never under 2 s nor over 60 s. A solve that reaches it depends on the machine's speed: under
    it, the same input gives the same routes on any machine and under any load."""
    return float(min(60.0, max(2.0, n / 10 if n <= 100 else 10 + (n - 100) / 5)))


class CpuCap:
    """PyVRP stopping criterion: the solving thread has used `seconds` of CPU (load on other cores
    and other threads does not count, unlike MaxRuntime's wall clock)."""

    def __init__(self, seconds: float):
        self.deadline = time.thread_time() + seconds

    def __call__(self, best_cost: float) -> bool:
        return time.thread_time() >= self.deadline


def prizes(problem: Problem, base: int) -> list[int]:
    """Prize per visit: level r's prize exceeds all lower levels' prizes together plus `base`."""
    levels = sorted({v.priority for v in problem.visits})
    count = defaultdict(int)
    for v in problem.visits:
        count[v.priority] += 1
    prize, below = {}, 0
    for level in levels:
        prize[level] = min(MAX_PRIZE, base + below)
        below = min(MAX_PRIZE, below + count[level] * prize[level])
    return [prize[v.priority] for v in problem.visits]


def _vehicle_key(v) -> tuple:
    return (v.start, v.end, v.capacity, v.shift_start, v.shift_end, v.max_stops, v.max_duration, v.skills)


class Encoded:
    """A Problem as PyVRP data, with the maps back: PyVRP client -> (visit, window), type -> vehicles."""

    def __init__(self, problem: Problem, servable: frozenset[int], required: frozenset[int] = frozenset()):
        """Only `servable` visits become clients (the others cannot be served by any route); of them,
        `required` must all be served (the all-served attempt) and the rest stay optional."""
        import pyvrp  # imported on first use (0.3-0.7 s): jobs that never need it do not pay for it

        dist = np.asarray(problem.distances, dtype=np.int64)
        dur = np.asarray(problem.durations, dtype=np.int64)
        visits, vehicles = problem.visits, problem.vehicles
        groups_of_vehicles: dict[tuple, list[int]] = {}
        for k, v in enumerate(vehicles):
            groups_of_vehicles.setdefault(_vehicle_key(v), []).append(k)
        self.type_vehicles = list(groups_of_vehicles.values())
        # Locations: the depots (vehicle starts and ends), a dummy end, then one per client.
        depot_locs = sorted({v.start for v in vehicles} | {v.end for v in vehicles if v.end is not None})
        open_end = any(v.end is None for v in vehicles)
        self.client_of: list[tuple[int, int | None]] = []  # PyVRP client -> (visit, window index)
        for i, visit in enumerate(visits):
            if i not in servable:
                continue
            if not visit.windows:
                self.client_of.append((i, None))
            else:  # only windows that have not closed before time 0
                self.client_of += [(i, w) for w, window in enumerate(visit.windows) if window.end >= 0]
        n_depots = len(depot_locs) + (1 if open_end else 0)
        ends = depot_locs + ([depot_locs[0]] if open_end else [])
        loc = np.array(ends + [visits[i].location for i, _ in self.client_of])
        base_dist, base_dur = dist[np.ix_(loc, loc)], dur[np.ix_(loc, loc)]
        if open_end:
            dummy = len(depot_locs)
            base_dist[:, dummy] = base_dur[:, dummy] = 0
            base_dist[dummy, :] = base_dur[dummy, :] = FORBIDDEN
            base_dist[dummy, dummy] = base_dur[dummy, dummy] = 0
        real_max = int(dist.max()) if dist.size else 0
        prize = prizes(problem, max(1, 2 * real_max + 1))
        any_stops = any(v.max_stops is not None for v in vehicles)
        depots = [pyvrp.Depot(location=d) for d in range(n_depots)]
        clients, groups = [], []
        by_visit = defaultdict(list)
        for c, (i, _) in enumerate(self.client_of):
            by_visit[i].append(c)  # a group names clients counted from 0
        group_of = {}
        for i, members in by_visit.items():
            if len(members) > 1:
                group_of[i] = len(groups)
                groups.append(pyvrp.ClientGroup(members, required=i in required))
        for c, (i, w) in enumerate(self.client_of):
            visit = visits[i]
            window = visit.windows[w] if w is not None else None
            load = [visit.demand] + ([1] if any_stops else [])
            clients.append(
                pyvrp.Client(
                    location=n_depots + c,
                    delivery=load,
                    service_duration=visit.service,
                    tw_early=max(0, window.start) if window else 0,
                    tw_late=window.end if window else np.iinfo(np.int64).max,
                    prize=0 if i in required else prize[i],
                    required=i in required and i not in group_of,
                    group=group_of.get(i),
                )
            )
        skill_sets = sorted({v.skills for v in vehicles}, key=sorted)
        needs_profiles = any(visit.skills for visit in visits)
        if not needs_profiles:
            skill_sets = [frozenset()]
        dist_ms, dur_ms = [], []
        for skills in skill_sets:
            d, t = base_dist.copy(), base_dur.copy()
            banned = [n_depots + c for c, (i, _) in enumerate(self.client_of) if not visits[i].skills <= skills]
            if banned:
                d[:, banned] = FORBIDDEN
                t[:, banned] = FORBIDDEN
                np.fill_diagonal(d, 0)
                np.fill_diagonal(t, 0)
            dist_ms.append(d)
            dur_ms.append(t)
        types = []
        total_demand = sum(v.demand for v in visits)
        for members in self.type_vehicles:
            v = vehicles[members[0]]
            capacity = [v.capacity if v.capacity is not None else total_demand + 1]
            if any_stops:
                capacity.append(v.max_stops if v.max_stops is not None else len(visits) + 1)
            profile = skill_sets.index(v.skills) if needs_profiles else 0
            types.append(
                pyvrp.VehicleType(
                    num_available=len(members),
                    capacity=capacity,
                    start_depot=depot_locs.index(v.start),
                    end_depot=depot_locs.index(v.end) if v.end is not None else len(depot_locs),
                    tw_early=v.shift_start,
                    tw_late=v.shift_end if v.shift_end is not None else HORIZON,
                    shift_duration=v.max_duration if v.max_duration is not None else np.iinfo(np.int64).max,
                    profile=profile,
                )
            )
        locations = [pyvrp.Location(x=0, y=0) for _ in range(len(loc))]
        self.data = pyvrp.ProblemData(locations, clients, depots, types, dist_ms, dur_ms, groups)

    def decode(self, solution: "pyvrp.Solution") -> list[tuple[int, list[int]]]:
        """[(vehicle index, visit order)] of a PyVRP solution."""
        taken = defaultdict(int)
        out = []
        for route in solution.routes():
            t = route.vehicle_type()
            vehicle = self.type_vehicles[t][taken[t]]
            taken[t] += 1
            order = [self.client_of[a.idx][0] for a in route.schedule() if a.is_client()]
            if order:
                out.append((vehicle, order))
        return out


def servable_alone(problem: Problem) -> frozenset[int]:
    """Visits some vehicle could serve on a route of its own (skills, capacity, windows, shift)."""
    out = set()
    for i, visit in enumerate(problem.visits):
        for k, vehicle in enumerate(problem.vehicles):
            if visit.skills <= vehicle.skills and not check.schedule(problem, k, [i], False).violations:
                out.add(i)
                break
    return frozenset(out)


def _may_all_fit(problem: Problem, visits: frozenset[int]) -> bool:
    """False when capacity or stop limits alone rule out serving all of `visits`."""
    vehicles = problem.vehicles
    demand = sum(problem.visits[i].demand for i in visits)
    if all(v.capacity is not None for v in vehicles) and demand > sum(v.capacity for v in vehicles):
        return False
    return not (all(v.max_stops is not None for v in vehicles) and len(visits) > sum(v.max_stops for v in vehicles))


class FeasibleWithin:
    """PyVRP stopping criterion for the all-served attempt: give up when no feasible solution
    (every required visit served, every rule kept) has turned up in `iterations` iterations.
    PyVRP hands the criterion the best solution's cost, which is infinite while it is infeasible."""

    def __init__(self, iterations: int):
        self.left = iterations

    def __call__(self, best_cost: float) -> bool:
        if best_cost < 1e18:
            return False
        self.left -= 1
        return self.left < 0


WALL_FACTOR = 3.0  # the wall-clock cap, as a multiple of the CPU cap (a thread starved by the machine)


def _criteria(effort: Effort, n: int, *extra):
    from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria, NoImprovement

    no_improvement, cap_iterations = default_iterations(n)
    if effort.iterations is not None:
        cap_iterations = effort.iterations
        no_improvement = min(no_improvement, effort.iterations)
    max_s = effort.max_seconds if effort.max_seconds is not None else default_cap_seconds(n)
    wall = MaxRuntime(WALL_FACTOR * max_s)  # last resort only: under it, the result does not depend on load
    return MultipleCriteria([NoImprovement(no_improvement), MaxIterations(cap_iterations), CpuCap(max_s), wall, *extra])


def run(problem: Problem, effort: Effort) -> tuple[list[tuple[int, list[int]]], int]:
    """Routes (vehicle, visit order) by PyVRP's iterated local search, and the iterations it ran.

    First an attempt to serve every visit that some vehicle could serve alone, as required clients:
    the search then works on feasibility itself, which finds all-served routes that the prize
    version can miss. When that attempt ends infeasible (or capacity rules it out beforehand), the
    prize version decides what to leave out. Both are deterministic for a given seed and effort.
    """
    import pyvrp

    n = len(problem.visits)
    servable = servable_alone(problem)
    iterations, start = 0, None
    if not servable:
        return [], 0
    if _may_all_fit(problem, servable):
        encoded = Encoded(problem, servable, required=servable)
        stop = _criteria(effort, n, FeasibleWithin(max(300, 5 * n)))
        result = pyvrp.solve(encoded.data, stop, seed=effort.seed, collect_stats=False, display=False)
        iterations += result.num_iterations
        if result.best.is_feasible():
            return encoded.decode(result.best), iterations
        start = result.best
    encoded = Encoded(problem, servable)
    if start is not None:  # the same clients in the same order: the all-served attempt is the warm start
        start = pyvrp.Solution(
            encoded.data,
            [
                pyvrp.Route(encoded.data, [a.idx for a in r.schedule() if a.is_client()], r.vehicle_type())
                for r in start.routes()
            ],
        )
    with warnings.catch_warnings():  # PyVRP warns when its penalties peak: expected when not all fits
        warnings.simplefilter("ignore")
        result = pyvrp.solve(
            encoded.data,
            _criteria(effort, n),
            seed=effort.seed,
            collect_stats=False,
            display=False,
            initial_solution=start,
        )
    # An infeasible best is decoded all the same: the caller's check drops what breaks a rule.
    return encoded.decode(result.best), iterations + result.num_iterations
