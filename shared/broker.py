"""Kafka broker factory, the event bus, and consumers that commit only after their work is done."""

import asyncio
import contextlib
import logging
import math
import ssl
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any

import aiokafka
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    InvalidProducerEpoch,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    RecordTooLargeError,
    UnknownProducerId,
)
from faststream._internal.context import Context
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage as _KafkaMessage
from faststream.middlewares import AckPolicy
from faststream.security import BaseSecurity, SASLScram256, SASLScram512
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared import logs
from shared.events import BULK_TOPICS, DEADLETTER, Event, JobFailed, UndecodableEvent, caused_by, decode_event, utcnow
from shared.lanes import LaneGate, bulk_group, in_lane
from shared.metrics import BATCH_EVENTS, EVENTS_CONSUMED, EVENTS_DEADLETTERED, EVENTS_PUBLISHED, OFFSET_COMMITS
from shared.settings import EVENT_BUDGET_BYTES, PlatformSettings
from shared.vocabulary import FailureCode

log = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None]]


class _MessageOnTheLoop(Context):
    """FastStream's `Context("message")`, resolved on the event loop. FastDepends runs a custom
    field's synchronous `use` in a worker thread (anyio.to_thread): with the stock KafkaMessage
    annotation every message (every batch) a consumer took paid a thread hop and a lock handoff
    just to be handed its own message, the largest transport item in the optimizer's profile."""

    async def use(self, /, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return super().use(**kwargs)


KafkaMessage = Annotated[_KafkaMessage, _MessageOnTheLoop("message")]

# A per-message consumer commits what it handled at most this often, not after every message: one
# OffsetCommit round trip per job per stage was a third of the broker's requests and a wait in each
# stage's loop. A crash redelivers at most this much work, which every stage handles idempotently
# (derived events keep their source's event id: shared.events.caused_by).
COMMIT_INTERVAL_S = 1.0
COMMIT_MAX_PENDING = 200
# How long the broker holds a fetch that finds nothing new. Data arriving ends the wait at once
# (fetch.min.bytes stays 1), so this costs no latency; it is how often an idle consumer asks
# again (Kafka's default 500 ms made idle consumers a good part of the broker's idle CPU). A seek
# back (a retried message) waits for the fetch in flight, so it stays short: 3 s made recovery
# after a broker outage measurably slower.
IDLE_FETCH_WAIT_MS = 1000


class TransientError(Exception):
    """A dependency is down (database, Redis, a provider): retry the message, never dead-letter it."""


class EventTooLarge(ValueError):
    """An event is over the size budget every topic accepts: no retry can ever publish it."""

    def __init__(self, event_type: str, size: int, budget: int) -> None:
        super().__init__(f"{event_type} is {size} bytes, over the {budget}-byte event budget")
        self.event_type, self.size, self.budget = event_type, size, budget


# Kafka errors that no retry can fix: the same message fails the same way every time.
_DETERMINISTIC_KAFKA = (MessageSizeTooLargeError, RecordTooLargeError, InvalidTopicError)
_TRANSIENT = (TransientError, ConnectionError, TimeoutError, OSError, RedisConnectionError, RedisTimeoutError)


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same message later can succeed: an outage (database, Redis, the
    broker) yes; the message's own content (bad values, an event too large) never."""
    if isinstance(exc, _DETERMINISTIC_KAFKA):
        return False
    # Any other broker error (leader moves, timeouts, a broken producer session) is an outage.
    return isinstance(exc, _TRANSIENT + (KafkaError,))


async def publish_outcome(bus: "EventBus", source: Event, outcome: Event, stage: str) -> None:
    """Publish what a stage derived from `source`; if it is over the event budget, the job fails
    with EVENT_TOO_LARGE instead (a derived event that can never be published must not leave the
    job waiting forever, nor be retried)."""
    try:
        await bus.publish(outcome)
    except EventTooLarge as exc:
        log.warning("%s of %s is too large to publish: %s", outcome.event_type, source.job_id, exc)
        await bus.publish(
            JobFailed(
                **caused_by(source, "JobFailed"),
                job_id=source.job_id,
                spec_version=getattr(source, "spec_version", None),  # the spec it was derived for
                stage=stage,
                code=FailureCode.EVENT_TOO_LARGE,
                message=f"The job's {outcome.event_type} event is over the platform's size budget "
                f"({exc.size} of {exc.budget} bytes); split it into smaller jobs.",
            )
        )


def broker_security(settings: PlatformSettings) -> BaseSecurity | None:
    """FastStream's form of the Kafka security settings: SCRAM over SASL (TLS with SASL_SSL)."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    assert settings.kafka_sasl_username and settings.kafka_sasl_password
    scram = SASLScram512 if settings.kafka_sasl_mechanism == "SCRAM-SHA-512" else SASLScram256
    tls = settings.kafka_security_protocol == "SASL_SSL"
    return scram(
        settings.kafka_sasl_username,
        settings.kafka_sasl_password.get_secret_value(),
        ssl_context=ssl.create_default_context() if tls else None,
        use_ssl=tls,
    )


def dispatcher(table: dict[type[Event], Handler]) -> Handler:
    """One handler for a consumer's routing table: each event to the handler of its type; an event
    of another stage that shares the topic is not this consumer's to handle."""

    async def dispatch(event: Event) -> None:
        handler = table.get(type(event))
        if handler is not None:
            await handler(event)

    return dispatch


def make_broker(settings: PlatformSettings, service: str) -> KafkaBroker:
    """An idempotent acks=all producer (KAFKA_LINGER_MS to let a burst share produce requests;
    KAFKA_MAX_BATCH_BYTES so that concurrent sends to a partition can share them at all).

    No FastStream Prometheus middleware: it wrapped every message consumed and published in a
    second set of series nobody reads (EVENTS_CONSUMED / EVENTS_PUBLISHED and the stages' own
    histograms are the platform's), at several per cent of each stage's CPU (bench/cpu.py)."""
    return KafkaBroker(
        # A list, one address each: FastStream would pass "a:9092,b:9092" on as one host name.
        [server.strip() for server in settings.kafka_bootstrap_servers.split(",") if server.strip()],
        security=broker_security(settings),
        client_id=f"routemate-{service}",
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=15_000,
        linger_ms=settings.kafka_linger_ms,
        max_batch_size=min(settings.kafka_max_batch_bytes, settings.kafka_max_message_bytes),
        # The same limit the topics are created with (shared/topics.py): an event the producer
        # accepts is one every topic and consumer accepts too.
        max_request_size=settings.kafka_max_message_bytes,
        logger=logging.getLogger(f"faststream.{service}"),
        log_level=logging.DEBUG,  # one line per message is too much at INFO under load
    )


# The idempotent producer's session is broken for good after these (seen when the broker
# restarts under load): only a new producer, with a new producer id, publishes again.
_PRODUCER_BROKEN = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch, ProducerFenced)


