"""A local webhook receiver (aiohttp, on 127.0.0.1) for tests and the delivery benchmark: it
records every request and answers as the test scripts it (status codes in turn, a delay)."""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() on arrival
    path: str


@dataclass
class Receiver:
    """`statuses`: codes to answer in turn (then 200); `delay_s`: wait before answering."""

    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    answer: bytes = b"ok"
    received: list[Received] = field(default_factory=list)
    on_request: Callable[[Received], None] | None = None
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def _handle(self, request: web.Request) -> web.Response:
        got = Received(dict(request.headers), await request.read(), time.time(), request.path)
        self.received.append(got)
        if self.on_request:
            self.on_request(got)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        status = self.statuses.pop(0) if self.statuses else 200
        if 300 <= status < 400:
            return web.Response(status=status, headers={"Location": "/elsewhere"})
        return web.Response(status=status, body=self.answer)

    async def start(self, port: int = 0) -> "Receiver":
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)  # a hanging answer ends with the test
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def ids(self) -> list[str]:
        return [r.headers.get("webhook-id", "") for r in self.received]
