"""Kafka side of the notifier: the job changes' consumer and its routing table."""

from collections.abc import Callable

from faststream.kafka import KafkaBroker
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError

from services.notifier import handlers
from services.notifier.adapters.store import DeliveryStore
from shared.broker import EventBus, TransientError, subscribe_batch
from shared.events import JOBS_CHANGES, Event, JobChanged
from shared.pii import DataKeys

GROUP = "routemate-notifier"  # the default of settings.notifier_group
TOPICS = (JOBS_CHANGES,)


def subscribe_changes(
    broker: KafkaBroker,
    bus: EventBus,
    store: DeliveryStore,
    scheduled: Callable[[], None],
    group: str = GROUP,
    keys: DataKeys | None = None,
    linger_ms: int = 0,
) -> None:
    """Each poll's changes become deliveries in one transaction before the offsets are committed.
    Their job views are opened with the jobs' data keys (None: taken as they come, in tests)."""

    async def on_events(events: list[Event]) -> None:
        changes = [e for e in events if isinstance(e, JobChanged)]
        if keys is not None:  # an erased job's key leaves this process's cache at once
            keys.forget(c.job_id for c in changes if c.change_type == handlers.ERASED_CHANGE)
        try:
            added = await handlers.schedule(store, changes, keys.open_all if keys is not None else None)  # type: ignore[arg-type]
        except (RedisError, ConnectionError) as exc:  # the data keys cannot be read: retry, never dead-letter
            raise TransientError(f"data keys unavailable: {exc}") from exc
        except OperationalError as exc:  # the database is down or locked: retry, never dead-letter
            raise TransientError(f"database unavailable: {exc.orig}") from exc
        if added:
            scheduled()

    async def on_event(event: Event) -> None:
        await on_events([event])

    # An empty poll waits batch_timeout_ms for records, then as long again: 200 ms keeps an idle
    # notifier to 2.5 wake-ups a second (20 ms made 25) and adds at most 0.4 s before a webhook.
    # Lingering after the first change lets a burst's changes share one endpoints query and commit.
    subscribe_batch(
        broker, bus, TOPICS, group, on_events, on_event, max_records=500, batch_timeout_ms=200, linger_ms=linger_ms
    )
