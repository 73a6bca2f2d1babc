"""The stages keep a job's data key in memory for a few seconds (DATA_KEY_CACHE_SECONDS); an erasure
still wins at once in every process that makes or sees it. Over the real stack: a job is routed
(the geocoder and status hold its key), erased, and its import is delivered again (a redelivery,
a replay): nothing new is opened or sealed with the old key, and a rebuild shows the job erased."""

import asyncio
import uuid

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from services.status.adapters.queries import JobQueries
from services.status.settings import StatusSettings
from shared import pii
from shared.db import make_engine
from shared.events import JOBS_REQUESTED
from shared.testing.stack import BOOTSTRAP, REDIS_URL
from shared.testing.waiting import async_wait_until
from shared.topic_reader import read_to_end
from tests.conftest import ROOT, Tenant, routemate
from tests.e2e.test_erasure import database_text, log_of, personal_job


async def test_an_erased_jobs_cached_key_opens_and_seals_nothing_more(tenant: Tenant, http, tmp_path):
    marker = f"pii{uuid.uuid4().hex[:12]}"
    answer = await tenant.import_job(personal_job(tenant, marker))
    assert answer.status_code == 201, answer.text  # routed: the geocoder and status just read its key
    job_id = answer.json()["job_id"]
    durable = aioredis.Redis.from_url(REDIS_URL)
    wrap = pii.KeyWrap(StatusSettings().kek_material)
    old_key = wrap.unwrap(job_id, await durable.get(pii.data_key_name(job_id)))
    assert old_key is not None
    (imported,) = await read_to_end(BOOTSTRAP, [JOBS_REQUESTED], keep=lambda r: r.key == job_id.encode())

    assert (await http.delete(f"/v1/integration-jobs/{job_id}", headers=tenant.auth)).status_code == 204
    # The same import again, at once (well within the cache's seconds), after the job's JobErased
    # on its partition: what a redelivery or a replay of the topic brings.
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            JOBS_REQUESTED, imported.value, key=imported.key, headers=[(k, v) for k, v in imported.headers]
        )
    finally:
        await producer.stop()

    log = ROOT / "var/log/geocoder.log"

    async def dropped() -> bool:
        return f"import of erased job {job_id} dropped" in log.read_text(errors="replace")

    await async_wait_until(dropped, what="the geocoder to drop the erased job's import as unreadable")
    _, events = await log_of(job_id)
    # One StopsGeocoded only, the one from before the erasure: the import sent again was opened
    # with no key (the geocoder's cached one was dropped on JobErased), so nothing was sealed anew.
    assert [e.event_type for e in events].count("StopsGeocoded") == 1
    assert "JobErased" in [e.event_type for e in events]
    assert (await tenant.get_job(job_id)).status_code == 404
    assert marker not in database_text()

    # A read model rebuilt from the log (the same import twice in it) holds nothing of the job.
    url = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    await asyncio.to_thread(routemate, "status", "rebuild", "--database-url", url, timeout=600)
    rebuilt = JobQueries(make_engine(url))
    assert rebuilt.job(tenant.creds["org_id"], job_id=job_id) is None
    rebuilt.engine.dispose()
    await durable.aclose()
