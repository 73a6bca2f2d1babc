"""A coroutine a service runs beside its requests for as long as it lives."""

import asyncio


async def woken(event: asyncio.Event, seconds: float) -> bool:
    """Wait for `event`, at most `seconds`; whether it was set.

    Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives in the same loop
    pass as the event is set (it returns the inner result instead). A background loop cancelled at
    that moment ran on, and the `await` of its task in `Background.stop` hung its service's shutdown
    for good (the notifier's delivery worker, seen as an offline test that hung about one run in
    eight). asyncio.timeout tells its own cancellation from another's."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


class Background:
    """Start `run()` as a task with the service; cancel it and wait for it on shutdown."""

    _task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None
