"""Topic bootstrap: create the design's topics with their partition counts and configs, and bring
the configs of topics that already exist up to date (idempotent: every start may run it)."""

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from shared.events import ALL_TOPICS, DEADLETTER, JOBS_CHANGES, SOURCE_TOPICS
from shared.settings import PlatformSettings

log = logging.getLogger(__name__)


DAY_MS = 24 * 3600 * 1000
# Retention, deliberately (README, "The event log"). The job and auth topics are the source of
# truth the read model is rebuilt from: kept for ever (-1), by time and by size, never by a
# broker default; erasure does not need them to expire, because every personal field in them is
# sealed under a key that erasing destroys (shared/pii.py), and snapshots (status) bound how much
# of them a rebuild replays. The derived, transient channels are kept only as long as a reader
# can need them: jobs.changes is the webhooks' feed, made again by status's outbox, and read by
# the notifier within seconds (a week covers an outage of it); the dead letters are for an
# operator to inspect within a fortnight, and are copies of events the source topics keep.
RETENTION_MS: dict[str, int] = {
    **dict.fromkeys(SOURCE_TOPICS, -1),
    JOBS_CHANGES: 7 * DAY_MS,
    DEADLETTER: 14 * DAY_MS,
}


def topic_configs(settings: PlatformSettings, name: str) -> dict[str, str]:
    """The dynamic configs a topic must carry (AlterConfigs replaces them all, so all are here).

    Records carry the time the broker appended them (LogAppendTime), not the producing host's
    clock: within a partition they then rise with the offsets, which is the order the live
    consumers read them in. The rebuild merges the partitions by that time (status/rebuild.py):
    with producers' clocks, one host running ahead would hold back the rest of its partition in
    the merge, or be moved away from its neighbours in a sort. Records appended before this
    config keep the time they were written with."""
    return {
        "max.message.bytes": str(settings.kafka_max_message_bytes),
        "min.insync.replicas": str(settings.topic_min_insync_replicas),
        "cleanup.policy": "delete",
        "retention.ms": str(RETENTION_MS[name]),
        "retention.bytes": "-1",
        "message.timestamp.type": "LogAppendTime",
    }


async def wait_for_brokers(admin: AIOKafkaAdminClient, wanted: int, seconds: float = 60) -> None:
    """Topics with replication N can only be created once N brokers have registered (a cluster's
    nodes come up one by one)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        brokers = len((await admin.describe_cluster())["brokers"])
        if brokers >= wanted:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"{brokers} Kafka broker(s) registered, {wanted} needed for TOPIC_REPLICATION")
        await asyncio.sleep(0.5)


async def ensure_topics(settings: PlatformSettings, attempts: int = 60) -> list[str]:
    """Create the missing topics; returns the names created. Waits for the broker to answer."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="routemate-topics",
        **settings.kafka_client_security(),
    )
    for attempt in range(attempts):
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(1)
    try:
        await wait_for_brokers(admin, settings.topic_replication)
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name,
                num_partitions=3 if name == DEADLETTER else settings.topic_partitions,
                replication_factor=settings.topic_replication,
                topic_configs=topic_configs(settings, name),
            )
            for name in ALL_TOPICS
            if name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another process created them first
        present = [name for name in ALL_TOPICS if name in existing]
        if present:
            await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, n, topic_configs(settings, n)) for n in present]
            )
        return [t.name for t in wanted]
    finally:
        await admin.close()


if __name__ == "__main__":
    created = asyncio.run(ensure_topics(PlatformSettings()))
    print("topics: created " + (", ".join(created) if created else "none (all present)"))