class EventBus:
    """Publishes events keyed by job (or organization); returns once Kafka acknowledged them."""

    def __init__(self, broker: KafkaBroker, service: str, budget_bytes: int | None = None) -> None:
        self.broker, self.service = broker, service
        self.budget_bytes = budget_bytes or EVENT_BUDGET_BYTES
        self._renewing = asyncio.Lock()
        self._producer_generation = 0  # how many times the producer was replaced
        self._producer_lost = False  # the old producer is gone and no new one connected yet

    async def publish(self, event: Event) -> None:
        """Publish and return once Kafka acknowledged; EventTooLarge (never retried) if over budget."""
        payload = event.to_bytes()
        if len(payload) > self.budget_bytes:
            raise EventTooLarge(event.event_type, len(payload), self.budget_bytes)
        headers = {
            "event_type": event.event_type,
            "schema_version": str(event.schema_version),
            "content-type": "application/json",
        }
        await self._send(
            payload, event.topic, event.key, headers, correlation_id=event.correlation_id or str(event.event_id)
        )
        EVENTS_PUBLISHED.labels(self.service, event.topic).inc()

    async def _send(
        self, payload: bytes, topic: str, key: bytes | None, headers: dict[str, str], **options: Any
    ) -> None:
        """Every send of the bus (events and dead letters). A producer whose idempotent session
        broke (after a broker restart under load) is replaced and the send made once more on the
        new one: the broker refused that batch, and without this the first import after a broker
        restart was a 503. A second failure is the caller's, as is a replacement that cannot
        connect yet (the next send tries again)."""
        for attempt in range(2):
            generation = self._producer_generation
            if self._producer_lost:  # a replacement that could not connect (the broker was down): again
                await self._renew_producer(None, generation)
                generation = self._producer_generation
            try:
                await self.broker.publish(payload, topic, key=key, headers=headers, **options)
                return
            except _PRODUCER_BROKEN as exc:
                await self._renew_producer(exc, generation)
                if attempt:
                    raise

    async def _renew_producer(self, exc: Exception | None, generation: int) -> None:
        """Replace the broker's producer, unless a concurrent publish that failed with the same one
        already did (a burst's sends all fail together: one new producer, not one each). If the new
        one cannot connect (the broker is down), that error is the caller's, and the next publish
        tries to connect one again: a bus is never left without a producer."""
        async with self._renewing:
            if self._producer_generation != generation and not self._producer_lost:
                return
            config = self.broker.config
            if not self._producer_lost:
                log.warning("producer session broken (%s); starting a new producer", type(exc).__name__)
                self._producer_lost = True
                await config.producer.disconnect()
            else:
                log.warning("connecting a new producer again (the last attempt failed)")
            producer = aiokafka.AIOKafkaProducer(**self.broker._connection_kwargs)
            try:
                await config.producer.connect(
                    producer, serializer=config.fd_config._serializer, codec=config.broker_codec
                )
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()  # what its failed start made (a client, a sender task)
                raise
            self._producer_lost = False
            self._producer_generation += 1

    async def deadletter(self, record: Any, reason: str) -> None:
        """Park a message we cannot process: its bytes unchanged (so whatever fit its topic fits
        here), where it came from and why in the headers, as Kafka Connect's dead-letter queues do."""
        headers = {
            "reason": reason[:1000],
            "service": self.service,
            "source_topic": record.topic,
            "source_partition": str(record.partition),
            "source_offset": str(record.offset),
            "deadlettered_at": utcnow().isoformat(),
        }
        await self._send(record.value or b"", DEADLETTER, record.key, headers)
        EVENTS_DEADLETTERED.labels(self.service, record.topic).inc()
        log.warning("dead-lettered %s[%s]@%s: %s", record.topic, record.partition, record.offset, reason)


