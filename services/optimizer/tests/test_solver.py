import itertools

import numpy as np
import pytest

from services.optimizer.adapters import great_circle
from services.optimizer.settings import OptimizerSettings
from services.optimizer.solver import RouteProblem, _ends, _with_dummy, held_karp, ortools_route, solve


def brisbane(n: int, seed: int) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    return [(-27.47 + rng.uniform(-0.13, 0.13), 153.02 + rng.uniform(-0.15, 0.15)) for _ in range(n)]


def problem(points, depot=True, ret=True, windows=None, demands=None, capacity=None) -> RouteProblem:
    m = great_circle(OptimizerSettings(circuity_factor=1.3, average_speed_kmh=35)).build(points)
    n = len(points) - (1 if depot else 0)
    return RouteProblem(
        m.distance_m, m.duration_s, depot, ret, [120] * n, windows or [None] * n, demands or [1] * n, capacity
    )


def length(p: RouteProblem, order: list[int]) -> int:
    d, prev, total = p.distance_m, (p.n if p.has_depot else None), 0
    for node in order:
        total += d[prev, node] if prev is not None else 0
        prev = node
    return total + (d[prev, p.n] if p.return_to_depot else 0)


def brute_force(p: RouteProblem) -> int:
    return min(length(p, list(perm)) for perm in itertools.permutations(range(p.n)))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("depot, ret", [(True, True), (True, False), (False, False)])
def test_small_jobs_are_solved_to_optimality(seed, depot, ret):
    p = problem(brisbane(8, seed), depot, ret)
    solution = solve(p)
    assert solution.solver == "exact"
    assert sorted(solution.order) == list(range(p.n))
    assert length(p, solution.order) == brute_force(p)


@pytest.mark.parametrize("seed", range(3))
def test_the_search_solvers_match_the_optimum_on_small_closed_tours(seed):
    p = problem(brisbane(8, seed))
    assert length(p, solve(p, exact_max=0).order) == brute_force(p)


def asymmetric(n: int, depot: bool, ret: bool, seed: int) -> RouteProblem:
    """Road-like costs that differ by direction (one-way streets), which 2-opt must price right."""
    rng = np.random.default_rng(seed)
    size = n + (1 if depot else 0)
    base = rng.integers(1_000, 20_000, (size, size))
    cost = (base + base.T) // 2 + rng.integers(0, 4_000, (size, size))
    np.fill_diagonal(cost, 0)
    return RouteProblem(
        cost.astype(np.int64), cost.astype(np.int64) // 10, depot, ret, [0] * n, [None] * n, [1] * n, None
    )


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("depot, ret", [(True, True), (True, False), (False, False)])
def test_local_search_finds_the_optimum_on_asymmetric_costs(seed, depot, ret):
    p = asymmetric(11, depot, ret, seed)
    start, end = _ends(p)
    optimum = held_karp(_with_dummy(p.distance_m), p.n, start, end)
    solution = solve(p, exact_max=0)
    assert solution.solver == "local_search"
    assert sorted(solution.order) == list(range(p.n))
    assert length(p, solution.order) == length(p, optimum)


def test_a_capacity_the_job_fits_in_does_not_take_the_constrained_solver():
    p = problem(brisbane(31, 2), capacity=30)
    solution = solve(p)
    assert solution.solver == "local_search" and not solution.unrouted and len(solution.order) == 30


def test_the_time_cap_stops_a_huge_job_with_a_whole_route():
    p = problem(brisbane(801, 5))
    solution = solve(p, max_s=0.2, kicks_per_stop=100_000)
    assert sorted(solution.order) == list(range(800))
    assert solution.solve_ms < 10_000  # 800 x 100,000 kicks would run for hours without the cap


def test_held_karp_on_a_line_visits_it_in_order():
    xs = np.array([0, 3, 1, 2, 4])
    cost = np.abs(xs[:, None] - xs[None, :])
    cost = np.pad(cost, ((0, 1), (0, 1)))  # dummy start/end at index 5
    order = held_karp(cost, 5, 5, 5)
    assert [int(xs[i]) for i in order] in ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0])


def test_larger_jobs_route_every_stop_once():
    p = problem(brisbane(61, 7))  # 60 stops and a depot
    solution = solve(p, ms_per_stop=2)
    assert sorted(solution.order) == list(range(60)) and not solution.unrouted


