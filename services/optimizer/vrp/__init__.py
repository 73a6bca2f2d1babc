"""The fleet routing engine: `solve(Problem, Effort) -> Solution` (model in model.py).

Objective: serve as many visits as possible (weighted by priority: a higher-priority visit is never
dropped to keep lower ones), then the least total distance. Every returned route is checked
against every rule (windows, capacity, shifts, skills, max_stops, max_duration) by check.py; the
same input always gives the same Solution (the search stops on effort with a fixed seed; the
time cap of `Effort.max_seconds` / engine.default_cap_seconds is a safety net only).
"""

import time
from dataclasses import replace

import numpy as np

from services.optimizer.vrp import check, engine, reasons
from services.optimizer.vrp.model import Effort, Problem, Route, Solution, Vehicle, Visit, Window

__all__ = ["Effort", "Problem", "Route", "Solution", "Vehicle", "Visit", "Window", "solve"]


def _repair(problem: Problem, vehicle: int, order: list[int]) -> list[int]:
    """Drop visits from a route that breaks a rule until it keeps every rule (lowest priority first
    among the removals that fix most); a safety net, the engine's routes normally pass as they are."""
    while order and check.schedule(problem, vehicle, order).violations:
        order = min(
            (order[:pos] + order[pos + 1 :] for pos in range(len(order))),
            key=lambda rest: (
                len(check.schedule(problem, vehicle, rest).violations),
                sum(problem.visits[i].priority for i in order) - sum(problem.visits[i].priority for i in rest),
            ),
        )
    return order


def _plain_tour(problem: Problem) -> bool:
    """One vehicle, nothing but distance to decide (a closed tour or an open end): our own local
    search (services/optimizer/ils.py) beats PyVRP there (bench/optimizer_quality.py)."""
    if len(problem.vehicles) != 1 or len(problem.visits) < 2:
        return False
    v = problem.vehicles[0]
    fits = v.capacity is None or sum(x.demand for x in problem.visits) <= v.capacity
    return (
        fits
        and v.end in (None, v.start)
        and v.shift_end is None
        and v.max_duration is None
        and (v.max_stops is None or v.max_stops >= len(problem.visits))
        and all(not x.windows and x.skills <= v.skills for x in problem.visits)
    )


def _tour(problem: Problem, effort: Effort) -> tuple[list[int], str]:
    from services.optimizer import solver  # solver routes constrained jobs here: imported late, no cycle

    v = problem.vehicles[0]
    idx = [x.location for x in problem.visits] + [v.start]
    dist = np.asarray(problem.distances)[np.ix_(idx, idx)]
    dur = np.asarray(problem.durations)[np.ix_(idx, idx)]
    n = len(problem.visits)
    p = solver.RouteProblem(
        dist, dur, True, v.end is not None, [x.service for x in problem.visits], [None] * n, [0] * n, None
    )
    if n <= 8:
        start, end = solver._ends(p)
        return solver.held_karp(solver._with_dummy(p.distance_m), n, start, end), "exact"
    cap = effort.max_seconds if effort.max_seconds is not None else engine.default_cap_seconds(n)
    kicks = effort.iterations // n if effort.iterations is not None else 150
    return solver.local_search_route(p, kicks, cap, seed=7 + effort.seed - 1), "local_search"


def solve(problem: Problem, effort: Effort | None = None) -> Solution:
    effort = effort or Effort()
    started = time.perf_counter()
    problem = replace(
        problem,
        distances=np.asarray(problem.distances, dtype=np.int64),
        durations=np.asarray(problem.durations, dtype=np.int64),
    )
    routes: list[Route] = []
    iterations, name = 0, "pyvrp"
    if _plain_tour(problem):
        order, name = _tour(problem, effort)
        routes.append(check.as_route(problem, 0, order))
    elif problem.visits and problem.vehicles:
        found, iterations = engine.run(problem, effort)
        for vehicle, order in sorted(found):
            order = _repair(problem, vehicle, order)
            if order:
                routes.append(check.as_route(problem, vehicle, order))
    served = {i for r in routes for i in r.visits}
    unassigned = reasons.explain(problem, routes, [i for i in range(len(problem.visits)) if i not in served])
    return Solution(
        routes=tuple(routes),
        unassigned=unassigned,
        distance=sum(r.distance for r in routes),
        duration=sum(r.duration for r in routes),
        engine=name,
        iterations=iterations,
        solve_ms=(time.perf_counter() - started) * 1000,
    )