class DeliveryGuard:
    """Decides, per failed message: an outage is retried with capped exponential backoff for as
    long as it lasts; a failure caused by the message itself is dead-lettered at once, so no single
    message holds its partition (and every tenant behind it) for even one retry."""

    def __init__(self, backoff_s: float = 0.5, max_backoff_s: float = 10.0) -> None:
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self._attempts: dict[tuple[str, int, int], int] = {}

    def failed(self, record: Any, exc: BaseException) -> tuple[bool, float]:
        """(retry?, seconds to wait first) for this failure."""
        key = (record.topic, record.partition, record.offset)
        if not is_transient(exc):
            self._attempts.pop(key, None)
            return False, 0.0
        attempt = self._attempts.get(key, 0) + 1
        self._attempts[key] = attempt
        return True, min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)

    def done(self, record: Any) -> None:
        self._attempts.pop((record.topic, record.partition, record.offset), None)


class OffsetCommitter(ConsumerRebalanceListener):
    """Commits what a consumer's handler is done with (a message, or a batch consumer's batch) every
    `interval_s` or every `max_pending` messages (whichever first), and before its partitions are
    revoked.

    A commit due after a message (or batch) is handled is the consumer's whole position, every assigned
    partition, as a commit per message was: nothing else is in hand at that moment, and every
    partition gets a committed offset, so the lag monitor sees lag on partitions that never had a
    message yet. A commit at any other moment (a quiet consumer's timer, a rebalance, shutdown)
    is only the handled messages' offsets, since another message may be in hand by then.
    What is pending when the process dies is delivered again: at-least-once, as with a commit
    per message, only with a larger window."""

    def __init__(
        self, service: str = "", interval_s: float = COMMIT_INTERVAL_S, max_pending: int = COMMIT_MAX_PENDING
    ) -> None:
        self.service, self.interval_s, self.max_pending = service, interval_s, max_pending
        self._consumer: Any = None
        self._pending: dict[TopicPartition, int] = {}
        self._count = 0
        self._last = -math.inf
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def pending(self) -> dict[TopicPartition, int]:
        return dict(self._pending)

    async def handled(self, consumer: Any, *records: Any) -> None:
        """`records` are done (a message, or a batch consumer's whole batch) and no other message
        is in hand: commit now if one is due."""
        self._consumer = consumer
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self._pending[tp] = max(record.offset + 1, self._pending.get(tp, 0))
        self._count += len(records)
        if self._count >= self.max_pending or time.monotonic() - self._last >= self.interval_s:
            await self._commit(positions=True)
        elif self._timer is None:  # a consumer that goes quiet still commits its last messages
            self._timer = asyncio.get_running_loop().call_later(self.interval_s, self._commit_soon)

    def _commit_soon(self) -> None:
        self._timer = None
        self._flushing = asyncio.ensure_future(self._commit_quietly())

    async def _commit_quietly(self) -> None:
        try:
            await self.commit()
        except (KafkaError, OSError) as exc:  # kept pending: the next commit carries it
            log.warning("committing offsets failed (%s: %s); retried with the next commit", type(exc).__name__, exc)

    async def commit(self) -> None:
        """Commit the handled messages' offsets, of the partitions this consumer still owns."""
        await self._commit(positions=False)

    async def _commit(self, positions: bool) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        async with self._lock:
            if not self._pending or self._consumer is None:
                return
            pending, consumer = self._pending, self._consumer
            self._pending, self._count, self._last = {}, 0, time.monotonic()
            assignment = getattr(consumer, "assignment", None)
            offsets = None
            if not positions and assignment is not None:
                owned = assignment()
                offsets = {tp: offset for tp, offset in pending.items() if tp in owned}
                if not offsets:
                    return
            try:
                # No offsets: the consumer's position in every partition (FastStream's in-memory
                # test consumer takes only that form).
                await (consumer.commit() if offsets is None else consumer.commit(offsets))
            except (CommitFailedError, IllegalStateError) as exc:
                # The group moved these partitions on: their new owner resumes from the last
                # commit and handles the rest again, idempotently.
                log.info("offsets of revoked partitions not committed (%s)", type(exc).__name__)
                return
            except BaseException:
                for tp, offset in pending.items():  # kept, unless a later offset came meanwhile
                    self._pending[tp] = max(offset, self._pending.get(tp, 0))
                raise
            OFFSET_COMMITS.labels(self.service).inc()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        """Before a rebalance: what was handled is committed while the partitions are still ours."""
        try:
            await self.commit()
        except (KafkaError, OSError) as exc:
            log.warning("committing before a rebalance failed (%s: %s)", type(exc).__name__, exc)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


