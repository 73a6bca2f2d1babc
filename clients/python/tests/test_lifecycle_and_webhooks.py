"""Changing a job (update by re-import with If-Match, re-plan, cancel) and managing webhook
endpoints, with both clients against the real platform."""

import asyncio

import pytest

from routemate_client import AsyncClient, Client, ConflictError, NotFoundError, PreconditionFailed


@pytest.fixture
def rm(platform):
    with Client(platform.base_url, platform.client_id, platform.client_secret) as client:
        yield client


def test_an_update_needs_the_current_etag_and_a_stale_one_says_which_is_current(rm, platform):
    body = platform.job()
    job = rm.import_job(body)
    done = job.stops[0].external_stop_id
    rm.update_stop_status(job.job_id, done, "completed")
    body["title"] = "one more parcel at the last stop"
    body["stops"][-1]["parcel_count"] += 1
    with pytest.raises(PreconditionFailed) as stale:
        rm.update_job(body, if_match=job.version)  # the delivery changed the job since
    current = stale.value.current_etag
    assert stale.value.status == 412 and stale.value.code == "precondition_failed"
    assert current == f'"{rm.get_job(job.job_id).version}"'
    with pytest.raises(ConflictError):
        rm.import_job(body)  # without If-Match a changed body stays a conflict
    updated = rm.update_job(body, if_match=current)
    # A stale update that reached the projection before it was refused used spec 2 up: the
    # accepted one is a later spec, whichever of ingest or status refused the stale one.
    assert (updated.job_id, updated.title) == (job.job_id, body["title"]) and updated.spec_version >= 2
    first = next(s for s in updated.stops if s.external_stop_id == done)
    assert (first.status, first.sequence) == ("completed", 1)


def test_a_replan_from_the_drivers_location_keeps_finished_stops_then_a_cancel(rm, platform):
    job = rm.import_job(platform.job())
    done = job.stops[0].external_stop_id
    rm.update_stop_status(job.job_id, done, "completed")
    replanned = rm.reoptimize_job(job.job_id, current_location=(-27.4575, 153.0355))
    assert replanned.version > job.version and replanned.stops[0].external_stop_id == done
    assert [s.sequence for s in replanned.stops] == list(range(1, len(job.stops) + 1))
    cancelled = rm.cancel_job(job.job_id, reason="customer called")
    assert cancelled.status == "cancelled"
    assert [s.status for s in cancelled.stops] == ["completed"] + ["cancelled"] * (len(job.stops) - 1)
    assert rm.cancel_job(job.job_id).status == "cancelled"  # again: the same answer


def test_a_deleted_job_is_gone_and_deleting_it_again_is_safe(rm, platform):
    job = rm.import_job(platform.job())
    rm.delete_job(job.job_id)
    with pytest.raises(NotFoundError):
        rm.get_job(job.job_id)
    rm.delete_job(job.job_id)  # again: still erased, no error
    with pytest.raises(NotFoundError):
        rm.delete_job("00000000-0000-4000-8000-000000000000")


def test_webhook_endpoints_are_created_listed_changed_rotated_tested_and_deleted(rm):
    created = rm.create_webhook("https://93.184.216.34/hooks", ["job.routed", "job.cancelled"], description="ERP")
    assert created["secret"].startswith("whsec_") and created["events"] == ["job.routed", "job.cancelled"]
    endpoint = created["id"]
    assert endpoint in [e["id"] for e in rm.list_webhooks()]
    assert "secret" not in rm.get_webhook(endpoint)  # shown once
    changed = rm.update_webhook(endpoint, events=["job.updated"], status="disabled")
    assert (changed["events"], changed["status"]) == (["job.updated"], "disabled")
    rotated = rm.rotate_webhook_secret(endpoint, grace_seconds=60)
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    rm.update_webhook(endpoint, status="active")
    sent = rm.test_webhook(endpoint)
    assert sent["webhook_id"]
    assert "deliveries" in rm.webhook_deliveries(endpoint)
    rm.delete_webhook(endpoint)
    with pytest.raises(NotFoundError):
        rm.get_webhook(endpoint)


def test_the_async_client_updates_cancels_and_manages_webhooks(platform):
    async def scenario():
        async with AsyncClient(platform.base_url, platform.client_id, platform.client_secret) as rm:
            body = platform.job()
            job = await rm.import_job(body)
            body["title"] = "changed by the async client"
            updated = await rm.update_job(body, if_match=job.version)
            assert updated.spec_version == 2 and updated.title == body["title"]
            try:
                await rm.update_job({**body, "title": "stale"}, if_match=job.version)
            except PreconditionFailed as stale:
                assert stale.current_etag == f'"{updated.version}"'
            else:
                raise AssertionError("a stale ETag was accepted")
            assert (await rm.cancel_job(job.job_id)).status == "cancelled"
            await rm.delete_job(job.job_id)
            try:
                await rm.get_job(job.job_id)
            except NotFoundError:
                pass
            else:
                raise AssertionError("a deleted job could still be read")
            created = await rm.create_webhook("https://93.184.216.34/a", ["job.cancelled"])
            assert [e["id"] for e in await rm.list_webhooks()].count(created["id"]) == 1
            await rm.delete_webhook(created["id"])

    asyncio.run(scenario())
