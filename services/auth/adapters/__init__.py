"""What the auth service talks to: its database, Redis (lockout counters, tokens) and Kafka."""

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from redis.exceptions import RedisError

P = ParamSpec("P")
T = TypeVar("T")


def redis_outage_as_connection_error(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Report a Redis failure as the built-in ConnectionError, so callers need not know the client."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except RedisError as exc:
            raise ConnectionError(f"redis: {exc}") from exc

    return call