class ConsumerCommitters(ConsumerRebalanceListener):
    """An OffsetCommitter for each consumer of one subscriber that runs several (`subscribe` with
    `in_hand` > 1): a committer's commit after a message is its consumer's whole position, which
    only that consumer may commit. Each is registered with the broker's committers as it is made,
    so the shutdown flushes each (`flush_commits`). The rebalance listener is the subscriber's,
    shared by its consumers and not told which one is rebalancing: each committer commits what its
    own consumer handled of the partitions that consumer still owns.

    Kept per consumer for the subscriber's life: our services start their subscribers once per
    process, so this holds SOLVER_IN_HAND of them."""

    def __init__(self, broker: KafkaBroker, service: str = "") -> None:
        self.broker, self.service = broker, service
        self._each: dict[Any, OffsetCommitter] = {}
        OFFSET_COMMITS.labels(service)  # from 0, before any consumer has a committer

    def of(self, consumer: Any) -> OffsetCommitter:
        if (committer := self._each.get(consumer)) is None:
            committer = self._each[consumer] = _registered(self.broker, OffsetCommitter(self.service))
        return committer

    @property
    def pending(self) -> dict[TopicPartition, int]:
        return {tp: offset for committer in list(self._each.values()) for tp, offset in committer.pending.items()}

    async def handled(self, consumer: Any, *records: Any) -> None:
        await self.of(consumer).handled(consumer, *records)

    async def on_partitions_revoked(self, revoked: Any) -> None:
        for committer in list(self._each.values()):
            await committer.on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


