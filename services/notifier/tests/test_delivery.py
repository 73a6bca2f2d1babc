"""The delivery worker against a real local receiver: signed, retried with the same id, in order
per job, one slow endpoint never holding up another, 410 and long failures disabling."""

import asyncio
import dataclasses
import json
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session
from standardwebhooks import Webhook

from services.notifier.adapters.tables import EndpointRow
from services.notifier.tests.conftest import Notifier, auth, change, received
from shared.events import WebhookEndpointDisabled, utcnow
from shared.testing.receiver import Receiver
from shared.testing.waiting import async_wait_until

BASE = "/v1/integration-webhooks"


async def test_a_change_is_delivered_signed_as_the_standard_says(notifier: Notifier, receiver: Receiver):
    endpoint = await notifier.endpoint(receiver.url, ["job.routed", "job.completed"])
    routed = change("job_1", "job.routed", version=2)
    await notifier.publish(routed, change("job_1", "job.assigned"))  # not subscribed: not sent
    await received(receiver, 1)
    got = receiver.received[0]
    payload = Webhook(endpoint["secret"]).verify(got.body, got.headers)
    assert got.headers["webhook-id"] == str(routed.event_id)
    assert payload["type"] == "job.routed" and payload["data"]["job_id"] == "job_1"
    assert payload["data"]["version"] == 2 and payload["data"]["updated_at"]
    assert payload["timestamp"].endswith("Z")
    await notifier.publish(routed)  # the same change again (a redelivered source event)
    await notifier.publish(change("job_1", "job.completed"))
    await received(receiver, 2)
    await asyncio.sleep(0.2)
    assert len(receiver.received) == 2 and receiver.ids()[0] != receiver.ids()[1]
    log = await notifier.deliveries(endpoint["id"])
    assert [d["event_type"] for d in log] == ["job.completed", "job.routed"]
    assert log[1]["attempts"][0]["status_code"] == 200 and log[1]["attempts"][0]["response"] == "ok"


async def test_500_then_200_is_retried_with_the_same_webhook_id(notifier: Notifier, receiver: Receiver):
    endpoint = await notifier.endpoint(receiver.url)
    receiver.statuses = [500, 503]
    receiver.answer = b"boom"
    await notifier.publish(change("job_2"))
    await received(receiver, 3)
    assert len(set(receiver.ids())) == 1
    for got in receiver.received:
        Webhook(endpoint["secret"]).verify(got.body, got.headers)

    async def settled():
        log = await notifier.deliveries(endpoint["id"])
        return log[0]["status"] == "succeeded" and log

    log = await async_wait_until(settled, 5)
    assert [a["status_code"] for a in log[0]["attempts"]] == [200, 503, 500]
    assert log[0]["attempts"][1]["response"] == "boom" and log[0]["attempt_count"] == 3


async def test_a_jobs_events_go_out_in_order_while_other_jobs_proceed(notifier: Notifier, receiver: Receiver):
    await notifier.endpoint(receiver.url, ["job.routed", "job.assigned"])
    worker = notifier.app.state.worker
    worker.policy = dataclasses.replace(worker.policy, retry_scale=0.2)  # A's retry comes after 1 s
    receiver.statuses = [500]  # the first request (job A's first event) fails once
    a1, a2 = change("job_A", "job.routed"), change("job_A", "job.assigned")
    await notifier.publish(a1)
    await received(receiver, 1)
    await notifier.publish(a2, change("job_B", "job.routed"))
    await received(receiver, 4)
    order = receiver.ids()
    assert order[0] == order[2] == str(a1.event_id)  # failed, then retried...
    assert order.index(str(a2.event_id)) > 2  # ...and only then A's next event
    assert order[1] not in (str(a1.event_id), str(a2.event_id))  # B did not wait for A's retry


async def test_a_slow_endpoint_does_not_delay_another(notifier: Notifier, receiver: Receiver):
    slow = await Receiver(delay_s=1.5).start()
    try:
        await notifier.endpoint(slow.url)
        await notifier.endpoint(receiver.url)
        await notifier.publish(*(change(f"job_{i}") for i in range(12)))
        await received(receiver, 12, seconds=3)
        assert len(slow.received) <= 4  # its concurrency limit: the rest waits for it, not the others
    finally:
        await slow.stop()


