"""The fleet engine (services/optimizer/vrp): every route it returns keeps every rule, the same input
gives the same solution, and what cannot be served is left out for an honest reason."""

import numpy as np

from services.optimizer.vrp import Effort, Problem, Vehicle, Visit, Window, check, solve
from shared.vocabulary import UnroutedReason

QUICK = Effort(iterations=600)


def plane(n: int, seed: int, speed: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Distances (m) and durations (s) between `n` random points of a 10 km square."""
    pts = np.random.default_rng(seed).uniform(0, 10_000, (n, 2))
    dist = np.rint(np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))).astype(np.int64)
    return dist, (dist / speed).astype(np.int64)


def line(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points 0..n-1 on a line 1 km apart, 100 s apart."""
    idx = np.arange(n)
    dist = np.abs(idx[:, None] - idx[None, :]) * 1000
    return dist, dist // 10


def feasible(problem: Problem, solution) -> None:
    assert check.violations(problem, solution.routes) == []
    served = [i for r in solution.routes for i in r.visits]
    assert sorted(served + list(solution.unassigned)) == list(range(len(problem.visits)))
    assert solution.distance == sum(r.distance for r in solution.routes)


def mixed_problem(seed: int = 3) -> Problem:
    dist, dur = plane(31, seed)
    visits = tuple(
        Visit(
            location=i,
            demand=1 + i % 3,
            service=60,
            windows=(Window(0, 3_000), Window(5_000, 8_000)) if i % 3 == 0 else (),
            skills=frozenset({"cold"}) if i % 7 == 0 else frozenset(),
            priority=i % 2,
        )
        for i in range(1, 31)
    )
    vehicles = (
        Vehicle(start=0, end=0, capacity=15, shift_end=9_000),
        Vehicle(start=0, end=None, capacity=15, skills=frozenset({"cold"})),
        Vehicle(start=0, end=0, capacity=15, max_stops=5, max_duration=4_000),
    )
    return Problem(dist, dur, visits, vehicles)


def test_mixed_fleet_routes_keep_every_rule():
    problem = mixed_problem()
    solution = solve(problem, QUICK)
    feasible(problem, solution)
    assert solution.routes and solution.engine == "pyvrp"


def test_same_input_same_solution():
    problem = mixed_problem(4)
    first, second = solve(problem, QUICK), solve(problem, QUICK)
    assert (first.routes, dict(first.unassigned)) == (second.routes, dict(second.unassigned))


def test_lower_priority_is_dropped_first():
    # One vehicle with room for 3 of 6 parcels: the three high-priority visits are the ones served,
    # although the low-priority ones lie closer to the depot.
    dist, dur = line(7)
    visits = tuple(Visit(location=i, demand=1, priority=1 if i > 3 else 0) for i in range(1, 7))
    problem = Problem(dist, dur, visits, (Vehicle(start=0, end=0, capacity=3),))
    solution = solve(problem, QUICK)
    feasible(problem, solution)
    assert sorted(solution.routes[0].visits) == [3, 4, 5]
    assert dict(solution.unassigned) == dict.fromkeys([0, 1, 2], UnroutedReason.CAPACITY_EXCEEDED)


def test_skills_go_to_the_vehicle_that_has_them():
    dist, dur = line(6)
    visits = tuple(Visit(location=i, skills=frozenset({"cold"}) if i in (2, 4) else frozenset()) for i in range(1, 6))
    vehicles = (Vehicle(start=0, end=0, max_stops=3), Vehicle(start=5, end=5, skills=frozenset({"cold"}), max_stops=3))
    solution = solve(Problem(dist, dur, visits, vehicles), QUICK)
    feasible(Problem(dist, dur, visits, vehicles), solution)
    cold = next(r for r in solution.routes if r.vehicle == 1)
    assert {1, 3} <= set(cold.visits) and not solution.unassigned
    # Nobody has "hazmat": that visit is unassigned for its skills.
    hazmat = (*visits, Visit(location=3, skills=frozenset({"hazmat"})))
    solution = solve(Problem(dist, dur, hazmat, vehicles), QUICK)
    assert dict(solution.unassigned) == {5: UnroutedReason.SKILLS}


def test_two_windows_use_the_second_when_the_first_cannot_be_met():
    # Visit A at 5 km must be served in [0, 100] or [2000, 2500]: 500 s away, so only the second works.
    dist, dur = line(6)
    visits = (Visit(location=5, windows=(Window(0, 100), Window(2_000, 2_500))), Visit(location=1))
    problem = Problem(dist, dur, visits, (Vehicle(start=0, end=0),))
    solution = solve(problem, QUICK)
    feasible(problem, solution)
    route = solution.routes[0]
    assert 2_000 <= route.arrivals[route.visits.index(0)] <= 2_500 and not solution.unassigned
    # With only windows that close before it can be reached, it is a time-window drop.
    late = (Visit(location=5, windows=(Window(0, 100), Window(200, 300))), Visit(location=1))
    solution = solve(Problem(dist, dur, late, (Vehicle(start=0, end=0),)), QUICK)
    assert dict(solution.unassigned) == {0: UnroutedReason.TIME_WINDOW_VIOLATION}


def test_open_route_ends_at_its_last_visit():
    dist, dur = line(6)
    visits = tuple(Visit(location=i, service=30) for i in range(1, 6))
    problem = Problem(dist, dur, visits, (Vehicle(start=0, end=None),))
    solution = solve(problem, QUICK)
    feasible(problem, solution)
    route = solution.routes[0]
    assert route.visits == (0, 1, 2, 3, 4) and route.distance == 5_000
    assert route.end_time == route.arrivals[-1] + 30


def test_capacity_splits_the_work_and_shift_end_is_kept():
    dist, dur = plane(21, 8)
    visits = tuple(Visit(location=i, demand=3, service=120) for i in range(1, 21))
    vehicles = tuple(Vehicle(start=0, end=0, capacity=15, shift_end=20_000) for _ in range(5))
    problem = Problem(dist, dur, visits, vehicles)
    solution = solve(problem, QUICK)
    feasible(problem, solution)
    assert not solution.unassigned and len(solution.routes) == 4
    # A visit that alone outweighs every vehicle is a capacity drop; one beyond any shift a shift drop.
    heavy = (*visits, Visit(location=3, demand=16), Visit(location=4, service=30_000))
    solution = solve(Problem(dist, dur, heavy, vehicles), QUICK)
    assert dict(solution.unassigned) == {20: UnroutedReason.CAPACITY_EXCEEDED, 21: UnroutedReason.SHIFT}


def test_checker_catches_broken_routes():
    dist, dur = line(4)
    visits = (Visit(location=1, windows=(Window(0, 50),)), Visit(location=2, demand=5))
    problem = Problem(dist, dur, visits, (Vehicle(start=0, end=0, capacity=4),))
    route = check.as_route(problem, 0, [0, 1])
    assert {v.split(":")[1].strip() for v in check.violations(problem, [route])} == {
        "window missed at position 0",
        "capacity exceeded",
    }


def test_a_plain_tour_takes_our_own_local_search():
    dist, dur = plane(30, 5)
    visits = tuple(Visit(location=i, demand=1) for i in range(1, 30))
    problem = Problem(dist, dur, visits, (Vehicle(start=0, end=0, capacity=50),))
    solution = solve(problem)
    feasible(problem, solution)
    assert solution.engine == "local_search" and len(solution.routes[0].visits) == 29
    # A window anywhere makes it a constrained job for PyVRP.
    windowed = (*visits[:-1], Visit(location=29, windows=(Window(0, 10_000),)))
    assert solve(Problem(dist, dur, windowed, problem.vehicles), QUICK).engine == "pyvrp"
