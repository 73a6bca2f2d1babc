"""Two lanes per consumer stage, so one organization's burst cannot hold every other tenant's job.

Ingest puts an organization's jobs beyond its fair share of jobs in flight into the bulk lane
(its own topics). A stage takes both lanes, each in its own consumer group; a bulk message waits
at the stage's LaneGate until the normal lane has nothing in hand, and the bulk consumer takes one
message per poll. So a job in the normal lane waits for at most one bulk job in progress, and
bulk work runs whenever the normal lane is idle (work-conserving).
"""

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Literal

from pydantic import Field

from shared.background import woken
from shared.metrics import LANE_WAIT, LANE_WAIT_CAPPED
from shared.settings import PlatformSettings


class LaneSettings(PlatformSettings):
    lane_grace_seconds: float = Field(
        0.1, ge=0, le=5, description="quiet time after a normal message before a bulk one may start"
    )
    lane_max_wait_seconds: float = Field(
        60.0, gt=0, le=120, description="a bulk message waits at most this long for the normal lane"
    )


Lane = Literal["normal", "bulk"]
_LANE: ContextVar[tuple[Lane, float | None]] = ContextVar("routemate_lane", default=("normal", None))


@contextmanager
def in_lane(lane: Lane, since: float | None = None) -> Iterator[None]:
    """Mark what runs inside as this lane's work (a stage's shared resources serve the normal lane
    first); `since`: when the message began to wait (time.monotonic), so a later wait for a shared
    resource counts from there, not from its own start."""
    token = _LANE.set((lane, since))
    try:
        yield
    finally:
        _LANE.reset(token)


def current_lane() -> Lane:
    """The lane of the message being handled: `normal` outside any."""
    return _LANE.get()[0]


def waiting_since() -> float | None:
    """When the message being handled began to wait (time.monotonic), if its lane said so."""
    return _LANE.get()[1]


def bulk_group(group: str) -> str:
    """The consumer group of a stage's bulk lane: its own, so a bulk consumer waiting at the gate
    never holds up a rebalance of the normal lane."""
    return f"{group}-bulk"


class LaneGate:
    """Normal lane first, within one process.

    The normal lane holds the gate while it has a message in hand. A bulk message starts once the
    normal lane has had nothing in hand for `grace_s` (the gap between two normal messages of one
    poll, while the consumer commits and takes the next, must not let bulk work in), or once it
    has waited `max_wait_s`: the bound keeps the bulk consumer polling well within
    max_poll_interval (so it stays in its group), and gives the bulk lane at least one job per
    `max_wait_s` under a normal lane that is never idle (no starvation).
    """

    def __init__(
        self, service: str, grace_s: float = 0.1, max_wait_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.service, self.grace_s, self.max_wait_s, self.clock = service, grace_s, max_wait_s, clock
        self._in_hand = 0
        self._released_at = -math.inf
        self._idle = asyncio.Event()
        self._idle.set()

    @classmethod
    def from_settings(cls, service: str, settings: LaneSettings) -> "LaneGate":
        return cls(service, settings.lane_grace_seconds, settings.lane_max_wait_seconds)

    @property
    def normal_busy(self) -> bool:
        return self._in_hand > 0

    @asynccontextmanager
    async def normal(self) -> AsyncIterator[None]:
        """Hold the gate while a normal-lane message is handled."""
        self._in_hand += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_hand -= 1
            if self._in_hand == 0:
                self._released_at = self.clock()
                self._idle.set()

    async def bulk_turn(self) -> float:
        """Wait until a bulk message may start; returns the seconds waited."""
        started = self.clock()
        deadline = started + self.max_wait_s
        while True:
            left = deadline - self.clock()
            if left <= 0:
                LANE_WAIT_CAPPED.labels(self.service).inc()
                break
            if self._in_hand:
                await woken(self._idle, left)
                continue
            quiet = self.grace_s - (self.clock() - self._released_at)
            if quiet <= 0:
                break
            await asyncio.sleep(min(quiet, left))
        waited = self.clock() - started
        LANE_WAIT.labels(self.service).observe(waited)
        return waited