async def test_410_disables_the_endpoint_and_says_so_on_the_audit_trail(notifier: Notifier, receiver: Receiver):
    endpoint = await notifier.endpoint(receiver.url)
    receiver.statuses = [410]
    await notifier.publish(change("job_3"))

    async def disabled():
        one = await notifier.http.get(f"{BASE}/{endpoint['id']}", headers=auth())
        return one.json()["status"] == "disabled" and one.json()

    seen = await async_wait_until(disabled, 5)
    assert "410" in seen["disabled_reason"]
    await async_wait_until(lambda: _audit(notifier), 5)
    await notifier.publish(change("job_4"))
    await asyncio.sleep(0.3)
    assert len(receiver.received) == 1  # nothing more goes to a disabled endpoint
    enabled = await notifier.http.patch(f"{BASE}/{endpoint['id']}", json={"status": "active"}, headers=auth())
    assert enabled.json()["status"] == "active"
    later = change("job_5")
    await notifier.publish(later)
    await received(receiver, 2)
    assert receiver.ids()[1] == str(later.event_id)  # what happened while disabled is not queued


async def _audit(notifier: Notifier) -> bool:
    return any(isinstance(e, WebhookEndpointDisabled) for e in notifier.audit)


async def test_an_endpoint_failing_longer_than_allowed_is_disabled(notifier: Notifier, receiver: Receiver):
    endpoint = await notifier.endpoint(receiver.url)
    with Session(notifier.app.state.store.engine) as s:  # as if it had been failing for 4 days
        s.exec(update(EndpointRow).values(failing_since=utcnow() - timedelta(days=4)))
        s.commit()
    receiver.statuses = [500]
    await notifier.publish(change("job_5"))

    async def disabled():
        one = await notifier.http.get(f"{BASE}/{endpoint['id']}", headers=auth())
        return one.json()["status"] == "disabled" and one.json()

    assert "3 days" in (await async_wait_until(disabled, 5))["disabled_reason"]


async def test_test_events_and_redelivery_reach_the_receiver(notifier: Notifier, receiver: Receiver):
    endpoint = await notifier.endpoint(receiver.url)
    sent = await notifier.http.post(f"{BASE}/{endpoint['id']}/test", headers=auth())
    assert sent.status_code == 202
    await received(receiver, 1)
    assert json.loads(receiver.received[0].body)["type"] == "webhook.test"

    async def logged():
        log = await notifier.deliveries(endpoint["id"])
        return log and log[0]["status"] == "succeeded" and log

    delivery = (await async_wait_until(logged, 5))[0]
    again = await notifier.http.post(f"{BASE}/{endpoint['id']}/deliveries/{delivery['id']}/redeliver", headers=auth())
    assert again.status_code == 202
    await received(receiver, 2)
    assert receiver.ids()[0] == receiver.ids()[1] == sent.json()["webhook_id"]


async def test_during_a_rotation_deliveries_verify_with_the_old_secret_and_the_new(
    notifier: Notifier, receiver: Receiver
):
    endpoint = await notifier.endpoint(receiver.url)
    rotated = await notifier.http.post(
        f"{BASE}/{endpoint['id']}/rotate-secret", json={"grace_seconds": 60}, headers=auth()
    )
    await notifier.publish(change("job_6"))
    await received(receiver, 1)
    got = receiver.received[0]
    Webhook(endpoint["secret"]).verify(got.body, got.headers)
    Webhook(rotated.json()["secret"]).verify(got.body, got.headers)


async def test_an_erased_jobs_deliveries_are_dropped_pending_or_not(notifier: Notifier, receiver: Receiver):
    """status's outbox announces job.erased after the job's last change: nothing pending for it is
    sent any more, and no copy of its view stays in the delivery log."""
    endpoint = await notifier.endpoint(receiver.url, ["job.routed", "job.completed"])
    await notifier.publish(change("job_1", "job.routed"), change("job_2", "job.routed"))
    await received(receiver, 2)
    await notifier.publish(change("job_1", "job.erased"))
    log = await notifier.deliveries(endpoint["id"])
    assert [d["job_id"] for d in log] == ["job_2"]
