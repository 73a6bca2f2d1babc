"""`routemate optimize` of a 20-stop job as a user runs it: a fresh process each time.

Wall time and CPU time (user+sys of the child, from getrusage) per run, and what the command
itself reports: `solver.time_ms` (the solve alone) and `solver.load_ms` (loading the compiled
search before the clock starts). CPU time is printed beside wall time because on a shared
machine the wall time also counts the other processes' turns.

`--quality N`: the search a 20-stop `routemate optimize` runs (plain Python, ils_small.py, stopping
on patience) beside the optimizer service's (numba, ils.py, full effort) on N random 20-stop jobs
of each shape (closed tour from a depot, open end from a depot, no depot) with great-circle
costs, both against LKH-3 (elkai, best of 20 runs, the benchmark's reference only): how often the
two give the same length, the ratio to LKH-3 (median, worst), and CPU per solve.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import ROOT, machine
from bench.pipeline_burst import job

WALL_TARGET_S = 1.0


def run_once(path: Path) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "routemate_cli.main", "optimize", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    solver = json.loads(done.stdout)["solver"]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "time_ms": solver["time_ms"], "load_ms": solver.get("load_ms", float("nan"))}


def imports(path: Path, runs: int) -> None:
    """Where the command's start goes: `python -X importtime`, self time summed per top-level
    package (the project's own per service), median of `runs` fresh processes."""
    totals: list[dict[str, int]] = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "routemate_cli.main", "optimize", str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        per: dict[str, int] = {}
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "|" not in line or "self" in line:
                continue
            self_us, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
            parts = name.split(".")
            key = ".".join(parts[:2]) if parts[0] in ("services", "shared", "routemate_cli") else parts[0]
            per[key] = per.get(key, 0) + int(self_us)
        totals.append(per)
    keys = {key for per in totals for key in per}
    med = {key: statistics.median(per.get(key, 0) for per in totals) for key in keys}
    print(f"# routemate optimize imports (python -X importtime, self ms, median of {runs}); {machine()}")
    print(f"total {sum(med.values()) / 1000:.0f} ms; largest:")
    for key, us in sorted(med.items(), key=lambda kv: -kv[1])[:15]:
        print(f"  {key:<32} {us / 1000:6.1f}")


SHAPES = {"closed tour": (True, True), "open end": (True, False), "no depot": (False, False)}


def _problem(n: int, seed: int, depot: bool, ret: bool):
    from services.optimizer.adapters import great_circle
    from services.optimizer.settings import OptimizerSettings
    from services.optimizer.solver import RouteProblem

    rng = np.random.default_rng(seed)
    pts = [(-27.47 + rng.uniform(-0.135, 0.135), 153.02 + rng.uniform(-0.15, 0.15)) for _ in range(n + depot)]
    m = great_circle(OptimizerSettings()).build(pts)
    return RouteProblem(m.distance_m, m.duration_s, depot, ret, [0] * n, [None] * n, [1] * n, None)


def _length(cost: np.ndarray, anchor: int, order: list[int]) -> int:
    nodes = [anchor, *order, anchor]
    return int(sum(cost[a, b] for a, b in zip(nodes, nodes[1:], strict=False)))


def quality(instances: int, stops: int) -> None:
    import elkai  # research licence: the benchmark's reference only, never the product

    from services.optimizer import ils, solver

    ils.warm_up()
    print(f"# 20-stop search without numba vs the compiled one, {instances} jobs per shape; {machine()}")
    print(
        "| shape | same length as compiled | plain/LKH-3 median (worst) | compiled/LKH-3 median (worst) "
        "| CPU ms plain | CPU ms compiled |"
    )
    print("|---|---|---|---|---|---|")
    for shape, (depot, ret) in SHAPES.items():
        same, plain, compiled, cpu_plain, cpu_compiled = 0, [], [], [], []
        for seed in range(instances):
            p = _problem(stops, 7000 + seed, depot, ret)
            cost, _ = solver._cycle(p)
            ref_tour = [int(i) for i in elkai.DistanceMatrix(cost.tolist()).solve_tsp(runs=20)]
            ref = int(sum(cost[a, b] for a, b in zip(ref_tour, ref_tour[1:], strict=False)))
            lengths = []
            for fast, cpu in ((False, cpu_plain), (True, cpu_compiled)):
                started = time.process_time()
                order = solver.local_search_route(p, 150, 10.0, compiled=fast)
                cpu.append((time.process_time() - started) * 1000)
                lengths.append(_length(cost, p.n, order))
            same += lengths[0] == lengths[1]
            plain.append(lengths[0] / ref)
            compiled.append(lengths[1] / ref)
        print(
            f"| {shape} | {same}/{instances} | {statistics.median(plain):.4f} ({max(plain):.4f}) | "
            f"{statistics.median(compiled):.4f} ({max(compiled):.4f}) | {statistics.median(cpu_plain):.0f} | "
            f"{statistics.median(cpu_compiled):.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stops", type=int, default=20)
    parser.add_argument("--quality", type=int, default=0, metavar="N", help="compare the searches on N jobs per shape")
    parser.add_argument("--imports", action="store_true", help="where the start goes, per package")
    args = parser.parse_args()
    if args.quality:
        quality(args.quality, args.stops)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "job.json"
        path.write_text(json.dumps(job(7, args.stops)))
        run_once(path)  # the first run may compile the search into numba's cache
        if args.imports:
            imports(path, args.runs)
            return
        runs = [run_once(path) for _ in range(args.runs)]
    med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(f"# routemate optimize, {args.stops} stops, {args.runs} fresh processes (median); {machine()}")
    print("| wall s | CPU s (user+sys) | solver.time_ms | solver.load_ms | target |")
    print("|---|---|---|---|---|")
    verdict = "met" if med["wall"] < WALL_TARGET_S else "MISSED"
    print(
        f"| {med['wall']:.2f} | {med['cpu']:.2f} | {med['time_ms']:.1f} | {med['load_ms']:.0f} | "
        f"wall < {WALL_TARGET_S:.0f} s: {verdict} |"
    )


if __name__ == "__main__":
    main()
