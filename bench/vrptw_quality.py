"""Vehicle routing with time windows and capacity: our fleet engine beside PyVRP (default settings)
and OR-Tools (guided local search), each given the time ours took, one after another on one core:
PyVRP the same CPU time of its thread, OR-Tools (whose limit is wall-clock only) the same wall time.
The time column is ours: CPU seconds of the solving thread, wall seconds in brackets (this
machine is shared: the wall clock runs ahead of the CPU under other work).

Instances (bench/data/vrptw/README.md): Solomon 100-customer instances, two or three per class,
with the Euclidean distance truncated to one decimal (the exact literature's convention; the
best known is the least distance with any number of vehicles, optimal for most), and
Gehring-Homberger 200-customer instances with exact distances (kept to 1/1000), whose best known
(SINTEF) minimises vehicles first and distance second: we compare distance only, so a gap below
zero there means fewer kilometres with more vehicles. Fleet: 25 vehicles at 100, 50 at 200
(Solomon's and Gehring-Homberger's own fleet sizes).
"""

import argparse
import statistics
import time

import numpy as np
import pyvrp
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from bench.common import machine
from bench.vrp_data import DATA, best_known_vrptw, name_order, vrptw
from services.optimizer.vrp import Problem, check, engine, solve

QUICK = ["C101", "R101", "RC201"]


def fleet(name: str) -> int:
    return 50 if "_2_" in name else 25


def pyvrp_default(problem: Problem, cpu: float, wall: float) -> int | None:
    """PyVRP with its default parameters, all clients required, stopped at the CPU time ours used."""
    every = frozenset(range(len(problem.visits)))
    encoded = engine.Encoded(problem, every, every)
    result = pyvrp.solve(encoded.data, engine.CpuCap(cpu), seed=1, collect_stats=False)
    if not result.best.is_feasible():
        return None
    return int(result.best.distance())


def ortools_gls(problem: Problem, cpu: float, wall: float) -> int | None:
    """OR-Tools routing with guided local search for the wall time ours took (its limit is on the
    wall clock only); None if it finds no solution serving every customer."""
    dist = np.asarray(problem.distances, dtype=np.int64)
    n, k = dist.shape[0], len(problem.vehicles)
    service = np.zeros(n, dtype=np.int64)
    windows = {0: (problem.vehicles[0].shift_start, problem.vehicles[0].shift_end)}
    demand = np.zeros(n, dtype=np.int64)
    for v in problem.visits:
        service[v.location] = v.service
        windows[v.location] = (v.windows[0].start, v.windows[0].end)
        demand[v.location] = v.demand
    manager = pywrapcp.RoutingIndexManager(n, k, 0)
    routing = pywrapcp.RoutingModel(manager)
    arc = routing.RegisterTransitMatrix(dist.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(arc)
    travel = routing.RegisterTransitMatrix((dist + service[:, None]).tolist())
    horizon = windows[0][1]
    routing.AddDimension(travel, horizon, horizon, False, "time")
    time_dim = routing.GetDimensionOrDie("time")
    for node, (lo, hi) in windows.items():
        if node:
            time_dim.CumulVar(manager.NodeToIndex(node)).SetRange(lo, hi)
    for vehicle in range(k):
        time_dim.CumulVar(routing.Start(vehicle)).SetRange(*windows[0])
        time_dim.CumulVar(routing.End(vehicle)).SetRange(*windows[0])
    load = routing.RegisterUnaryTransitVector(demand.tolist())
    routing.AddDimensionWithVehicleCapacity(load, 0, [problem.vehicles[0].capacity] * k, True, "load")
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(int(wall * 1000))
    solution = routing.SolveWithParameters(params)
    return None if solution is None else int(solution.ObjectiveValue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="three 100-customer instances, no 200")
    parser.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True, help="PyVRP and OR-Tools")
    args = parser.parse_args()
    # This table measures CPU time: on a shared machine the wall-clock safety cap would cut ours short.
    engine.WALL_FACTOR = 1000.0
    best = best_known_vrptw()
    files = sorted((DATA / "vrptw").glob("*.vrptw"), key=lambda f: ("_2_" in f.name, name_order(f.name)))
    if args.quick:
        files = [f for f in files if f.name.split(".")[0] in QUICK]
    print(f"## VRPTW, Solomon 100 and Gehring-Homberger 200 ({machine()})")
    print("| instance | best known | ours | gap | vehicles | CPU (wall) | PyVRP default | gap | OR-Tools GLS | gap |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    gaps: dict[int, list[float]] = {100: [], 200: []}
    for f in files:
        inst = vrptw(f, fleet(f.name))
        n, bks = len(inst.problem.visits), best[inst.name]
        started, cpu_started = time.perf_counter(), time.thread_time()
        sol = solve(inst.problem)
        elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
        if check.violations(inst.problem, sol.routes) or sol.unassigned:
            raise AssertionError(f"{inst.name}: infeasible or incomplete")
        ours = sol.distance / inst.scale
        gaps[n].append(100 * (ours - bks) / bks)
        cells = []
        for peer in (pyvrp_default, ortools_gls) if args.peers else ():
            value = peer(inst.problem, cpu, elapsed)
            cells += (
                ["none", "—"]
                if value is None
                else [f"{value / inst.scale:.1f}", f"{100 * (value / inst.scale - bks) / bks:+.2f} %"]
            )
        cells = cells or ["—"] * 4
        print(
            f"| {inst.name} | {bks:.1f} | {ours:.1f} | {gaps[n][-1]:+.2f} % | {len(sol.routes)} "
            f"| {cpu:.1f} s ({elapsed:.0f} s) | " + " | ".join(cells) + " |"
        )
    for n, target in ((100, 2), (200, 4)):
        if gaps[n]:
            print(
                f"\n{n} customers, ours: median gap {statistics.median(gaps[n]):+.2f} %, worst {max(gaps[n]):+.2f} % "
                f"(target: median <= {target} %)"
            )


if __name__ == "__main__":
    main()