# Every OffsetCommitter of a broker, so a stopping service commits what it handled (flush_commits).
_COMMITTERS: "weakref.WeakKeyDictionary[KafkaBroker, list[OffsetCommitter]]" = weakref.WeakKeyDictionary()


def _registered(broker: KafkaBroker, committer: OffsetCommitter) -> OffsetCommitter:
    """`committer`, flushed with the broker's others at shutdown, its commits counted from 0 (so the
    first interval's commits are counted too)."""
    OFFSET_COMMITS.labels(committer.service)
    _COMMITTERS.setdefault(broker, []).append(committer)
    return committer


async def flush_commits(broker: KafkaBroker) -> None:
    """Commit what every consumer of `broker` (per-message and batch) has handled: call before broker.stop()."""
    for committer in _COMMITTERS.get(broker, []):
        try:
            await committer.commit()
        except (KafkaError, OSError) as exc:  # at-least-once: the rest is redelivered after the restart
            log.warning("committing offsets at shutdown failed (%s: %s)", type(exc).__name__, exc)


def rewind(consumer: Any, records: Iterable[Any]) -> None:
    """Seek each partition of `records` back to its earliest one, so they all come again; a
    partition the consumer no longer owns (a rebalance meanwhile) is left alone: its new owner
    reads on from the last commit. FastStream's nack stopped at the first partition it could not
    seek, leaving the others past records never applied, for the next commit to skip."""
    earliest: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        earliest[tp] = min(record.offset, earliest.get(tp, record.offset))
    assignment = getattr(consumer, "assignment", None)
    if assignment is None:  # FastStream's in-memory test consumer: nothing to seek
        return
    owned = assignment()
    for tp, offset in earliest.items():
        if tp in owned:
            with contextlib.suppress(IllegalStateError):  # revoked since `assignment()`
                consumer.seek(tp, offset)