def test_impossible_windows_leave_stops_unrouted_with_the_reason():
    pts = [(-27.40, 153.0), (-27.45, 153.05), (-27.5, 153.1), (-27.47, 153.02)]
    p = problem(pts, windows=[(0, 60), None, (0, 100_000)])
    solution = solve(p)
    assert solution.unrouted == {0: "TIME_WINDOW_VIOLATION"}
    assert sorted(solution.order) == [1, 2]


def test_windows_are_met_by_waiting():
    pts = [(-27.40, 153.0), (-27.45, 153.05), (-27.5, 153.1), (-27.47, 153.02)]
    p = problem(pts, windows=[(3000, 3600), None, None])
    solution = solve(p)
    arrival = dict(zip(solution.order, solution.arrival_s, strict=False))
    assert 3000 <= arrival[0] <= 3600 and not solution.unrouted


def test_capacity_drops_what_does_not_fit():
    p = problem(brisbane(6, 3), demands=[2, 2, 2, 2, 2], capacity=6)
    solution = solve(p)
    assert len(solution.order) == 3
    assert set(solution.unrouted.values()) == {"CAPACITY_EXCEEDED"}


@pytest.mark.parametrize("n", [9, 120])
def test_the_same_job_gives_the_same_route(n):
    p = problem(brisbane(n + 1, 11))
    assert solve(p).order == solve(p).order


def dumas_n40w20() -> RouteProblem:
    """Dumas et al.'s TSPTW instance n40w20.001 (bench/data/tsptw) in the optimizer's layout: its
    integer travel times as given, stops 0..39, the depot last; the proven optimum is 500."""
    from bench.vrp_data import DATA, tsptw

    p = tsptw(DATA / "tsptw" / "n40w20.001.tsptw").problem
    n = len(p.visits)
    idx = [v.location for v in p.visits] + [0]
    m = np.asarray(p.distances)[np.ix_(idx, idx)]
    windows = [(v.windows[0].start, v.windows[0].end) for v in p.visits]
    return RouteProblem(m, m, True, True, [0] * n, windows, [0] * n, None)


def test_a_published_tsptw_is_served_whole_where_the_previous_path_gave_up_a_stop():
    p = dumas_n40w20()
    order, dropped, _ = ortools_route(p, 9.0, 1.8)  # the previous constrained path
    assert len(dropped) == 1  # reported TIME_WINDOW_VIOLATION although a feasible tour exists
    solution = solve(p)
    assert solution.solver == "pyvrp" and not solution.unrouted and sorted(solution.order) == list(range(40))
    assert length(p, solution.order) == 500  # the optimum
    for stop, arrival in zip(solution.order, solution.arrival_s, strict=True):
        assert p.windows[stop][0] <= arrival <= p.windows[stop][1]
    assert solve(p).order == solution.order  # same job, same route: the search stops on effort


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("depot, ret", [(True, True), (True, False), (False, False)])
def test_the_plain_python_search_finds_the_optimum_on_asymmetric_costs(seed, depot, ret):
    """Under `compiled_min` stops the search runs without numba (routemate optimize): as exact."""
    p = asymmetric(11, depot, ret, seed)
    start, end = _ends(p)
    optimum = held_karp(_with_dummy(p.distance_m), p.n, start, end)
    solution = solve(p, exact_max=0, compiled_min=12)
    assert solution.solver == "local_search"
    assert sorted(solution.order) == list(range(p.n))
    assert length(p, solution.order) == length(p, optimum)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("depot, ret", [(True, True), (True, False), (False, False)])
def test_a_20_stop_job_is_as_short_without_numba_as_with_it(seed, depot, ret):
    p = problem(brisbane(20 + depot, 100 + seed), depot, ret)
    plain, compiled = solve(p, compiled_min=21), solve(p)
    assert sorted(plain.order) == list(range(20))
    assert length(p, plain.order) == length(p, compiled.order)
    assert solve(p, compiled_min=21).order == plain.order  # the same job, the same route


def test_the_time_cap_stops_the_plain_python_search_with_a_whole_route():
    p = asymmetric(60, True, True, 5)  # asymmetric: no early stop on patience, only the cap ends it
    solution = solve(p, max_s=0.2, kicks_per_stop=100_000, compiled_min=1_000)
    assert sorted(solution.order) == list(range(60))
    assert solution.solve_ms < 10_000  # 60 x 100,000 kicks in plain Python would run for hours without the cap
