"""Waiting for a condition with a deadline, instead of a fixed sleep."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(probe: Callable[[], T], seconds: float = 30, every: float = 0.1, what: str = "the condition") -> T:
    """Call `probe` until it returns something truthy and return that; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {seconds} s (last: {value!r})")
        time.sleep(every)


async def async_wait_until(
    probe: Callable[[], Awaitable[T]], seconds: float = 30, every: float = 0.1, what: str = "the condition"
) -> T:
    """`wait_until` for a coroutine probe."""
    deadline = time.monotonic() + seconds
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {seconds} s (last: {value!r})")
        await asyncio.sleep(every)
