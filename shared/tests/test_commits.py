"""OffsetCommitter: what a per-message consumer (geocoder, optimizer) has handled is committed
once per interval, only ever up to a handled message, and before its partitions move."""

from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaConnectionError

from shared.broker import OffsetCommitter
from shared.testing.waiting import async_wait_until

TOPIC = "routemate.jobs.geocoded"
POSITIONS = "every partition's position"  # a commit without offsets


class FakeConsumer:
    """Records the commits; owns the partitions in `owned`."""

    def __init__(self, *partitions: int) -> None:
        self.owned = {TopicPartition(TOPIC, p) for p in partitions}
        self.committed: list[dict[TopicPartition, int] | str] = []
        self.fail_with: Exception | None = None

    def assignment(self) -> set[TopicPartition]:
        return set(self.owned)

    async def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.committed.append(POSITIONS if offsets is None else dict(offsets))


def record(offset: int, partition: int = 0):
    return SimpleNamespace(topic=TOPIC, partition=partition, offset=offset)


async def test_a_burst_is_committed_once_per_interval_not_once_per_message():
    consumer, committer = FakeConsumer(0, 1), OffsetCommitter("test", interval_s=60, max_pending=1000)
    for offset in range(100):
        await committer.handled(consumer, record(offset, partition=offset % 2))
    assert consumer.committed == [POSITIONS]  # the first at once; the rest wait for the interval
    await committer.commit()
    assert consumer.committed[1:] == [{TopicPartition(TOPIC, 0): 99, TopicPartition(TOPIC, 1): 100}]


async def test_a_consumer_that_goes_quiet_still_commits_its_last_message():
    consumer, committer = FakeConsumer(0), OffsetCommitter("test", interval_s=0.05)
    for offset in range(3):
        await committer.handled(consumer, record(offset))

    async def committed() -> bool:
        return len(consumer.committed) == 2

    await async_wait_until(committed, 5, 0.01, "the quiet consumer's commit")
    # only what was handled: by the time the timer fires, another message may be in hand
    assert consumer.committed == [POSITIONS, {TopicPartition(TOPIC, 0): 3}]


async def test_a_commit_due_after_a_message_covers_every_partition_so_lag_shows_on_new_ones_too():
    consumer, committer = FakeConsumer(0), OffsetCommitter("test", interval_s=60, max_pending=10)
    for offset in range(25):
        await committer.handled(consumer, record(offset))
    assert consumer.committed == [POSITIONS] * 3  # at offsets 0, 10 and 20
    assert committer.pending == {TopicPartition(TOPIC, 0): 25}


async def test_before_a_rebalance_what_was_handled_is_committed_and_a_lost_partition_never():
    consumer, committer = FakeConsumer(0, 1), OffsetCommitter("test", interval_s=60)
    await committer.handled(consumer, record(3, partition=0))
    await committer.handled(consumer, record(4, partition=0))
    await committer.handled(consumer, record(7, partition=1))
    consumer.owned.discard(TopicPartition(TOPIC, 1))  # partition 1 went to another process
    await committer.on_partitions_revoked({TopicPartition(TOPIC, 0)})
    assert consumer.committed == [POSITIONS, {TopicPartition(TOPIC, 0): 5}]


async def test_a_commit_refused_after_a_rebalance_is_dropped_its_messages_come_again_to_the_new_owner():
    consumer, committer = FakeConsumer(0), OffsetCommitter("test", interval_s=60)
    await committer.handled(consumer, record(2))
    await committer.handled(consumer, record(3))
    consumer.fail_with = CommitFailedError("group rebalanced")
    await committer.commit()
    assert committer.pending == {}


async def test_a_commit_that_fails_on_an_outage_is_carried_by_the_next_one():
    consumer, committer = FakeConsumer(0), OffsetCommitter("test", interval_s=60)
    await committer.handled(consumer, record(2))
    await committer.handled(consumer, record(3))
    consumer.fail_with = KafkaConnectionError()
    with pytest.raises(KafkaConnectionError):
        await committer.commit()
    await committer.handled(consumer, record(4))
    consumer.fail_with = None
    await committer.commit()
    assert consumer.committed == [POSITIONS, {TopicPartition(TOPIC, 0): 5}]
