"""A coroutine a service runs beside its requests for as long as it lives."""

import asyncio


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
