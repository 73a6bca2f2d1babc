"""Route quality and solve time: our optimizer beside OR-Tools, VROOM and PyVRP, against LKH-3.

Random closed tours in a 30 km x 30 km square around Brisbane with a depot among the points,
the instances of issue 6. Every engine gets the same integer distance matrix (metres) and one
core; the reference is LKH-3 (elkai, best of 20 runs), whose licence keeps it out of the product.
Each cell is the median (worst) ratio of tour length to LKH-3's and the median (worst) time.
"""

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from bench.common import machine
from services.optimizer.adapters import great_circle
from services.optimizer.settings import OptimizerSettings
from services.optimizer.solver import RouteProblem, solve

Engine = Callable[[RouteProblem], list[int]]


def instance(n: int, seed: int) -> RouteProblem:
    rng = np.random.default_rng(seed)
    # 30 km x 30 km: 0.27 degrees of latitude, 0.30 of longitude at Brisbane
    pts = [(-27.47 + rng.uniform(-0.135, 0.135), 153.02 + rng.uniform(-0.15, 0.15)) for _ in range(n + 1)]
    m = great_circle(OptimizerSettings(circuity_factor=1.3, average_speed_kmh=35)).build(pts)
    return RouteProblem(m.distance_m, m.duration_s, True, True, [0] * n, [None] * n, [1] * n, None)


def tour_length(p: RouteProblem, order: list[int]) -> int:
    if sorted(order) != list(range(p.n)):
        raise AssertionError("an engine returned a route that does not visit every stop once")
    d, nodes = p.distance_m, [p.n, *order, p.n]
    return int(sum(d[a, b] for a, b in zip(nodes, nodes[1:], strict=False)))


def reference(p: RouteProblem) -> int:
    import elkai  # research licence: the benchmark's reference only, never the product

    order = elkai.DistanceMatrix(p.distance_m.tolist()).solve_tsp(runs=20)
    nodes = [int(i) for i in order]
    return int(sum(p.distance_m[a, b] for a, b in zip(nodes, nodes[1:], strict=False)))


def ours(settings: OptimizerSettings) -> Engine:
    def run(p: RouteProblem) -> list[int]:
        return solve(
            p,
            settings.solver_ms_per_stop,
            settings.solver_budget(p.n),  # the service's per-size budget
            settings.exact_max_stops,
            settings.solver_kicks_per_stop,
        ).order

    return run


def ortools_default(p: RouteProblem) -> list[int]:
    """OR-Tools routing as its guide suggests: cheapest arc, then guided local search for 1 s."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    manager = pywrapcp.RoutingIndexManager(p.n + 1, 1, p.n)
    routing = pywrapcp.RoutingModel(manager)
    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitMatrix(p.distance_m.tolist()))
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromSeconds(1)
    solution = routing.SolveWithParameters(params)
    order, index = [], solution.Value(routing.NextVar(routing.Start(0)))
    while not routing.IsEnd(index):
        order.append(manager.IndexToNode(index))
        index = solution.Value(routing.NextVar(index))
    return order


def vroom_default(p: RouteProblem) -> list[int]:
    """VROOM (pyvroom) at its default exploration level 5, one thread, metres as the cost."""
    import vroom

    problem = vroom.Input()
    problem.set_durations_matrix(profile="car", matrix_input=p.distance_m.astype(np.uint32))
    problem.add_vehicle(vroom.Vehicle(1, start=p.n, end=p.n))
    problem.add_job([vroom.Job(i, location=i) for i in range(p.n)])
    routes = problem.solve(exploration_level=5, nb_threads=1).routes
    return [int(i) for i in routes[routes["type"] == "job"]["id"]]


def pyvrp_default(p: RouteProblem) -> list[int]:
    """PyVRP's hybrid genetic search, stopped after 8 x stops iterations without improvement."""
    import pyvrp
    from pyvrp.stop import MaxRuntime, MultipleCriteria, NoImprovement

    model = pyvrp.Model()
    locations = [model.add_location(x=0, y=0) for _ in range(p.n + 1)]
    depot = model.add_depot(locations[p.n])
    for i in range(p.n):
        model.add_client(locations[i], delivery=[0])
    model.add_vehicle_type(1, capacity=[0], start_depot=depot, end_depot=depot)
    d = p.distance_m.tolist()
    for i, a in enumerate(locations):
        for j, b in enumerate(locations):
            if i != j:
                model.add_edge(a, b, distance=d[i][j], duration=d[i][j])
    stop = MultipleCriteria([NoImprovement(max(100, 8 * p.n)), MaxRuntime(60)])
    result = model.solve(stop=stop, seed=7, display=False)
    return [activity.idx for activity in result.best.routes()[0] if activity.is_client()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,25,50,100,200")
    parser.add_argument("--instances", type=int, default=5)
    parser.add_argument(
        "--engines",
        default="routemate,ortools,vroom,pyvrp",
        help="comma-separated; vroom takes about 25 s a job at 200 stops",
    )
    args = parser.parse_args()
    settings = OptimizerSettings()
    available = {
        "routemate": ours(settings),
        "ortools": ortools_default,
        "vroom": vroom_default,
        "pyvrp": pyvrp_default,
    }
    titles = {
        "routemate": "RouteMate",
        "ortools": "OR-Tools default GLS 1 s",
        "vroom": "VROOM default",
        "pyvrp": "PyVRP no-improvement stop",
    }
    engines = [e for e in args.engines.split(",") if e]
    solve(instance(12, 0))  # load the compiled local search once, as a running optimizer has
    print(
        f"# optimizer quality vs LKH-3 (elkai, best of 20 runs) on {machine()}; "
        f"{args.instances} random closed tours per size, one core per solve"
    )
    print(
        "# cells: ratio to LKH-3 median (worst) · time median (worst); RouteMate targets: "
        "<= 25 stops 1.000 in <= 50 ms, 100 stops <= 1.005 in <= 1 s, 200 stops <= 1.02 in <= 2 s"
    )
    print("| stops | " + " | ".join(titles[e] for e in engines) + " |")
    print("|---|" + "---|" * len(engines))
    for n in [int(x) for x in args.sizes.split(",")]:
        ratios: dict[str, list[float]] = {e: [] for e in engines}
        times: dict[str, list[float]] = {e: [] for e in engines}
        for seed in range(args.instances):
            p = instance(n, 1000 * n + seed)
            ref = reference(p)
            for e in engines:
                started = time.perf_counter()
                order = available[e](p)
                times[e].append(time.perf_counter() - started)
                ratios[e].append(tour_length(p, order) / ref)
        cells = [
            f"{statistics.median(ratios[e]):.4f} ({max(ratios[e]):.4f}) · "
            f"{_duration(statistics.median(times[e]))} ({_duration(max(times[e]))})"
            for e in engines
        ]
        print(f"| {n} | " + " | ".join(cells) + " |", flush=True)


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


if __name__ == "__main__":
    main()
