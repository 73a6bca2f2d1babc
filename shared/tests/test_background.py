"""Background loops stop when cancelled, whatever they were waiting for at that moment."""

import asyncio

from shared.background import Background, woken


class Waiter(Background):
    """A loop like the notifier's delivery worker and the outbox relay: work, then wait to be woken."""

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.passes = 0

    async def run(self) -> None:
        while True:
            self.passes += 1
            await woken(self.wake, 10)
            self.wake.clear()


async def test_a_loop_cancelled_in_the_pass_its_event_is_set_stops():
    """asyncio.wait_for (Python 3.11) returned the event's result instead of raising the
    cancellation here, and the loop ran on: Background.stop never returned."""
    for _ in range(20):
        loop = Waiter()
        loop.start()
        await asyncio.sleep(0)  # parked in its wait
        loop.wake.set()  # woken ...
        stopping = asyncio.ensure_future(loop.stop())  # ... and cancelled in the same pass
        done, _ = await asyncio.wait({stopping}, timeout=2)
        assert stopping in done, "the loop ran on after it was cancelled"


async def test_woken_says_whether_the_event_came_before_the_time_ran_out():
    event = asyncio.Event()
    assert await woken(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await woken(event, 5) is True
