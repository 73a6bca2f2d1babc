"""Why a visit was left unassigned, decided honestly from what could and could not serve it.

- No vehicle has the visit's skills: SKILLS.
- Its demand exceeds the capacity of every vehicle with those skills: CAPACITY_EXCEEDED.
- No such vehicle could start its service inside a window, even serving it alone straight from its
  start at its shift start: TIME_WINDOW_VIOLATION.
- A vehicle reaches it in time, but none could serve it alone and still keep its shift end or
  maximum duration (or max_stops is 0): SHIFT.
- Otherwise the visit fits a vehicle on its own and was dropped because the fleet was full with
  visits of equal or higher priority: CAPACITY_EXCEEDED when every suitable vehicle is loaded too
  full for it or at its stop limit (MAX_STOPS when all are at their stop limit), else time ran out:
  TIME_WINDOW_VIOLATION for a visit with windows, SHIFT for one without.
"""

from services.optimizer.vrp import check
from services.optimizer.vrp.model import Problem, Route
from shared.vocabulary import UnroutedReason


def _alone(problem: Problem, vehicle: int, visit: int) -> tuple[str, ...]:
    return check.schedule(problem, vehicle, [visit], latest_departure=False).violations


def explain(problem: Problem, routes: list[Route], unassigned: list[int]) -> dict[int, str]:
    load = {r.vehicle: sum(problem.visits[i].demand for i in r.visits) for r in routes}
    stops = {r.vehicle: len(r.visits) for r in routes}
    out = {}
    vehicles = problem.vehicles
    for i in unassigned:
        visit = problem.visits[i]
        skilled = [k for k, v in enumerate(vehicles) if visit.skills <= v.skills]
        roomy = [k for k in skilled if vehicles[k].capacity is None or vehicles[k].capacity >= visit.demand]
        if not skilled:
            out[i] = UnroutedReason.SKILLS
            continue
        if not roomy:
            out[i] = UnroutedReason.CAPACITY_EXCEEDED
            continue
        alone = {k: _alone(problem, k, i) for k in roomy}
        if all(any(v.startswith("window") for v in broken) for broken in alone.values()):
            out[i] = UnroutedReason.TIME_WINDOW_VIOLATION
            continue
        able = [k for k, broken in alone.items() if not broken]
        if not able:
            out[i] = UnroutedReason.SHIFT
            continue
        room = {k: vehicles[k].capacity - load.get(k, 0) for k in able if vehicles[k].capacity is not None}
        full = [k for k in room if room[k] < visit.demand]
        at_limit = [k for k in able if vehicles[k].max_stops is not None and stops.get(k, 0) >= vehicles[k].max_stops]
        if set(full) | set(at_limit) == set(able):
            out[i] = UnroutedReason.CAPACITY_EXCEEDED if full else UnroutedReason.MAX_STOPS
        else:
            out[i] = UnroutedReason.TIME_WINDOW_VIOLATION if visit.windows else UnroutedReason.SHIFT
    return out
