"""One in-memory Redis for unit and component tests (never for end-to-end tests)."""

import asyncio
import fnmatch
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from shared.ratelimit import BUCKET_SCRIPT, EPOCH_BUCKET_SCRIPT, refill


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


class MemoryPubSub:
    """A subscription to MemoryRedis channels: `listen()` yields what `publish` sent after `subscribe`."""

    def __init__(self, redis: "MemoryRedis") -> None:
        self.redis, self.channels = redis, set[str]()
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def hear(self, channel: str, data: bytes) -> None:
        if channel in self.channels:
            self.queue.put_nowait({"type": "message", "channel": channel.encode(), "data": data})

    async def subscribe(self, *channels: str) -> None:
        self.redis._check()
        self.channels.update(channels)
        if self not in self.redis.subscribers:
            self.redis.subscribers.append(self)

    async def listen(self):
        while True:
            yield await self.queue.get()

    async def aclose(self) -> None:
        if self in self.redis.subscribers:
            self.redis.subscribers.remove(self)


class MemoryRedis:
    """The Redis calls the services make (strings with expiry, hashes, pub/sub publish, a
    MULTI/EXEC pipeline of those), in dicts.

    `down = True` makes every call raise ConnectionError, as a Redis outage does.
    """

    # Python twins of other modules' Lua scripts: script text -> (MemoryRedis -> async callable).
    scripts: dict[str, Callable[["MemoryRedis"], Callable[..., Awaitable[Any]]]] = {}

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.values: dict[str, Any] = dict(data or {})
        self.expiry: dict[str, float] = {}
        self.published: list[tuple[str, bytes]] = []
        self.subscribers: list[MemoryPubSub] = []
        self.down = False
        self.loaded: dict[str, str] = {}  # the scripts EVALSHA finds (SCRIPT LOAD): sha1 -> text
        self.script_loads = 0

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("redis down")

    def _live(self, key: str) -> bool:
        if key in self.expiry and self.expiry[key] <= time.monotonic():
            self.values.pop(key, None)
            self.expiry.pop(key, None)
        return key in self.values

    async def get(self, key: str) -> bytes | None:
        self._check()
        return self.values[key] if self._live(key) else None

    async def set(self, key: str, value: Any, ex: float | None = None, nx: bool = False) -> bool | None:
        self._check()
        if nx and self._live(key):
            return None
        self.values[key] = _bytes(value)
        if ex is not None:
            self.expiry[key] = time.monotonic() + ex
        else:
            self.expiry.pop(key, None)
        return True

    async def mget(self, keys: list[str]) -> list[bytes | None]:
        self._check()
        return [self.values[k] if self._live(k) else None for k in keys]

    async def mset(self, mapping: dict[str, Any]) -> bool:
        for key, value in mapping.items():
            await self.set(key, value)
        return True

    async def delete(self, *keys: str) -> int:
        self._check()
        gone = [k for k in keys if self._live(k)]
        for key in gone:
            self.values.pop(key, None)
            self.expiry.pop(key, None)
        return len(gone)

    async def expire(self, key: str, seconds: float, nx: bool = False, gt: bool = False) -> bool:
        self._check()
        if not self._live(key):
            return False
        until = time.monotonic() + seconds
        if (nx and key in self.expiry) or (gt and until <= self.expiry.get(key, float("inf"))):
            return False  # as Redis: GT treats a key without expiry as one that never expires
        self.expiry[key] = until
        return True

    async def ttl(self, key: str) -> int:
        self._check()
        if not self._live(key):
            return -2
        return int(self.expiry[key] - time.monotonic()) if key in self.expiry else -1

    async def hset(self, key: str, mapping: dict[str, Any] | None = None, **fields: Any) -> int:
        self._check()
        current = self.values.get(key, {}) if self._live(key) else {}
        added = {_bytes(k): _bytes(v) for k, v in {**(mapping or {}), **fields}.items()}
        self.values[key] = {**current, **added}
        return len(set(added) - set(current))

    async def hsetnx(self, key: str, field: str, value: Any) -> int:
        self._check()
        current = self.values.get(key, {}) if self._live(key) else {}
        if _bytes(field) in current:
            return 0
        self.values[key] = {**current, _bytes(field): _bytes(value)}
        return 1

    async def hget(self, key: str, field: str) -> bytes | None:
        self._check()
        return (self.values.get(key, {}) if self._live(key) else {}).get(_bytes(field))

    async def hdel(self, key: str, *fields: str) -> int:
        self._check()
        if not self._live(key):
            return 0
        current = dict(self.values[key])
        gone = [f for f in map(_bytes, fields) if current.pop(f, None) is not None]
        self.values[key] = current
        return len(gone)

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        self._check()
        value = self.values.get(key, {}) if self._live(key) else {}
        return {_bytes(k): _bytes(v) for k, v in value.items()}

    async def incr(self, key: str) -> int:
        self._check()
        value = int(self.values.get(key, b"0")) + 1 if self._live(key) else 1
        self.values[key] = str(value).encode()
        return value

    async def exists(self, *keys: str) -> int:
        self._check()
        return sum(self._live(k) for k in keys)

    async def scan_iter(self, match: str = "*"):
        self._check()
        for key in list(self.values):
            if self._live(key) and fnmatch.fnmatchcase(key, match):
                yield key

    def pubsub(self, ignore_subscribe_messages: bool = False) -> "MemoryPubSub":
        return MemoryPubSub(self)

    async def publish(self, channel: str, message: Any) -> int:
        self._check()
        self.published.append((channel, _bytes(message)))
        for subscriber in self.subscribers:
            subscriber.hear(channel, _bytes(message))
        await asyncio.sleep(0)
        return 1

    async def sadd(self, key: str, *members: Any) -> int:
        self._check()
        current = self.values.get(key, set()) if self._live(key) else set()
        added = {_bytes(m) for m in members} - current
        self.values[key] = current | added
        return len(added)

    async def smembers(self, key: str) -> "set[bytes]":  # quoted: `set` here is the method above
        self._check()
        return set(self.values.get(key, set())) if self._live(key) else set()

    def register_script(self, script: str):
        """The Lua scripts the services run (the rate limiter's token bucket, alone or behind a
        token epoch check; ingest's reservation), in Python."""
        if script in self.scripts:
            return self.scripts[script](self)
        if script == EPOCH_BUCKET_SCRIPT:
            plain = self.register_script(BUCKET_SCRIPT)

            async def epoch_bucket(keys: list[str], args: list[Any]) -> list[Any]:
                self._check()
                if int(await self.get(args[4]) or 0) != int(args[3]):
                    return [-1, "0"]
                return await plain(keys, args[:3])

            return epoch_bucket
        if script != BUCKET_SCRIPT:
            raise NotImplementedError("MemoryRedis does not know this script")

        async def bucket(keys: list[str], args: list[Any]) -> list[Any]:
            self._check()
            (key,), (rate, burst, now) = keys, args
            state = await self.hgetall(key)
            tokens, ts = state.get(b"tokens"), state.get(b"ts")
            allowed, left = refill(
                float(tokens) if tokens else None, float(ts) if ts else None, now, float(rate), int(burst)
            )
            await self.hset(key, mapping={"tokens": left, "ts": now})
            return [int(allowed), str(left)]

        return bucket

    # Sorted sets (member -> score), as the jobs in flight per organization use them.
    def _zset(self, key: str) -> dict[bytes, float]:
        if not self._live(key):
            self.values[key] = {}
        return self.values[key]

    async def zadd(self, key: str, mapping: dict[Any, float], nx: bool = False) -> int:
        self._check()
        zset, added = self._zset(key), 0
        for member, score in mapping.items():
            if _bytes(member) not in zset:
                added += 1
            elif nx:
                continue
            zset[_bytes(member)] = float(score)
        return added

    async def zrem(self, key: str, *members: Any) -> int:
        self._check()
        zset = self._zset(key) if self._live(key) else {}
        return sum(zset.pop(_bytes(m), None) is not None for m in members)

    async def zrank(self, key: str, member: Any) -> int | None:
        self._check()
        zset = self.values[key] if self._live(key) else {}
        ranked = sorted(zset, key=lambda m: (zset[m], m))
        return ranked.index(_bytes(member)) if _bytes(member) in zset else None

    async def zcard(self, key: str) -> int:
        self._check()
        return len(self.values[key]) if self._live(key) else 0

    async def zremrangebyscore(self, key: str, low: float | str, high: float | str) -> int:
        self._check()
        if not self._live(key):
            return 0
        zset, lo, hi = self.values[key], float(low), float(high)
        gone = [m for m, score in zset.items() if lo <= score <= hi]
        for member in gone:
            del zset[member]
        return len(gone)

    async def script_load(self, script: str) -> str:
        self._check()
        self.script_loads += 1
        sha = hashlib.sha1(script.encode()).hexdigest()
        self.loaded[sha] = script
        return sha

    async def execute_command(self, *args: Any) -> Any:
        """SET and EVALSHA as shared.redisbatch.RedisBatch sends them (NOSCRIPT for a script that
        was not loaded yet, or after `loaded` was cleared, as a Redis restart does)."""
        self._check()
        name, rest = str(args[0]).upper(), list(args[1:])
        if name == "EVALSHA":
            if (source := self.loaded.get(rest[0])) is None:
                raise NoScriptError("NOSCRIPT No matching script.")
            count = int(rest[1])
            return await self.register_script(source)(rest[2 : 2 + count], rest[2 + count :])
        if name == "SET":
            key, value, options = rest[0], rest[1], [str(o).upper() for o in rest[2:]]
            ex = float(rest[2 + options.index("EX") + 1]) if "EX" in options else None
            return await self.set(key, value, ex=ex, nx="NX" in options)
        raise ResponseError(f"ERR MemoryRedis does not run {name} as a raw command")

    def pipeline(self, transaction: bool = True) -> "MemoryPipeline":
        return MemoryPipeline(self)

    async def ping(self) -> bool:
        return not self.down

    async def aclose(self) -> None:
        pass


