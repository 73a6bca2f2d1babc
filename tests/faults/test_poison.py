"""Poison messages on every consumed topic go to the dead-letter topic; the consumers carry on."""

import asyncio
import json
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.events import (
    AUTH_EVENTS,
    DEADLETTER,
    JOBS_FAILED,
    JOBS_GEOCODED,
    JOBS_GEOCODED_BULK,
    JOBS_OPTIMIZED,
    JOBS_REQUESTED,
    JOBS_REQUESTED_BULK,
    STOPS_STATUS,
    StopStatusChanged,
    utcnow,
)
from shared.testing.stack import BOOTSTRAP
from tests.conftest import Tenant


def letter_of(record) -> dict:
    """A dead letter: the original bytes as the value, where from and why in the headers."""
    return {**{k: v.decode() for k, v in record.headers}, "payload": record.value}


async def dead_letters(sends: list[tuple[str, bytes]], key: bytes, expected: int, seconds: float) -> list[dict]:
    """Publish `sends` (topic, payload) under `key`; the dead letters of that key, once `expected` came."""
    consumer = AIOKafkaConsumer(DEADLETTER, bootstrap_servers=BOOTSTRAP, auto_offset_reset="latest", group_id=None)
    await consumer.start()
    try:
        await consumer.seek_to_end()
        await asyncio.sleep(0.5)
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
        await producer.start()
        try:  # one key: one partition per topic, in this order
            for topic, payload in sends:
                await producer.send_and_wait(topic, payload, key=key)
        finally:
            await producer.stop()
        letters: list[dict] = []
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline and len(letters) < expected:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                letters += [letter_of(r) for r in records if r.key == key]
        return letters
    finally:
        await consumer.stop()


async def test_garbage_invalid_bodies_and_unknown_versions_are_dead_lettered(tenant: Tenant):
    marker = uuid.uuid4().hex
    poison = {
        "garbage": b"\x00\xff not json " + marker.encode(),
        "invalid body": json.dumps(
            {"event_type": "ImportRequested", "schema_version": 1, "org_id": "o", "job_id": marker}
        ).encode(),
        "unknown version": json.dumps(
            {"event_type": "StopsGeocoded", "schema_version": 99, "org_id": "o", "job_id": marker}
        ).encode(),
    }
    topics = [
        JOBS_REQUESTED,
        JOBS_REQUESTED_BULK,
        JOBS_GEOCODED,
        JOBS_GEOCODED_BULK,
        JOBS_OPTIMIZED,
        JOBS_FAILED,
        STOPS_STATUS,
        AUTH_EVENTS,
    ]
    expected = len(poison) * (len(topics) + 4)  # status reads them all; geocoder and optimizer two each (lanes)
    letters = await dead_letters([(t, p) for t in topics for p in poison.values()], marker.encode(), expected, 30)
    by_stage = {(letter["service"], letter["source_topic"]) for letter in letters}
    assert ("geocoder", JOBS_REQUESTED) in by_stage and ("optimizer", JOBS_GEOCODED) in by_stage
    assert ("geocoder", JOBS_REQUESTED_BULK) in by_stage and ("optimizer", JOBS_GEOCODED_BULK) in by_stage
    assert {("status", t) for t in topics} <= by_stage
    reasons = " ".join(letter["reason"] for letter in letters)
    assert "not JSON" in reasons and "invalid event" in reasons and "schema_version" in reasons
    # ...and every stage still works
    answer = await tenant.import_job()
    assert answer.status_code == 201 and answer.json()["status"] == "assigned"


async def test_an_event_the_projection_rejects_is_dead_lettered_alone_and_its_neighbours_are_applied(tenant: Tenant):
    """Status takes a poll at a time in one transaction; one bad event must not sink the others."""
    answer = await tenant.import_job()
    assert answer.status_code == 201, answer.text
    job = answer.json()
    first = job["stops"][0]["external_stop_id"]
    stop_id = f"{job['job_id']}.{int(first.split('-')[1])}"  # ingest numbers stops in import order
    common = dict(job_id=job["job_id"], stop_id=stop_id, external_stop_id=first, status_at=utcnow())
    hijack = StopStatusChanged(org_id="org_someone_else", status="failed", reason="hijack", **common)
    honest = StopStatusChanged(org_id=tenant.creds["org_id"], status="completed", **common)
    # The same key: one partition, one after the other, most likely in one poll.
    letters = await dead_letters(
        [(STOPS_STATUS, hijack.to_bytes()), (STOPS_STATUS, honest.to_bytes())], hijack.key, 1, 45
    )
    assert [(letter["service"], letter["source_topic"]) for letter in letters] == [("status", STOPS_STATUS)]
    assert "ValueError" in letters[0]["reason"] and "another organization" in letters[0]["reason"]
    for _ in range(50):
        stops = {s["external_stop_id"]: s for s in (await tenant.get_job(job["job_id"])).json()["stops"]}
        if stops[first]["status"] == "completed":
            break
        await asyncio.sleep(0.2)
    assert stops[first]["status"] == "completed" and stops[first]["reason"] is None
