"""Route quality and solve time of the optimizer against LKH-3 (elkai, best of 20 runs).

Random closed tours in a 30 km x 30 km square around Brisbane, a depot among the points.
Prints, per job size, the ratio of our tour length to LKH-3's and our solve time.
"""

import argparse
import platform
import statistics
import time

import numpy as np

from services.optimizer.matrix import GreatCircle
from services.optimizer.settings import OptimizerSettings
from services.optimizer.solver import RouteProblem, solve


def instance(n: int, seed: int) -> RouteProblem:
    rng = np.random.default_rng(seed)
    # 30 km x 30 km: 0.27 degrees of latitude, 0.30 of longitude at Brisbane
    pts = [(-27.47 + rng.uniform(-0.135, 0.135), 153.02 + rng.uniform(-0.15, 0.15)) for _ in range(n + 1)]
    m = GreatCircle(1.3, 35).build(pts)
    return RouteProblem(m.distance_m, m.duration_s, True, True, [0] * n, [None] * n, [1] * n, None)


def tour_length(p: RouteProblem, order: list[int]) -> int:
    d, nodes = p.distance_m, [p.n, *order, p.n]
    return int(sum(d[a, b] for a, b in zip(nodes, nodes[1:])))


def reference(p: RouteProblem) -> int:
    import elkai  # research licence: the benchmark's reference only, never the product
    order = elkai.DistanceMatrix(p.distance_m.tolist()).solve_tsp(runs=20)
    nodes = [int(i) for i in order]
    return int(sum(p.distance_m[a, b] for a, b in zip(nodes, nodes[1:])))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,25,50,100,200")
    parser.add_argument("--instances", type=int, default=5)
    args = parser.parse_args()
    s = OptimizerSettings()
    print(f"# optimizer vs LKH-3 (elkai, 20 runs) on {platform.processor() or platform.machine()}, "
          f"{args.instances} instances per size, one core")
    print("| stops | ratio median | ratio max | optimal | time median ms | time max ms | solver |")
    print("|---|---|---|---|---|---|---|")
    for n in [int(x) for x in args.sizes.split(",")]:
        ratios, times, solvers, optimal = [], [], set(), 0
        for seed in range(args.instances):
            p = instance(n, 1000 * n + seed)
            ref = reference(p)
            started = time.perf_counter()
            sol = solve(p, s.solver_ms_per_stop, s.solver_max_seconds, s.exact_max_stops)
            times.append((time.perf_counter() - started) * 1000)
            ratio = tour_length(p, sol.order) / ref
            ratios.append(ratio)
            optimal += ratio <= 1.0000001
            solvers.add(sol.solver)
        print(f"| {n} | {statistics.median(ratios):.4f} | {max(ratios):.4f} | {optimal}/{args.instances} | "
              f"{statistics.median(times):.0f} | {max(times):.0f} | {','.join(sorted(solvers))} |")


if __name__ == "__main__":
    main()