class MemoryPipeline:
    """`redis.pipeline(transaction=True)`: commands queue up and run together on `execute()`,
    all of them or (Redis down) none."""

    def __init__(self, redis: MemoryRedis) -> None:
        self.redis, self.queued = redis, []

    def __getattr__(self, name: str):
        command = getattr(self.redis, name)

        def queue(*args: Any, **kwargs: Any) -> "MemoryPipeline":
            self.queued.append((command, args, kwargs))
            return self

        return queue

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        """The replies in order; a command's error raised, or (raise_on_error=False) in its place."""
        self.redis._check()
        queued, self.queued = self.queued, []
        replies: list[Any] = []
        for command, args, kwargs in queued:
            try:
                replies.append(await command(*args, **kwargs))
            except ConnectionError:
                raise  # Redis down: the whole pipeline fails, as on the real server
            except Exception as exc:  # a command's own error is its reply, as Redis answers it
                if raise_on_error:
                    raise
                replies.append(exc)
        return replies

    async def __aenter__(self) -> "MemoryPipeline":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.queued = []


class RecordingBus:
    """The event bus in memory: keeps what was published; `down = True` fails every publish, as Kafka down."""

    def __init__(self, down: bool = False) -> None:
        self.events: list[Any] = []
        self.down = down

    async def publish(self, event: Any) -> None:
        if self.down:
            raise ConnectionError("kafka down")
        self.events.append(event)


def seed_token(
    redis: MemoryRedis, token: str, org_id: str, client_id: str, ttl_s: int = 3600, key: bytes | None = None
) -> None:
    """Put `token` into `redis` as the auth service leaves it: a record signed with `key` (the local one)."""
    from shared.settings import LOCAL_TOKEN_SIGNING_KEY
    from shared.tokens import Principal, signed_record, token_digest, token_key

    digest = token_digest(token)
    key = key or LOCAL_TOKEN_SIGNING_KEY.encode()
    record = signed_record(key, digest, Principal(org_id, client_id), int(time.time()) + ttl_s, 0)
    redis.values[token_key(digest)] = {k.encode(): v.encode() for k, v in record.items()}


class CountingRedis(MemoryRedis):
    """A MemoryRedis that counts its MGET calls: the data-key reads a replay or an opener makes."""

    def __init__(self) -> None:
        super().__init__()
        self.mgets = 0

    async def mget(self, keys, *args):
        self.mgets += 1
        return await super().mget(keys, *args)