def subscribe(
    broker: KafkaBroker,
    bus: EventBus,
    topics: Iterable[str],
    group: str,
    handler: Handler,
    guard: DeliveryGuard | None = None,
    *,
    max_poll_records: int = 50,
    max_poll_interval_ms: int = 300_000,
    committer: OffsetCommitter | None = None,
    in_hand: int = 1,
) -> None:
    """Consume `topics` in consumer group `group`; a message's offset is committed after `handler`
    returned, with the others handled in the same second (`OffsetCommitter`).

    `in_hand` > 1 (one topic only): that many consumers in the group, in this process, each with
    its own partitions, each handling one message after another and committing its own, so up
    to that many messages are in hand at once and a partition's stay in order. While one
    message's handler waits (for a solve, an ack), the next one is decoded and ready.

    Undecodable messages are dead-lettered at once; a handler that keeps failing on the same
    message dead-letters it after the guard's attempts, unless the failure is transient.
    A slow handler takes fewer records per poll: the group waits for a whole batch before a
    rebalance, and drops a member that does not poll again within `max_poll_interval_ms`.
    """
    guard = guard or DeliveryGuard()
    topics = tuple(topics)
    if in_hand > 1 and (committer is not None or len(topics) != 1):
        raise ValueError("in_hand > 1 takes one topic, and its own committers")
    commits = (
        ConsumerCommitters(broker, bus.service)
        if in_hand > 1
        else _registered(broker, committer or OffsetCommitter(bus.service))
    )
    _register_series(bus, topics)

    @broker.subscriber(
        *topics,
        group_id=group,
        max_workers=in_hand,
        auto_offset_reset="earliest",
        # Commits are ours (the committer); a failure rewinds to the message (`rewind` below).
        ack_policy=AckPolicy.MANUAL,
        max_poll_records=max_poll_records,
        max_poll_interval_ms=max_poll_interval_ms,
        fetch_max_wait_ms=IDLE_FETCH_WAIT_MS,
        listener=commits,
    )
    async def _consume(msg: KafkaMessage) -> None:
        record = msg.raw_message
        try:
            try:
                event = decode_event(msg.body)
            except UndecodableEvent as exc:
                await _deadletter_undecodable(bus, record, exc)
            else:
                await _deliver(bus, guard, record, event, handler)
        except BaseException:
            rewind(msg.consumer, (record,))  # it comes again
            raise
        await commits.handled(msg.consumer, record)


def subscribe_lanes(
    broker: KafkaBroker,
    bus: EventBus,
    topics: Iterable[str],
    group: str,
    handler: Handler,
    gate: LaneGate,
    *,
    max_poll_records: int = 50,
    max_poll_interval_ms: int = 300_000,
    in_hand: int = 1,
) -> None:
    """Both lanes of `topics` (normal-lane topics): the normal lane as `subscribe` does, in `group`;
    the bulk lane in its own group, one message per poll, each starting only when `gate` allows.
    Each lane keeps `in_hand` messages in hand (`subscribe`); the handler runs `in_lane` of its
    lane, so what the lanes share can serve the normal one first.

    The bulk consumer polls again at most max_wait_s + one handling after its last poll: allow
    max_poll_interval_ms for that (twice the gate's bound at least), so it keeps its membership.
    """
    topics = tuple(topics)

    async def normal(event: Event) -> None:
        async with gate.normal():
            with in_lane("normal"):
                await handler(event)

    async def bulk(event: Event) -> None:
        since = time.monotonic()
        await gate.bulk_turn()
        with in_lane("bulk", since):  # its wait for the stage's solver, say, counts from here
            await handler(event)

    subscribe(
        broker,
        bus,
        topics,
        group,
        normal,
        max_poll_records=max_poll_records,
        max_poll_interval_ms=max_poll_interval_ms,
        in_hand=in_hand,
    )
    subscribe(
        broker,
        bus,
        tuple(BULK_TOPICS[topic] for topic in topics),
        bulk_group(group),
        bulk,
        max_poll_records=1,
        max_poll_interval_ms=max(max_poll_interval_ms, int(gate.max_wait_s * 2 * 1000)),
        in_hand=in_hand,
    )


