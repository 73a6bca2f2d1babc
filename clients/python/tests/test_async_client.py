"""AsyncClient: the same surface, awaited; one token refresh shared by concurrent tasks."""

import asyncio

from routemate_client import AsyncClient, ImportJob, NotFoundError


def run(coroutine):
    return asyncio.run(coroutine)


def test_async_client_imports_reads_lists_and_updates(platform):
    async def scenario():
        async with AsyncClient(platform.base_url, platform.client_id, platform.client_secret) as rm:
            body = ImportJob.model_validate(platform.job())
            job = await rm.import_job(body)
            assert job.status == "assigned" and (await rm.get_job(job.job_id)).job_id == job.job_id
            assert (await rm.find_job(body.external_job_id)).job_id == job.job_id
            assert await rm.find_job("PYCLIENT-never") is None
            others = [await rm.import_job(platform.job()) for _ in range(3)]
            listed = [j.job_id async for j in rm.iter_jobs(page_size=2)]
            assert {o.job_id for o in others} | {job.job_id} <= set(listed)
            last = job.stops[-1].external_stop_id
            accepted = await rm.update_stop_status(job.job_id, last, "skipped", reason="closed")
            assert accepted.status == "skipped"
            try:
                await rm.get_job("job_missing")
            except NotFoundError as error:
                assert error.code == "job_not_found"
            else:
                raise AssertionError("no error for a missing job")

    run(scenario())


def test_concurrent_tasks_share_one_token_and_one_refresh(platform):
    fresh = platform.new_integration()

    async def scenario():
        async with AsyncClient(platform.base_url, fresh["client_id"], fresh["client_secret"]) as rm:
            await asyncio.gather(*(rm.find_job(f"A-{i}") for i in range(20)))
            assert platform.live_tokens(fresh["client_id"]) == 1
            platform.revoke_tokens(fresh["client_id"])
            await asyncio.gather(*(rm.find_job(f"B-{i}") for i in range(20)))  # all refused, one refresh
            assert platform.live_tokens(fresh["client_id"]) == 1

    run(scenario())
