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


def solve(problem: Problem, effort: Effort | None = None) -> Solution:
    effort = effort or Effort()
    started = time.perf_counter()
    problem = replace(
        problem,
        distances=np.asarray(problem.distances, dtype=np.int64),
        durations=np.asarray(problem.durations, dtype=np.int64),
    )
    routes: list[Route] = []
    iterations = 0
    if problem.visits and problem.vehicles:
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
        engine="pyvrp",
        iterations=iterations,
        solve_ms=(time.perf_counter() - started) * 1000,
    )
