"""The fleet solver's data model (agreed with the fleet plumbing; see services/optimizer/vrp/__init__.py).

All times are integer SECONDS from the plan's start, all distances integer METRES; matrix
indices address locations (depots, vehicle starts and ends, and stops).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    start: int  # service must START within [start, end]
    end: int


@dataclass(frozen=True)
class Visit:
    """One stop to serve."""

    location: int  # matrix index
    demand: int = 0
    service: int = 0  # seconds on site
    windows: tuple[Window, ...] = ()  # 0, 1 or 2 windows; empty = any time
    skills: frozenset[str] = frozenset()  # the vehicle must have all of them
    priority: int = 0  # higher = dropped later when not all fit


@dataclass(frozen=True)
class Vehicle:
    start: int  # matrix index
    end: int | None = None  # matrix index; None = route ends at its last stop
    capacity: int | None = None
    shift_start: int = 0
    shift_end: int | None = None  # latest return (or last service end if open)
    max_stops: int | None = None
    max_duration: int | None = None  # seconds from leaving start to end
    skills: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Problem:
    distances: Sequence[Sequence[int]]  # n x n metres (numpy int array is fine)
    durations: Sequence[Sequence[int]]  # n x n seconds
    visits: tuple[Visit, ...]
    vehicles: tuple[Vehicle, ...]


@dataclass(frozen=True)
class Effort:
    """Stop on effort, not the clock (deterministic)."""

    iterations: int | None = None  # None = the engine's default for the size
    max_seconds: float | None = None  # documented hard cap only
    seed: int = 1


@dataclass(frozen=True)
class Route:
    vehicle: int  # index into Problem.vehicles
    visits: tuple[int, ...]  # indices into Problem.visits, in order
    arrivals: tuple[int, ...]  # service start time of each visit (seconds)
    start_time: int  # leaving start
    end_time: int  # arriving at end (or last service end)
    distance: int
    duration: int


@dataclass(frozen=True)
class Solution:
    routes: tuple[Route, ...]  # only non-empty routes
    unassigned: Mapping[int, str]  # visit index -> reason: one of shared.vocabulary.UnroutedReason
    distance: int
    duration: int
    engine: str
    iterations: int
    solve_ms: float