def subscribe_batch(
    broker: KafkaBroker,
    bus: EventBus,
    topics: Iterable[str],
    group: str,
    handle_many: Callable[[list[Event]], Awaitable[None]],
    handle_one: Handler,
    guard: DeliveryGuard | None = None,
    *,
    max_records: int = 200,
    batch_timeout_ms: int = 20,
    linger_ms: int = 0,
    committer: OffsetCommitter | None = None,
) -> None:
    """Like `subscribe`, a poll at a time: `handle_many` takes every event of the poll (one
    transaction), in partition order. Offsets are committed as `subscribe` commits them (an
    `OffsetCommitter`: at most once a second or every COMMIT_MAX_PENDING events), not after every
    batch: in a burst a batch holds a few events, and a commit each was a broker round trip the
    consumer waited for before its next poll, and most of the platform's OffsetCommit requests.

    `linger_ms`: once a poll brought something, keep collecting for up to that long (or until
    `max_records`) before handling it (`lingering`). In a burst a poll brings about one event, so
    without it each event paid a whole batch (transaction, commit, follow-ups); a lone event
    waits `linger_ms` at most.

    If the batch fails on an outage it is retried whole. If it fails on anything else, its
    events go through `handle_one` one by one, so only the poisoned event is dead-lettered.
    Both handlers must be idempotent: a retried batch brings events that were applied already.
    """
    guard = guard or DeliveryGuard()
    committer = _registered(broker, committer or OffsetCommitter(bus.service))
    topics = tuple(topics)
    _register_series(bus, topics)

    subscriber = broker.subscriber(
        *topics,
        group_id=group,
        auto_offset_reset="earliest",
        # Commits are the committer's; a failed batch rewinds each of its partitions (`rewind`).
        ack_policy=AckPolicy.MANUAL,
        batch=True,
        max_records=max_records,
        batch_timeout_ms=batch_timeout_ms,
        fetch_max_wait_ms=IDLE_FETCH_WAIT_MS,
        listener=committer,
        decoder=_undecoded,
    )
    if linger_ms > 0 and hasattr(subscriber, "get_msg"):  # FastStream's in-memory test broker polls nothing
        subscriber.get_msg = lingering(subscriber.get_msg, linger_ms, max_records)

    @subscriber
    async def _consume_many(msg: KafkaMessage) -> None:
        records: tuple[Any, ...] = msg.raw_message
        try:
            await _handle_batch(records)
        except BaseException:
            rewind(msg.consumer, records)  # the whole batch comes again
            raise
        await committer.handled(msg.consumer, *records)

    async def _handle_batch(records: tuple[Any, ...]) -> None:
        decoded, undecodable = [], []
        for record in records:
            try:
                decoded.append((record, decode_event(record.value or b"")))
            except UndecodableEvent as exc:
                undecodable.append((record, exc))
        if decoded:
            started = time.perf_counter()
            try:
                await handle_many([event for _, event in decoded])
            except Exception as exc:
                if is_transient(exc):
                    _, wait = guard.failed(decoded[0][0], exc)
                    log.warning(
                        "handling a batch of %d events failed (%s: %s); retrying in %.1fs",
                        len(decoded),
                        type(exc).__name__,
                        exc,
                        wait,
                    )
                    for record, _ in decoded:
                        EVENTS_CONSUMED.labels(bus.service, record.topic, "retried").inc()
                    await asyncio.sleep(wait)
                    raise
                log.warning(
                    "a batch of %d events failed (%s: %s); handling them one by one",
                    len(decoded),
                    type(exc).__name__,
                    exc,
                )
                for record, event in decoded:
                    await _deliver(bus, guard, record, event, handle_one)
            else:
                BATCH_EVENTS.labels(bus.service).observe(len(decoded))
                for record, _ in decoded:
                    guard.done(record)
                    EVENTS_CONSUMED.labels(bus.service, record.topic, "ok").inc()
                log.debug("handled %d events in %.1f ms", len(decoded), (time.perf_counter() - started) * 1000)
        # Only once the rest is done: a batch that is retried would park these twice.
        for record, exc in undecodable:
            await _deadletter_undecodable(bus, record, exc)


async def _undecoded(msg: Any) -> None:
    """A batch's decoder that decodes nothing: its handler reads the records themselves
    (decode_event, with orjson). FastStream's own decoder first made a message of every record and
    json-parsed its body with the standard library, for nothing: 8.5 % of the status service's CPU
    in a burst (py-spy)."""
    return None


