"""TSP with time windows, one vehicle: our fleet engine beside the previous constrained path.

Instances: Dumas et al. (1995) sets shipped under bench/data/tsptw (their integer travel times used
as given, service included; best-known = optimal values, the LKH-3 tours shipped beside them), and
random windows we generate around a nearest-neighbour day, feasible by construction (reference:
the best of that tour and every route found in the row). Columns: best known, ours (length, gap,
served/all, time), and the previous path (OR-Tools GLS on the clock, 9 ms per stop as the optimizer
service ran it) with its served count: a stop it leaves out was reported TIME_WINDOW_VIOLATION.
"""

import argparse
import statistics
import time

import numpy as np

from bench.common import machine
from bench.vrp_data import DATA, Instance, name_order, random_tsptw, tsptw
from services.optimizer.solver import RouteProblem, ortools_route
from services.optimizer.vrp import check, engine, solve

RANDOM = [(30, 900, 1), (30, 900, 2), (50, 1200, 1), (50, 1200, 2), (80, 1800, 1), (100, 1800, 1)]
QUICK_DUMAS = ["n20w20.001", "n40w40.002", "n60w20.001"]


def old_path(inst: Instance) -> tuple[int, int, float]:
    """(length, served, seconds) of the previous optimizer's constrained path on the same job."""
    p = inst.problem
    n = len(p.visits)
    idx = [v.location for v in p.visits] + [0]  # stops, then the depot last (solver.py's layout)
    dist = np.asarray(p.distances)[np.ix_(idx, idx)]
    dur = np.asarray(p.durations)[np.ix_(idx, idx)]
    windows = [(v.windows[0].start, v.windows[0].end) for v in p.visits]
    rp = RouteProblem(dist, dur, True, True, [v.service for v in p.visits], windows, [0] * n, None)
    started = time.thread_time()
    order, _, _ = ortools_route(rp, 9.0, 1.8)
    elapsed = time.thread_time() - started
    return check.schedule(p, 0, order).distance, len(order), elapsed


def row(inst: Instance, with_old: bool) -> dict:
    started = time.thread_time()
    sol = solve(inst.problem)
    elapsed = time.thread_time() - started  # CPU of the solving thread: the machine is shared
    if check.violations(inst.problem, sol.routes):
        raise AssertionError(f"{inst.name}: an infeasible route")
    out = {
        "name": inst.name,
        "n": len(inst.problem.visits),
        "ours": sol.distance,
        "served": sum(len(r.visits) for r in sol.routes),
        "time": elapsed,
        "best": inst.best_known,
    }
    if with_old:
        out["old"], out["old_served"], out["old_time"] = old_path(inst)
    return out


def gap(value: float, best: float) -> float:
    return 100.0 * (value - best) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="three published and two random instances")
    parser.add_argument("--no-old", action="store_true", help="leave out the previous path's column")
    args = parser.parse_args()
    engine.WALL_FACTOR = 1000.0  # CPU time is measured: the wall-clock safety cap stays out of it
    files = sorted((DATA / "tsptw").glob("*.tsptw"), key=lambda f: name_order(f.stem))
    if args.quick:
        files = [f for f in files if f.stem in QUICK_DUMAS]
    randoms = RANDOM[:2] if args.quick else RANDOM
    instances = [tsptw(f) for f in files] + [random_tsptw(n, seed, w) for n, w, seed in randoms]
    print(f"## TSPTW, one vehicle ({machine()})")
    print("| instance | best known | ours | gap | served | CPU time | previous path | gap | served |")
    print("|---|---|---|---|---|---|---|---|---|")
    gaps, all_served = [], True
    for inst in instances:
        r = row(inst, not args.no_old)
        best = r["best"]
        if inst.name.startswith("random"):  # the construction tour or anything found in the row
            feasible_old = r.get("old_served") == r["n"]
            best = min([best, r["ours"]] + ([r["old"]] if feasible_old else []))
        all_served &= r["served"] == r["n"]
        g = gap(r["ours"], best)
        gaps.append(g)
        old = "— | — | —"
        if "old" in r:  # a gap only means something when the route serves every stop
            old_gap = f"{gap(r['old'], best):+.2f} %" if r["old_served"] == r["n"] else "—"
            old = f"{r['old']} | {old_gap} | {r['old_served']}/{r['n']}"
        print(
            f"| {inst.name} | {best:g} | {r['ours']} | {g:+.2f} % | {r['served']}/{r['n']} "
            f"| {r['time']:.2f} s | {old} |"
        )
    print(
        f"\nours: median gap {statistics.median(gaps):+.2f} %, worst {max(gaps):+.2f} %; "
        f"every stop served: {'yes' if all_served else 'NO'} (targets: median <= 1 %, worst <= 3 %, all served)"
    )


if __name__ == "__main__":
    main()
