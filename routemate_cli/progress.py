"""How a long CLI command shows its progress: a line redrawn in place on a terminal (done of total,
rate, time left), and one plain summary line when the output is a file or a pipe."""

import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """Called with (done, total) as work advances; `finish()` writes the summary."""

    def __init__(self, what: str, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.what, self.stream, self.clock = what, stream, clock
        self.on_terminal = stream.isatty()
        self.started = clock()
        self.done = self.total = 0
        self._drawn = 0.0

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        now = self.clock()
        if self.on_terminal and (now - self._drawn >= 0.1 or done >= total):  # at most ten redraws a second
            self._drawn = now
            self.stream.write("\r" + self.line(now))
            self.stream.flush()

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        share = self.done / self.total if self.total else 1.0
        bar = "#" * int(share * 20)
        return f"[{bar:<20}] {self.done:,} of {self.total:,} {self.what} {rate:,.0f}/s ~{left:.0f} s left "

    def finish(self) -> None:
        elapsed = self.clock() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.on_terminal:
            self.stream.write("\n")
        self.stream.write(f"{self.done:,} {self.what} applied in {elapsed:.1f} s ({rate:,.0f}/s)\n")
        self.stream.flush()
