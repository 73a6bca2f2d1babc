"""The solver line: one solve at a time on the solver thread, normal-lane jobs before bulk ones
that wait, and no turn lost to a job cancelled while it waits."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.optimizer.line import SolverLine
from shared.lanes import Lane, in_lane


class Solves:
    """Solves that block on the solver thread until released, recording order and overlap."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.running = 0
        self.most = 0
        self.release: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> str:
        with self._lock:
            self.started.append(name)
            self.running += 1
            self.most = max(self.most, self.running)
        self.release.setdefault(name, threading.Event()).wait(10)
        with self._lock:
            self.running -= 1
        return name

    def let_go(self, name: str) -> None:
        self.release.setdefault(name, threading.Event()).set()


async def settle(line: SolverLine, waiting: int) -> None:
    for _ in range(500):
        if line.waiting == waiting:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{line.waiting} jobs wait at the line, not {waiting}")


@pytest.fixture
def pool():
    # Two threads: were the line not the one that keeps solves one at a time, they would overlap.
    executor = ThreadPoolExecutor(2)
    yield executor
    executor.shutdown(wait=False, cancel_futures=True)


def job(line: SolverLine, solves: Solves, name: str, lane: Lane) -> asyncio.Task[str]:
    async def run() -> str:
        with in_lane(lane):
            return await line.run(solves, name)

    return asyncio.ensure_future(run())


async def test_a_normal_job_goes_before_bulk_jobs_that_waited_longer_and_solves_never_overlap(pool):
    line, solves = SolverLine(pool), Solves()
    first = job(line, solves, "bulk-1", "bulk")
    await asyncio.sleep(0.02)
    queued = [job(line, solves, "bulk-2", "bulk"), job(line, solves, "bulk-3", "bulk")]
    await settle(line, 2)
    urgent = job(line, solves, "normal-1", "normal")
    await settle(line, 3)
    for name in ("bulk-1", "normal-1", "bulk-2", "bulk-3"):
        solves.let_go(name)
    assert await asyncio.wait_for(asyncio.gather(first, urgent, *queued), 5) == [
        "bulk-1",
        "normal-1",
        "bulk-2",
        "bulk-3",
    ]
    assert solves.started == ["bulk-1", "normal-1", "bulk-2", "bulk-3"]  # normal waited for one solve only
    assert solves.most == 1
    assert line.waiting == 0 and not line._busy


async def test_a_job_cancelled_while_it_waits_gives_up_its_place_not_the_line(pool):
    line, solves = SolverLine(pool), Solves()
    first = job(line, solves, "a", "bulk")
    await asyncio.sleep(0.02)
    gone, after = job(line, solves, "gone", "normal"), job(line, solves, "b", "bulk")
    await settle(line, 2)
    gone.cancel()
    solves.let_go("a")
    solves.let_go("b")
    assert await asyncio.wait_for(asyncio.gather(first, after), 5) == ["a", "b"]
    assert gone.cancelled() and solves.started == ["a", "b"]


async def test_a_job_cancelled_just_as_its_turn_came_passes_the_turn_on(pool):
    line, solves = SolverLine(pool), Solves()
    line._busy = True  # a solve in progress
    handed, after = job(line, solves, "handed", "normal"), job(line, solves, "b", "bulk")
    await settle(line, 2)
    line._pass_on()  # the solve in progress ended: the turn is "handed"'s ...
    handed.cancel()  # ... and it is cancelled before it runs
    solves.let_go("b")
    assert await asyncio.wait_for(after, 5) == "b"  # not waiting forever for a turn nobody holds
    assert handed.cancelled() and solves.started == ["b"]
    assert not line._busy


async def test_a_bulk_job_that_waited_the_lanes_bound_goes_before_normal_ones(pool):
    now = [0.0]
    line, solves = SolverLine(pool, max_wait_s=60, clock=lambda: now[0]), Solves()
    running = job(line, solves, "normal-0", "normal")  # normal jobs keep the thread busy ...
    await asyncio.sleep(0.02)
    starved = job(line, solves, "bulk", "bulk")
    await settle(line, 1)
    now[0] = 59.0
    second = job(line, solves, "normal-1", "normal")
    await settle(line, 2)
    solves.let_go("normal-0")  # under the bound: the normal job next
    await settle(line, 1)
    third = job(line, solves, "normal-2", "normal")
    await settle(line, 2)
    now[0] = 60.0
    solves.let_go("normal-1")  # the bulk job has waited 60 s: its turn, though a normal job waits
    for name in ("bulk", "normal-2"):
        solves.let_go(name)
    assert await asyncio.wait_for(asyncio.gather(running, second, starved, third), 5) == [
        "normal-0",
        "normal-1",
        "bulk",
        "normal-2",
    ]
    assert solves.started == ["normal-0", "normal-1", "bulk", "normal-2"]


async def test_a_bulk_jobs_wait_at_the_lane_gate_counts_toward_its_bound_at_the_line(pool):
    """The gate held it the whole LANE_MAX_WAIT_SECONDS already: at the line it goes next, not
    after another bound's worth of normal jobs."""
    line, solves = SolverLine(pool, max_wait_s=60), Solves()
    running = job(line, solves, "normal-0", "normal")
    await asyncio.sleep(0.02)

    async def gated() -> str:
        with in_lane("bulk", time.monotonic() - 60):  # began waiting at the gate a bound ago
            return await line.run(solves, "bulk")

    late = asyncio.ensure_future(gated())
    await settle(line, 1)
    fresh = job(line, solves, "normal-1", "normal")
    await settle(line, 2)
    for name in ("normal-0", "bulk", "normal-1"):
        solves.let_go(name)
    assert await asyncio.wait_for(asyncio.gather(running, late, fresh), 5) == ["normal-0", "bulk", "normal-1"]
    assert solves.started == ["normal-0", "bulk", "normal-1"]
