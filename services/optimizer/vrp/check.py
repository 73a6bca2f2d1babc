"""Route arithmetic shared by the engine, the unassigned-reason logic and the tests: the schedule of
one vehicle's visits and every way it can break a constraint.

Schedule rule (the same as PyVRP's): the vehicle may leave its start at `shift_start` or later;
service at a visit starts at the earliest moment inside one of its windows that is not before
the arrival (waiting is allowed); the route ends on arrival at `end` (or when the last service
ends, for an open route). The reported departure is the latest one that keeps the same end time,
so waiting is moved to the start where the windows allow it (the least duration).
"""

from dataclasses import dataclass

import numpy as np

from services.optimizer.vrp.model import Problem, Route, Vehicle, Visit


@dataclass(frozen=True)
class Schedule:
    arrivals: tuple[int, ...]  # service start at each visit
    start_time: int
    end_time: int
    distance: int
    violations: tuple[str, ...]  # empty = feasible

    @property
    def duration(self) -> int:
        return self.end_time - self.start_time


def _service_start(visit: Visit, arrive: int) -> int | None:
    """Earliest service start not before `arrive` inside one of the visit's windows (None: too late for all)."""
    if not visit.windows:
        return arrive
    starts = [max(arrive, w.start) for w in visit.windows if max(arrive, w.start) <= w.end]
    return min(starts) if starts else None


def _forward(problem: Problem, vehicle: Vehicle, order: list[int], depart: int, dur: np.ndarray):
    """(service starts, end time, first late visit position or None) leaving at `depart`."""
    here, clock, starts, late = vehicle.start, depart, [], None
    for pos, i in enumerate(order):
        visit = problem.visits[i]
        arrive = clock + int(dur[here, visit.location])
        begin = _service_start(visit, arrive)
        if begin is None:
            late = pos if late is None else late
            begin = arrive  # keep counting, to report every violation
        starts.append(begin)
        clock, here = begin + visit.service, visit.location
    end = clock + (int(dur[here, vehicle.end]) if vehicle.end is not None else 0)
    return starts, end, late


def schedule(problem: Problem, vehicle_index: int, order: list[int], latest_departure: bool = True) -> Schedule:
    """The schedule and the constraint violations of `vehicle_index` serving `order`."""
    vehicle = problem.vehicles[vehicle_index]
    dist, dur = np.asarray(problem.distances), np.asarray(problem.durations)
    starts, end, late = _forward(problem, vehicle, order, vehicle.shift_start, dur)
    depart = vehicle.shift_start
    if latest_departure and late is None and order:
        # Leave later by as much as the waits before each visit absorb without pushing the end.
        delay, waited, here, clock = None, 0, vehicle.start, vehicle.shift_start
        for i, begin in zip(order, starts, strict=True):
            visit = problem.visits[i]
            arrive = clock + int(dur[here, visit.location])
            waited += begin - arrive
            window_end = max((w.end for w in visit.windows if w.start <= begin <= w.end), default=None)
            if window_end is not None:  # delay beyond the waits so far pushes this service later
                room = waited + window_end - begin
                delay = room if delay is None else min(delay, room)
            clock, here = begin + visit.service, visit.location
        delay = waited if delay is None else min(delay, waited)
        if delay > 0:
            depart = vehicle.shift_start + delay
            starts, end, late = _forward(problem, vehicle, order, depart, dur)
    violations = []
    if late is not None:
        violations.append(f"window missed at position {late}")
    missing = [i for i in order if not problem.visits[i].skills <= vehicle.skills]
    if missing:
        violations.append(f"skills missing for visits {missing}")
    if vehicle.capacity is not None and sum(problem.visits[i].demand for i in order) > vehicle.capacity:
        violations.append("capacity exceeded")
    if vehicle.max_stops is not None and len(order) > vehicle.max_stops:
        violations.append("too many stops")
    if vehicle.shift_end is not None and end > vehicle.shift_end:
        violations.append("shift end exceeded")
    if vehicle.max_duration is not None and end - depart > vehicle.max_duration:
        violations.append("max duration exceeded")
    if len(set(order)) != len(order):
        violations.append("a visit served twice")
    here, distance = vehicle.start, 0
    for i in order:
        distance += int(dist[here, problem.visits[i].location])
        here = problem.visits[i].location
    if vehicle.end is not None:
        distance += int(dist[here, vehicle.end])
    return Schedule(tuple(starts), depart, end, distance, tuple(violations))


def as_route(problem: Problem, vehicle_index: int, order: list[int], latest_departure: bool = True) -> Route:
    s = schedule(problem, vehicle_index, order, latest_departure)
    return Route(vehicle_index, tuple(order), s.arrivals, s.start_time, s.end_time, s.distance, s.duration)


def violations(problem: Problem, routes) -> list[str]:
    """Every broken rule of a set of routes (empty: a feasible solution); for tests and the engine's own check."""
    out, seen, used = [], set(), set()
    for r in routes:
        if r.vehicle in used:
            out.append(f"vehicle {r.vehicle} has two routes")
        used.add(r.vehicle)
        s = schedule(problem, r.vehicle, list(r.visits))
        out += [f"vehicle {r.vehicle}: {v}" for v in s.violations]
        if tuple(r.arrivals) != s.arrivals or r.distance != s.distance:
            out.append(f"vehicle {r.vehicle}: reported schedule differs from the recomputed one")
        if seen & set(r.visits):
            out.append(f"visits {sorted(seen & set(r.visits))} on two routes")
        seen |= set(r.visits)
    return out
