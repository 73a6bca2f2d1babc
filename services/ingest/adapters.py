"""Redis adapters of the ingest gateway: idempotency reservations and job outcomes (the rate limit
is shared.ratelimit's, the same bucket as the other services')."""

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.background import Background
from shared.channels import (
    JOB_OUTCOME,
    JobHead,
    JobSettled,
    announced,
    inflight_key,
    jobhead_key,
    open_outcome,
    outcome_key,
    reservation_key,
)
from shared.events.jobs import Lane
from shared.pii import BLOB, DataKeys, data_key_name
from shared.redisbatch import RedisBatch

log = logging.getLogger(__name__)

# A new import's writes before it is published, in one round trip: reserve its external id
# (SET NX); only if that won, count the job in its organization's jobs in flight (Lanes.admit) and
# make its data key (DataKeys.key_for: SET NX, then the key as stored). Otherwise: the reservation
# that was there. KEYS: reservation, jobs in flight, data key. ARGV: reservation value, its TTL,
# now, the oldest score still in flight, job_id, the in-flight TTL, a freshly wrapped data key (or
# '': no data key made, KEYS[3] unused). A reservation already holding this job_id is this very
# script run again (redis-py sends a command again when its reply was lost, shared.redisbatch):
# it goes on as the winner, every step after the SET being idempotent, instead of answering with
# its own reservation as another import's (which left the job unpublished behind a 202).
RESERVE_SCRIPT = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  local held = redis.call('GET', KEYS[1])
  if not held or cjson.decode(held)['job_id'] ~= ARGV[5] then
    return {0, held}
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
redis.call('ZADD', KEYS[2], 'NX', ARGV[3], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[6])
local rank = redis.call('ZRANK', KEYS[2], ARGV[5])
if ARGV[7] == '' then return {1, rank} end
redis.call('SET', KEYS[3], ARGV[7], 'NX')
return {1, rank, redis.call('GET', KEYS[3])}
"""


# A reservation set to replay another body only while it still holds the value read: an update
# acknowledged meanwhile, or an erasure, wins. Its TTL is kept.
CORRECT_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Reservation:
    job_id: str
    payload_hash: str
    accepted: bool
    since: float  # when its publisher started; 0 after a failed publish
    spec_version: int = 1  # the job's latest spec published (an update by re-import counts one up)
    raw: bytes | str | None = field(default=None, compare=False, repr=False)  # as read, for correct()


class Reservations:
    """`(organization, external_job_id)` -> the one job it created, reserved with SET NX.

    A reservation is `accepted` once Kafka acknowledged its ImportRequested. One whose publish
    failed (or whose publisher died) keeps its job_id: a retry publishes again under the same
    job_id, so an event that did reach Kafka before the failure never becomes a second job.
    """

    def __init__(
        self, redis: Redis, ttl_s: int, clock: Callable[[], float] = time.time, batch: RedisBatch | None = None
    ) -> None:
        """`batch`: the service's RedisBatch; a new import's reservation and its acceptance then
        travel with those of the imports concurrent with it."""
        self.redis, self.ttl_s, self.clock = redis, ttl_s, clock
        self._batched = batch or redis
        self._reserve_new = self._batched.register_script(RESERVE_SCRIPT)
        self._correct = redis.register_script(CORRECT_SCRIPT)

    @staticmethod
    def key(org_id: str, external_job_id: str) -> str:
        return reservation_key(org_id, external_job_id)

    def _value(self, job_id: str, digest: str, accepted: bool, since: float, spec_version: int = 1) -> str:
        value = {"job_id": job_id, "hash": digest, "accepted": accepted, "since": since}
        return json.dumps(value if spec_version == 1 else {**value, "spec_version": spec_version})

    async def reserve(self, key: str, job_id: str, digest: str) -> Reservation | None:
        """None when we won the reservation; otherwise the reservation that was already there (one
        holding this job_id is ours: the SET sent again after its reply was lost)."""
        if await self.redis.set(key, self._value(job_id, digest, False, self.clock()), nx=True, ex=self.ttl_s):
            return None
        held = await self.get(key)
        return None if held is not None and held.job_id == job_id else held

    async def reserve_new(
        self, key: str, job_id: str, digest: str, org_id: str, lanes: "Lanes", keys: DataKeys | None
    ) -> tuple[Reservation | None, Lane | None]:
        """reserve(), and when it wins, in the same round trip: the job's lane (Lanes.admit) and
        its data key (handed to `keys` for the seal that follows, see DataKeys.prime).
        (None, lane) when we won; (the reservation already there, None) otherwise."""
        now = self.clock()
        blob = keys.wrap.wrap(job_id, DataKeys.new_key()) if keys is not None else b""
        answer = await self._reserve_new(
            keys=[key, inflight_key(org_id), data_key_name(job_id) if keys is not None else key],
            args=[
                self._value(job_id, digest, False, now),
                self.ttl_s,
                now,
                now - lanes.ttl_s,
                job_id,
                lanes.ttl_s,
                blob,
            ],
        )
        if not int(answer[0]):
            return self._parse(answer[1]), None
        if keys is not None:
            keys.prime(job_id, answer[2])
        return None, lanes.lane(answer[1])

    async def get(self, key: str) -> Reservation | None:
        return self._parse(await self.redis.get(key))

    @staticmethod
    def _parse(raw: bytes | str | None) -> Reservation | None:
        if raw is None:
            return None
        data = json.loads(raw)
        return Reservation(
            data["job_id"], data["hash"], data["accepted"], data.get("since", 0.0), data.get("spec_version", 1), raw
        )

    async def correct(self, key: str, was: Reservation, digest: str, spec_version: int) -> bool:
        """The reservation `was` (as read) set to replay `digest`, the job's own body where it named
        an update that was refused (replayed_body); its spec stays the latest published. Only while
        it still holds what was read (CORRECT_SCRIPT); whether it was set."""
        if was.raw is None:
            return False
        value = self._value(was.job_id, digest, True, self.clock(), max(was.spec_version, spec_version))
        return bool(await self._correct(keys=[key], args=[was.raw, value]))

    async def take_over(self, key: str, job_id: str, digest: str) -> None:
        await self.redis.set(key, self._value(job_id, digest, False, self.clock()), ex=self.ttl_s)

    async def accept(self, key: str, job_id: str, digest: str) -> None:
        await self._batched.set(key, self._value(job_id, digest, True, self.clock()), ex=self.ttl_s)

    async def publish_failed(self, key: str, job_id: str, digest: str) -> None:
        await self.redis.set(key, self._value(job_id, digest, False, 0.0), ex=self.ttl_s)

    async def claim_update(
        self, key: str, job_id: str, spec_version: int, digest: str, base_version: int, first: str | None = None
    ) -> bool:
        """Whether this request may publish the job's `spec_version`, onto `base_version`, as the
        body `digest`. A spec is one attempt's only (HSETNX in the job's `updates` record): two
        different updates from the same version cannot both go out, and none takes a spec an
        earlier attempt went out as, acknowledged or not. The same body onto the same version may
        always go out again as that spec: it is the same event (a retry after a 503, or this call
        sent again after its reply was lost). Recorded before publishing, so an attempt whose
        request died half-way still holds its spec. The record is the job's own: a job imported
        afresh under the same external id (after an erasure) starts its own.

        `first`: the body the job was imported with (spec 1), given by the first update of the job,
        when the reservation still holds it: recorded as spec 1's, so the record tells each spec's
        body and replayed_body() can name the job's own when the reservation names an update the
        projection refused."""
        name, attempt = f"{key}:{job_id}:updates", f"{digest}:{base_version}"
        async with self.redis.pipeline(transaction=True) as pipe:
            if first is not None:
                pipe.hsetnx(name, "1", f"{first}:0:0")
            pipe.hsetnx(name, str(spec_version), f"{attempt}:{self.clock():.3f}")
            pipe.hget(name, str(spec_version))
            pipe.expire(name, self.ttl_s)
            *_, held, _ = await pipe.execute()
        return held is not None and held.decode().rsplit(":", 1)[0] == attempt

    async def release_update(self, key: str, job_id: str, spec_version: int) -> None:
        """The update was refused before it could reach Kafka (too large): its spec is free again."""
        await self.redis.hdel(f"{key}:{job_id}:updates", str(spec_version))

    async def attempts(self, key: str, job_id: str) -> dict[int, tuple[str, int, float]]:
        """Every update of the job that went out (or may have: a publish that timed out is still
        retried by the producer, for as long as its replica lives): spec -> (body digest, the
        version it applies onto, when it was claimed)."""
        held = await self.redis.hgetall(f"{key}:{job_id}:updates")
        found: dict[int, tuple[str, int, float]] = {}
        for spec, value in held.items():
            digest, base, *at = (value.decode() if isinstance(value, bytes) else value).split(":")
            found[int(spec)] = (digest, int(base), float(at[0]) if at else 0.0)
        return found

    async def updated(self, key: str, job_id: str, digest: str, spec_version: int) -> None:
        """The reservation now answers for the updated body (replays of it) at `spec_version`."""
        await self.redis.set(key, self._value(job_id, digest, True, self.clock(), spec_version), ex=self.ttl_s)


def replayed_body(existing: Reservation, head: JobHead, attempts: dict[int, tuple[str, int, float]]) -> str:
    """The body whose import (or update) again is a replay of the job: the reservation's, unless it
    names an update the job will never be. The reservation takes an update's body once Kafka
    acknowledged it, and only a request waiting for its outcome puts the old one back when the
    projection refuses it: after an async update that was refused, the job is its spec before,
    and the reservation's body would replay as if applied (and the job's own body be a 409).

    An update that has not landed (its spec above the head's) is under way while the job is still
    at the version it applies onto, and lands as the reservation says; once the job moved past that
    version it is refused (the projection applies an update onto its base version only), and the
    job's body is its current spec's, from the record of attempts (spec 1's: the import's, recorded
    by the job's first update). Without that record (updates made before it was kept) the
    reservation's, as before."""
    spec = existing.spec_version
    if spec == head.spec_version:
        return existing.payload_hash
    if spec > head.spec_version:
        attempt = attempts.get(spec)
        if attempt is None or (attempt[0] == existing.payload_hash and attempt[1] == head.version):
            return existing.payload_hash  # under way (or not recorded): it answers when it lands
    current = attempts.get(head.spec_version)  # refused; or a later spec landed, not yet reserved
    return current[0] if current is not None else existing.payload_hash


class Lanes:
    """Each organization's jobs in flight (a sorted set by admission time, shared with the status
    service, which removes a job when it settles); an organization's first `fair_share` jobs in
    flight travel the normal lane, any beyond them the bulk lane.

    The job is added before it is published, in the same transaction that reads its rank, so a
    burst of concurrent imports cannot all see an empty set. A job whose settling was never seen
    (status down when it settled) leaves the count after `ttl_s`, member by member.
    """

    def __init__(self, redis: Redis, fair_share: int, ttl_s: int, clock: Callable[[], float] = time.time) -> None:
        self.redis, self.fair_share, self.ttl_s, self.clock = redis, fair_share, ttl_s, clock

    async def admit(self, org_id: str, job_id: str) -> Lane:
        """The lane of a job about to be published (the same again for a job published again)."""
        key, now = inflight_key(org_id), self.clock()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now - self.ttl_s)
            pipe.zadd(key, {job_id: now}, nx=True)
            pipe.expire(key, self.ttl_s)
            pipe.zrank(key, job_id)
            *_, rank = await pipe.execute()
        return self.lane(rank)

    def lane(self, rank: int | None) -> Lane:
        """The lane of a job at `rank` among its organization's jobs in flight."""
        return "normal" if rank is not None and rank < self.fair_share else "bulk"

    async def release(self, org_id: str, job_id: str) -> None:
        """A job that was not published after all no longer counts (best effort: the TTL is the net)."""
        try:
            await self.redis.zrem(inflight_key(org_id), job_id)
        except (RedisError, OSError) as exc:
            log.warning("could not release %s from the jobs in flight (%s)", job_id, exc)


class Outcomes(Background):
    """Waits for jobs' outcomes, which the status service announces on a Redis channel, and reads
    the outcome it keeps for each settled job.

    Every ingest replica hears every announcement, so whichever replica holds the request
    answers it. A waiter is registered before the import is published, so none is missed. An
    announcement carries the outcome sealed under the job's data key (shared.channels.announcement):
    the waiter opens it, and nobody else does.
    """

    def __init__(self, redis: Redis, keys: DataKeys) -> None:
        """`keys`: the jobs' data keys, which open the outcomes the status service seals."""
        self.redis, self.keys = redis, keys
        self._waiters: dict[str, list[asyncio.Future[bytes]]] = {}

    async def run(self) -> None:
        while True:
            try:
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(JOB_OUTCOME)
                async for message in pubsub.listen():
                    self._deliver(message.get("data"))
            except (RedisError, OSError) as exc:
                log.warning("outcome channel lost (%s); resubscribing", exc)
                await asyncio.sleep(1)

    def _deliver(self, data: Any) -> None:
        """The announced outcome, still sealed, to the imports here waiting for its job. Nothing
        else is done with an announcement here: the listening loop stays cheap, and one with no
        import waiting here (async imports, or another replica's) is not even split."""
        if not self._waiters or (heard := announced(data)) is None:
            return
        job_id, outcome = heard
        if job_id not in self._waiters:
            return
        if outcome[:1] == b"{" and _settled(outcome) is None:
            return  # a release before's JSON that is no outcome is ignored, its waiters wait on
        for future in self._waiters.pop(job_id, []):
            if not future.done():
                future.set_result(outcome)

    async def kept(self, job_id: str) -> JobSettled | None:
        """The outcome the status service keeps for a settled job, or None (not settled, expired, malformed)."""
        return await self._open(job_id, await self.redis.get(outcome_key(job_id)))

    async def _open(self, job_id: str, outcome: bytes | str | None) -> JobSettled | None:
        """A kept or announced outcome of the job, opened with its key (read only for a sealed one:
        an outcome of a release before is JSON); None when there is none, its key is gone, or it is
        not this job's (the seal is bound to the job's id)."""
        if not outcome:
            return None
        keys = await self.keys.keys([job_id]) if isinstance(outcome, bytes) and outcome.startswith(BLOB) else {}
        settled = _settled(open_outcome(outcome, keys.get(job_id), job_id))
        return settled if settled is not None and settled.job_id == job_id else None

    def expect(self, job_id: str) -> asyncio.Future[bytes]:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, []).append(future)
        return future

    def forget(self, job_id: str, future: asyncio.Future[bytes]) -> None:
        waiters = self._waiters.get(job_id, [])
        if future in waiters:
            waiters.remove(future)
        if not waiters:
            self._waiters.pop(job_id, None)

    async def wait(self, job_id: str, future: asyncio.Future[bytes], timeout_s: float) -> JobSettled | None:
        """The job's outcome once announced, opened; None when it is not announced within
        `timeout_s`, or cannot be opened (its key gone, or Redis failing: the import was accepted,
        and answers 202 rather than an error)."""
        try:
            outcome = await asyncio.wait_for(asyncio.shield(future), timeout_s) if timeout_s > 0 else None
        except TimeoutError:
            return None
        finally:
            self.forget(job_id, future)
        try:
            return await self._open(job_id, outcome)
        except (RedisError, OSError) as exc:
            log.warning("could not read the data key to open %s's outcome (%s); answering 202", job_id, exc)
            return None


def _settled(data: Any) -> JobSettled | None:
    """A JobSettled message, or None for anything else (a malformed message is ignored)."""
    if not isinstance(data, str | bytes):
        return None
    try:
        return JobSettled.model_validate_json(data)
    except ValidationError:
        return None


class JobHeads:
    """The head of each job the status service mirrors to Redis: version, status, finished stops."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def get(self, job_id: str) -> JobHead | None:
        """The job's head, or None (not written yet, expired, malformed)."""
        raw = await self.redis.get(jobhead_key(job_id))
        if raw is None:
            return None
        try:
            return JobHead.model_validate_json(raw)
        except ValidationError:
            return None
