"""The optimizer's one solver thread, and the line in front of it: normal-lane jobs first."""

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from shared.lanes import Lane, LaneSettings, current_lane, waiting_since

T = TypeVar("T")


class SolverLine:
    """One solve at a time on `executor`'s thread; the jobs waiting for it wait here, not in the
    thread pool's first-come queue, so a normal-lane job goes before every bulk one that waits.

    Each lane keeps more than one job in hand (the next is decoded and waiting while one solves,
    and published while the next solves), so without this a normal-lane job could wait behind a
    bulk solve in progress and another queued, where the lanes promise at most the one in
    progress (shared/lanes.py). A bulk job that has waited `max_wait_s` (LANE_MAX_WAIT_SECONDS),
    at the lane gate and here together, goes first."""

    def __init__(
        self, executor: Executor, max_wait_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.executor, self.max_wait_s, self.clock = executor, max_wait_s, clock
        self._busy = False
        self._waiting: dict[Lane, deque[tuple[asyncio.Future[None], float]]] = {"normal": deque(), "bulk": deque()}

    @classmethod
    def from_settings(cls, executor: Executor, settings: LaneSettings) -> "SolverLine":
        return cls(executor, settings.lane_max_wait_seconds)

    @property
    def waiting(self) -> int:
        return sum(not waiter.done() for queue in self._waiting.values() for waiter, _ in queue)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on the solver thread, once it is this job's turn (its lane: `current_lane()`)."""
        await self._turn(current_lane(), waiting_since())
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
        finally:
            # Cancelled (the service stops): a solve already on the thread runs on, and the next
            # job queues behind it in the executor; nothing is lost, the turn is not held forever.
            self._pass_on()

    async def _turn(self, lane: Lane, since: float | None = None) -> None:
        if not self._busy:
            self._busy = True
            return
        waiter = asyncio.get_running_loop().create_future()
        # A bulk job's wait counts from when it began to wait at the lane gate: the gate and the
        # line together hold it at most max_wait_s (and one solve), not max_wait_s each.
        self._waiting[lane].append((waiter, self.clock() if since is None else since))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # given the turn as it was cancelled: pass it on
                self._pass_on()
            raise

    def _pass_on(self) -> None:
        """The turn to the next waiting job: normal lane first, unless the bulk job at the head of
        its queue has waited `max_wait_s` (as at the lane gate: bulk work is never starved, and
        its consumer polls again well within max.poll.interval.ms)."""
        bulk = self._waiting["bulk"]
        while bulk and bulk[0][0].done():  # a cancelled waiter is skipped
            bulk.popleft()
        overdue = bool(bulk) and self.clock() - bulk[0][1] >= self.max_wait_s
        for lane in ("bulk", "normal") if overdue else ("normal", "bulk"):
            queue = self._waiting[lane]
            while queue:
                waiter, _ = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._busy = False
