"""Kafka side of the status service: the read model's consumer and its routing table."""

from collections.abc import Callable

from faststream.kafka import KafkaBroker
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError

from services.status import handlers
from services.status.handlers import FollowUp, ReadModel
from shared.broker import EventBus, TransientError, subscribe_batch
from shared.events import (
    AUTH_EVENTS,
    JOBS_FAILED,
    JOBS_GEOCODED,
    JOBS_GEOCODED_BULK,
    JOBS_OPTIMIZED,
    JOBS_REQUESTED,
    JOBS_REQUESTED_BULK,
    STOPS_STATUS,
    DriverRegistered,
    DriverRemoved,
    Event,
    ImportRequested,
    JobCancelled,
    JobErased,
    JobFailed,
    OrganizationErased,
    OrgRetentionSet,
    RouteOptimized,
    StopsGeocoded,
    StopStatusChanged,
)

GROUP = "routemate-status"
# Both lanes of the jobs' topics: a job in the bulk lane is requested and geocoded on its own topics.
TOPICS = (
    JOBS_REQUESTED,
    JOBS_REQUESTED_BULK,
    JOBS_GEOCODED,
    JOBS_GEOCODED_BULK,
    JOBS_OPTIMIZED,
    JOBS_FAILED,
    STOPS_STATUS,
    AUTH_EVENTS,
)

# The routing table. The read model applies the event types listed, a poll's worth in one
# transaction; once that is committed, each event sets off the follow-ups beside it. Anything
# else on the topics (the audit trail besides the driver directory, the optimizer's re-plan
# commands) is skipped. Only an import,
# a route or a failure can settle a job: the lifecycle's status follows from what those establish.
ROUTES: dict[type[Event], frozenset[FollowUp]] = {
    ImportRequested: frozenset({FollowUp.ANNOUNCE_SETTLED}),  # also a settled job's import published again
    StopsGeocoded: frozenset(),
    RouteOptimized: frozenset({FollowUp.OBSERVE_LATENCY, FollowUp.ANNOUNCE_SETTLED}),
    JobFailed: frozenset({FollowUp.ANNOUNCE_SETTLED}),
    JobCancelled: frozenset({FollowUp.ANNOUNCE_SETTLED}),  # an import still waiting gets its answer
    StopStatusChanged: frozenset(),
    DriverRegistered: frozenset(),
    DriverRemoved: frozenset(),
    JobErased: frozenset(),  # the job's rows go (the DELETE did it already; a rebuild does it here)
    OrgRetentionSet: frozenset(),  # the retention task reads it
    OrganizationErased: frozenset(),  # its jobs, drivers and setting go; its jobs' keys too (ReadModel.erased)
}
# The routed types whose personal fields the read model never reads, so they are applied sealed:
# a geocoding's writer takes the stops' places, the depot's and the warnings, not the copy of the
# spec the event carries on for the optimizer (the import's copy is the one projected). Opening
# its 20-odd sealed values per job, that nothing read, was about a tenth of the consumer's CPU.
# A writer that comes to read such a field must take its type out of here (a test reads a job
# published sealed and one published plain: nothing sealed may read out).
KEPT_SEALED: frozenset[type[Event]] = frozenset({StopsGeocoded})


def subscribe_read_model(
    broker: KafkaBroker,
    bus: EventBus,
    reader: ReadModel,
    batch_size: int,
    changed: Callable[[], None] = lambda: None,
    group: str = GROUP,
    linger_ms: int = 0,
) -> None:
    """The projection consumer: every topic of the read model, in consumer group `group`."""

    async def on_events(events: list[Event]) -> None:
        try:
            await handlers.project(events, ROUTES, reader, KEPT_SEALED)
        except OperationalError as exc:  # the database is down or locked: retry, never dead-letter
            raise TransientError(f"database unavailable: {exc.orig}") from exc
        except (RedisError, ConnectionError) as exc:  # the data keys cannot be read: retry, never dead-letter
            raise TransientError(f"data keys unavailable: {exc}") from exc
        changed()  # the outbox relay publishes what the batch changed

    async def on_event(event: Event) -> None:
        await on_events([event])

    # A poll's events in one transaction (offsets committed once a second): the projection keeps up with bursts.
    # Lingering a few ms after the first event makes a burst's events share them (a poll brings
    # about one), and the relay's pass, the outcomes' Redis round trip and the notifier's batch too.
    subscribe_batch(broker, bus, TOPICS, group, on_events, on_event, max_records=batch_size, linger_ms=linger_ms)
