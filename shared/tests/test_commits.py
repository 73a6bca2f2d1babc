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


async def test_a_batch_is_handled_as_its_records_each_partition_up_to_its_last_and_counted_by_records():
    consumer, committer = FakeConsumer(0, 1), OffsetCommitter("test", interval_s=60, max_pending=10)
    await committer.handled(consumer, record(0))  # the first commit goes at once
    await committer.handled(consumer, record(1, partition=0), record(4, partition=1), record(2, partition=0))
    assert committer.pending == {TopicPartition(TOPIC, 0): 3, TopicPartition(TOPIC, 1): 5}
    await committer.handled(consumer, *(record(offset, partition=1) for offset in range(5, 12)))
    assert consumer.committed == [POSITIONS, POSITIONS]  # 10 records since the last commit: due
    assert committer.pending == {}


async def test_a_batch_consumer_commits_once_per_interval_not_after_every_batch():
    """subscribe_batch over FastStream's in-memory broker: its committer commits, not each batch's
    ack. (A failed batch's rewind is the real broker's: the in-memory one hands a batch over as a
    list FastStream's nack cannot read; tests/faults cover it over the real stack.)"""
    from faststream import AckPolicy
    from faststream.kafka import KafkaBroker, TestKafkaBroker

    from shared.broker import EventBus, subscribe_batch
    from shared.testing.builders import import_requested, stop

    broker = KafkaBroker("localhost:9092")
    bus = EventBus(broker, "test")
    committer = OffsetCommitter("test", interval_s=60)
    commits: list[bool] = []
    real = committer._commit

    async def counted(positions: bool) -> None:
        commits.append(positions)
        await real(positions)

    committer._commit = counted  # type: ignore[method-assign]
    applied: list[str] = []

    async def handle_many(events):
        applied.extend(event.job_id for event in events)

    async def handle_one(event):
        applied.append(event.job_id)

    subscribe_batch(broker, bus, ["routemate.jobs.requested"], "g", handle_many, handle_one, committer=committer)
    (subscriber,) = broker.subscribers
    # FastStream neither commits after each batch (its ack) nor lets aiokafka auto-commit: the
    # in-memory consumer's commit does nothing, so this is what says it (the e2e test counts).
    assert subscriber.ack_policy is AckPolicy.MANUAL
    assert subscriber._connection_args["enable_auto_commit"] is False
    assert subscriber._listener is committer  # commits before a rebalance
    async with TestKafkaBroker(broker) as test:
        for i in range(6):
            event = import_requested(stop(0, "1 Lane"), job_id=f"j{i}")
            await test.publish(event.to_bytes(), "routemate.jobs.requested", key=event.key)
        assert applied == [f"j{i}" for i in range(6)]
        assert commits == [True]  # the first batch's commit; the next five wait for the interval
        assert committer.pending  # what they handled: for the timer, a rebalance or the shutdown


async def test_consumers_of_one_subscriber_each_commit_their_own_partitions_position_and_all():
    """`subscribe(in_hand=2)`: two consumers in one group, one committer each. A commit due after
    a message is its own consumer's position, and a rebalance or the shutdown commits what each
    handled of the partitions it still owns, through its own consumer."""
    from faststream.kafka import KafkaBroker

    from shared.broker import ConsumerCommitters, flush_commits

    broker = KafkaBroker("127.0.0.1:1")
    first, second = FakeConsumer(0, 1), FakeConsumer(2, 3)
    commits = ConsumerCommitters(broker, "test")
    await commits.handled(first, record(5, partition=0))
    await commits.handled(second, record(8, partition=2))
    assert (first.committed, second.committed) == ([POSITIONS], [POSITIONS])  # each its own first commit
    await commits.handled(first, record(6, partition=0))
    await commits.handled(second, record(9, partition=2))
    await commits.handled(second, record(1, partition=3))
    assert commits.pending == {TopicPartition(TOPIC, 0): 7, TopicPartition(TOPIC, 2): 10, TopicPartition(TOPIC, 3): 2}
    second.owned.discard(TopicPartition(TOPIC, 3))  # moved to another member
    await commits.on_partitions_revoked({TopicPartition(TOPIC, 3)})
    assert first.committed[1:] == [{TopicPartition(TOPIC, 0): 7}]
    assert second.committed[1:] == [{TopicPartition(TOPIC, 2): 10}]  # never the partition it lost
    await commits.handled(first, record(7, partition=1))
    await flush_commits(broker)  # the shutdown's: each consumer's committer is the broker's
    assert first.committed[2:] == [{TopicPartition(TOPIC, 1): 8}] and second.committed[2:] == []
    assert commits.pending == {}


async def test_one_consumers_failed_commit_does_not_keep_the_others_from_committing():
    from faststream.kafka import KafkaBroker

    from shared.broker import ConsumerCommitters, flush_commits

    broker = KafkaBroker("127.0.0.1:1")
    first, second = FakeConsumer(0), FakeConsumer(1)
    commits = ConsumerCommitters(broker, "test")
    await commits.handled(first, record(1, partition=0))
    await commits.handled(second, record(1, partition=1))
    await commits.handled(first, record(2, partition=0))
    await commits.handled(second, record(2, partition=1))
    first.fail_with = KafkaConnectionError()
    await flush_commits(broker)  # logs the failure and goes on to the next consumer's
    assert second.committed[-1] == {TopicPartition(TOPIC, 1): 3}
    assert commits.pending == {TopicPartition(TOPIC, 0): 3}  # kept for the next commit