def lingering(
    poll: Callable[[Any], Awaitable[tuple[Any, ...]]], linger_ms: int, max_records: int
) -> Callable[[Any], Awaitable[tuple[Any, ...]]]:
    """A batch subscriber's poll that, once records arrived, polls on for up to `linger_ms` (or
    until `max_records`) and hands them over as one batch. Each partition's records stay in
    order; nothing is committed before the whole batch is handled (the subscriber's committer),
    and a failed batch rewinds every partition it holds (`rewind`), so delivery stays at least
    once. A poll that fails while lingering ends the linger: what was collected is handed over
    (Kafka's error meets the next poll, as it would have without lingering); anything else
    (a cancellation) rewinds what was collected.

    It lingers only when several jobs' events are flowing: when the poll brought records of
    several keys (jobs), or the batch before held another key's. A job's own events, one per
    stage, and a record after an empty poll (a single import, a webhook's change on a quiet
    platform) are handed over at once, so lingering costs a quiet platform no latency.
    """
    previous: set[Any] | None = None  # the keys of the last batch handed over; None after an empty poll

    async def poll_lingering(consumer: Any) -> tuple[Any, ...]:
        nonlocal previous
        records = await poll(consumer)
        if not records:
            previous = None
            return records
        keys = {record.key for record in records}
        if len(records) >= max_records or (len(keys) == 1 and previous in (None, keys)):
            previous = keys
            return records
        collected = list(records)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + linger_ms / 1000
        while len(collected) < max_records and (left := deadline - loop.time()) > 0:
            try:
                more = await consumer.getmany(
                    timeout_ms=max(1, round(left * 1000)), max_records=max_records - len(collected)
                )
            except KafkaError as exc:  # what was collected is good: handed over; the next poll meets the error
                log.warning(
                    "a poll failed while lingering (%s: %s); handing over the batch so far", type(exc).__name__, exc
                )
                break
            except BaseException:
                rewind(consumer, collected)  # polled, never handled (cancelled): the next poll brings them again
                raise
            for partition_records in more.values():
                collected.extend(partition_records)
        previous = {record.key for record in collected}
        return tuple(collected)

    return poll_lingering


def _register_series(bus: EventBus, topics: tuple[str, ...]) -> None:
    for topic in topics:  # series exist from the start, so rate() sees the first events too
        for outcome in ("ok", "retried", "deadlettered"):
            EVENTS_CONSUMED.labels(bus.service, topic, outcome)


async def _deadletter_undecodable(bus: EventBus, record: Any, exc: UndecodableEvent) -> None:
    await bus.deadletter(record, str(exc))
    EVENTS_CONSUMED.labels(bus.service, record.topic, "deadlettered").inc()


async def _deliver(bus: EventBus, guard: DeliveryGuard, record: Any, event: Event, handler: Handler) -> None:
    """`handler` on one event: done, dead-lettered after repeated failures, or raise to get it again."""
    cid = logs.correlation_id.set(event.correlation_id)
    jid = logs.job_id.set(getattr(event, "job_id", "") or "")
    started = time.perf_counter()
    try:
        await handler(event)
    except Exception as exc:
        retry, wait = guard.failed(record, exc)
        if retry:
            log.warning(
                "handling %s failed (%s: %s); retrying in %.1fs", event.event_type, type(exc).__name__, exc, wait
            )
            EVENTS_CONSUMED.labels(bus.service, record.topic, "retried").inc()
            await asyncio.sleep(wait)
            raise
        log.warning("dead-lettering %s: %s: %s", event.event_type, type(exc).__name__, exc)
        await bus.deadletter(record, f"handler failed: {type(exc).__name__}: {exc}"[:1000])
        EVENTS_CONSUMED.labels(bus.service, record.topic, "deadlettered").inc()
        return
    finally:
        logs.correlation_id.reset(cid)
        logs.job_id.reset(jid)
    guard.done(record)
    EVENTS_CONSUMED.labels(bus.service, record.topic, "ok").inc()
    log.debug("handled %s in %.1f ms", event.event_type, (time.perf_counter() - started) * 1000)
