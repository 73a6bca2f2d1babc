"""Concurrent imports share Kafka produce requests, each still awaiting its own acks=all ack.

aiokafka sends one produce request per broker at a time, at most one batch per partition in it,
and a send that does not fit its partition's open batch waits for that batch to go out. At its
16 KiB default one sealed 20-stop import (about 8 KB) filled a batch, so a burst of imports went
to Kafka one per partition per round trip, and the burst waited in line for acks. On the real
broker: a burst bound for one partition (one job's key) goes out in a few requests, and every
record is in the log once acknowledged."""

import asyncio
import os
import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.protocol.produce import ProduceRequest

from shared.broker import make_broker
from shared.settings import PlatformSettings

BURST = 24
IMPORT_SIZED = 8_400  # bytes: a sealed 20-stop ImportRequested


async def test_a_burst_of_import_sized_records_for_one_partition_shares_produce_requests():
    settings = PlatformSettings()
    topic = f"routemate.test.batching.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, client_id="test-batching")
    await admin.start()
    broker = make_broker(settings, "test-batching")
    try:
        replicas = settings.topic_replication
        configs = {"min.insync.replicas": str(settings.topic_min_insync_replicas)}
        await admin.create_topics([NewTopic(topic, 1, replicas, topic_configs=configs)])
        await broker.start()
        client = broker.config.producer._producer.producer.client
        requests: list[int] = []
        send = client.send

        async def counted(node_id, request, **kwargs):
            if isinstance(request, ProduceRequest):
                requests.append(1)
            return await send(node_id, request, **kwargs)

        client.send = counted
        await broker.publish(b"warm", topic, key=b"job-1")  # metadata and producer id in hand
        requests.clear()
        payloads = [os.urandom(IMPORT_SIZED // 2).hex().encode() for _ in range(BURST)]
        acks = await asyncio.gather(*(broker.publish(p, topic, key=b"job-1") for p in payloads))
        assert len(acks) == BURST
        # One request for the first record, then the rest that queued meanwhile; at the 16 KiB
        # batch it was one request per record.
        assert len(requests) <= BURST // 4, f"{len(requests)} produce requests for {BURST} records"

        consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False)
        await consumer.start()
        try:
            partition = TopicPartition(topic, 0)
            consumer.assign([partition])
            assert (await consumer.end_offsets([partition]))[partition] == BURST + 1  # all acked records are there
        finally:
            await consumer.stop()
    finally:
        await broker.stop()
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()
