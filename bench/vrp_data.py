"""Readers for the shipped routing benchmark instances (bench/data/*/README.md names their sources)
and the random time-window instances we generate, all as services.optimizer.vrp Problems."""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.optimizer.vrp import Problem, Vehicle, Visit, Window

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Instance:
    name: str
    problem: Problem
    best_known: float | None  # in the instance's own unit (see `scale`)
    scale: int = 1  # matrix units per reported unit (10: distances are in tenths)
    source_tour: list[int] | None = None  # the best-known tour's visit order, when shipped


def _sections(text: str) -> dict[str, list[str]]:
    """TSPLIB-style file: header keys and the lines of each *_SECTION."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line == "EOF":
            continue
        if line.endswith("_SECTION"):
            current = line
            out[current] = []
        elif ":" in line and not line[0].isdigit():
            key, _, value = line.partition(":")
            out[key.strip()] = [value.strip()]
            current = None
        elif current is not None:
            out[current].append(line)
    return out


def tsptw(path: Path) -> Instance:
    """A Dumas et al. TSPTW instance in LKH-3's format: an integer travel-time matrix (service included)
    used as given for both time and length, windows per node, node 1 the depot whose window closes the route."""
    s = _sections(path.read_text())
    n = int(s["DIMENSION"][0])
    matrix = np.array([int(x) for line in s["EDGE_WEIGHT_SECTION"] for x in line.split()], dtype=np.int64).reshape(n, n)
    windows = {int(a) - 1: (int(b), int(c)) for a, b, c in (line.split() for line in s["TIME_WINDOW_SECTION"])}
    visits = tuple(Visit(location=i, windows=(Window(*windows[i]),)) for i in range(1, n))
    vehicle = Vehicle(start=0, end=0, shift_start=windows[0][0], shift_end=windows[0][1])
    tours = list(path.parent.glob(f"{path.stem}.*.tour"))
    best, tour = None, None
    if tours:
        best = float(tours[0].name.split(".")[-2])
        t = _sections(tours[0].read_text())["TOUR_SECTION"]
        tour = [int(x) - 2 for x in t if int(x) > 1]  # visit index = node - 2
    return Instance(path.stem, Problem(matrix, matrix, visits, (vehicle,)), best, 1, tour)


def random_tsptw(n: int, seed: int, width: int) -> Instance:
    """`n` random stops in a 10 km square at 10 m/s, 60 s service; windows of `width` seconds placed
    at random around the arrival times of a plausible day's tour (nearest neighbour from the depot),
    so that tour is feasible by construction and the windows are not all trivially loose."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, 10_000, (n + 1, 2))
    dist = np.rint(np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))).astype(np.int64)
    dur = dist // 10
    order, left = [], set(range(1, n + 1))
    while left:
        here = order[-1] if order else 0
        order.append(min(left, key=lambda j: (dist[here, j], j)))
        left.remove(order[-1])
    clock, here, arrive = 0, 0, {}
    for i in order:
        clock += int(dur[here, i])
        arrive[i] = clock
        clock += 60
        here = i
    end = clock + int(dur[here, 0])
    visits = []
    for i in range(1, n + 1):
        lo = max(0, arrive[i] - int(rng.integers(0, width + 1)))
        visits.append(Visit(location=i, service=60, windows=(Window(lo, lo + width),)))
    tour = [i - 1 for i in order]
    legs = zip([0, *order], [*order, 0], strict=True)
    length = int(sum(dist[a, b] for a, b in legs))
    problem = Problem(dist, dur, tuple(visits), (Vehicle(start=0, end=0, shift_end=end + width),))
    return Instance(f"random-{n}-w{width}-{seed}", problem, float(length), 1, tour)


def vrptw(path: Path, fleet: int) -> Instance:
    """A Solomon / Gehring-Homberger instance in LKH-3's CVRPTW format with `fleet` vehicles.

    FLOOR_2D with SCALE 10 (LKH-3's Solomon_100 set): distances are the Euclidean distance truncated
    to one decimal, the convention of the exact VRPTW literature, and the best known is the least
    distance (any number of vehicles). EXACT_2D (Homberger_200): distances rounded to 1/1000, and the
    best known is SINTEF's, which minimises vehicles first, then distance.
    """
    s = _sections(path.read_text())
    n = int(s["DIMENSION"][0])
    xy = np.array([[float(v) for v in line.split()[1:3]] for line in s["NODE_COORD_SECTION"]])
    euclid = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    if s["EDGE_WEIGHT_TYPE"][0] == "FLOOR_2D":
        scale = int(s.get("SCALE", ["10"])[0])
        matrix = np.floor(euclid * scale + 1e-9).astype(np.int64)
    else:
        scale = 1000
        matrix = np.rint(euclid * scale).astype(np.int64)
    service = int(round(float(s["SERVICE_TIME"][0]) * scale))
    demand = {int(a) - 1: int(b) for a, b in (line.split() for line in s["DEMAND_SECTION"])}
    rows = (line.split() for line in s["TIME_WINDOW_SECTION"])
    windows = {int(a) - 1: (int(b) * scale, int(c) * scale) for a, b, c in rows}
    capacity = int(s["CAPACITY"][0])
    visits = tuple(
        Visit(location=i, demand=demand[i], service=service, windows=(Window(*windows[i]),)) for i in range(1, n)
    )
    depot = Vehicle(start=0, end=0, capacity=capacity, shift_start=windows[0][0], shift_end=windows[0][1])
    return Instance(path.name.split(".")[0], Problem(matrix, matrix, visits, (depot,) * fleet), None, scale)


def best_known_vrptw() -> dict[str, float]:
    """instance -> best-known distance, from bench/data/vrptw/best_known.csv."""
    out = {}
    for line in (DATA / "vrptw" / "best_known.csv").read_text().splitlines()[1:]:
        name, value = line.split(",")[:2]
        out[name] = float(value)
    return out


def name_order(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))
