"""Client against the real platform: imports, reads, cursors, stop updates, errors, tokens, retries."""

import logging
import threading
import time

import httpx
import pytest

import routemate_client
from routemate_client import (
    AuthenticationError,
    Client,
    ConflictError,
    ImportAccepted,
    InvalidRequestError,
    Job,
    NotFoundError,
    RateLimitedError,
)


@pytest.fixture
def rm(platform):
    with Client(platform.base_url, platform.client_id, platform.client_secret) as client:
        yield client


def test_the_package_under_test_is_the_installed_one():
    assert "site-packages" in routemate_client.__file__, routemate_client.__file__


def test_import_answers_with_the_route_and_the_job_reads_back(rm, platform):
    body = platform.job()
    job = rm.import_job(body)
    assert isinstance(job, Job) and job.status == "assigned"
    assert [s.sequence for s in job.stops] == [1, 2, 3, 4]
    assert job.optimization.total_distance_km > 0 and job.driver.email == platform.driver
    assert rm.get_job(job.job_id).stops == job.stops
    assert rm.find_job(body["external_job_id"]).job_id == job.job_id
    assert rm.find_job("PYCLIENT-never-imported") is None
    with pytest.raises(NotFoundError) as missing:
        rm.get_job("job_00000000000000000000000")
    assert missing.value.code == "job_not_found" and missing.value.request_id


def test_a_202_is_followed_to_the_settled_job(platform):
    """The platform answers 202 (here because the request asks for it on the wire); with
    wait=True the client follows Location until the job is routed."""

    def ask_async(request: httpx.Request) -> None:
        if request.url.path.endswith("/integration-import"):
            request.headers["Prefer"] = "respond-async"

    http = httpx.Client(timeout=60, event_hooks={"request": [ask_async]})
    with Client(platform.base_url, platform.client_id, platform.client_secret, http_client=http) as rm:
        job = rm.import_job(platform.job(), wait=True, poll_interval=0.2)
    assert job.status == "assigned" and len(job.stops) == 4


def test_without_wait_the_import_is_accepted_and_a_retry_replays_it(rm, platform):
    body = platform.job()
    accepted = rm.import_job(body, wait=False)
    assert isinstance(accepted, ImportAccepted) and accepted.links.job.endswith(accepted.job_id)
    assert rm.import_job(body).job_id == accepted.job_id  # the same body again: the same job


def test_iter_jobs_follows_the_cursor_over_several_pages(rm, platform):
    imported = {rm.import_job(platform.job()).job_id for _ in range(5)}
    pages = []

    def count_pages(response: httpx.Response) -> None:
        if response.request.url.path == "/v1/integration-jobs":
            pages.append(response.request.url.params.get("cursor"))

    rm._http.event_hooks["response"].append(count_pages)
    listed = [job.job_id for job in rm.iter_jobs(page_size=2)]
    assert imported <= set(listed) and len(listed) == len(set(listed))
    assert len(pages) >= 3 and pages[0] is None and all(pages[1:])


def test_a_stop_update_moves_the_job_in_progress(rm, platform):
    job = rm.import_job(platform.job())
    stop = job.stops[0]
    accepted = rm.update_stop_status(
        job.job_id, stop.external_stop_id, "completed", recipient_name="Sam", photo_urls=["https://pod.example/1.jpg"]
    )
    assert accepted.status == "completed"
    for _ in range(50):
        now = rm.get_job(job.job_id)
        if now.status == "in_progress":
            break
        time.sleep(0.1)
    assert now.status == "in_progress" and now.stops[0].proof_of_delivery.recipient_name == "Sam"
    with pytest.raises(NotFoundError) as missing:
        rm.update_stop_status(job.job_id, "NO-SUCH-STOP", "failed")
    assert missing.value.code == "stop_not_found"


def test_errors_carry_code_field_errors_and_request_id(rm, platform):
    with pytest.raises(InvalidRequestError) as invalid:
        rm.import_job({"external_job_id": "PYCLIENT-bad", "title": "x", "stops": [{"address": "no id"}]})
    error = invalid.value
    assert error.status == 422 and error.code == "validation_failed" and error.request_id
    assert any(e["pointer"].startswith("/stops/0") for e in error.errors)
    body = platform.job()
    rm.import_job(body, wait=False)
    with pytest.raises(ConflictError) as conflict:
        rm.import_job({**body, "title": "another body"}, wait=False)
    assert conflict.value.code == "idempotency_conflict"


def test_wrong_credentials_are_an_authentication_error(platform):
    with (
        Client(platform.base_url, platform.client_id, "rm_cs_wrong", max_retries=0) as rm,
        pytest.raises(AuthenticationError) as refused,
    ):
        rm.find_job("anything")
    assert refused.value.code == "invalid_client" and refused.value.status == 401


def test_a_401_refreshes_the_token_once_and_the_call_succeeds(rm, platform):
    rm.find_job("warm-up")
    first = rm._tokens.token
    assert platform.revoke_tokens(platform.client_id) >= 1
    assert rm.find_job("after-revocation") is None  # answered, with a fresh token
    assert rm._tokens.token != first


def test_concurrent_callers_share_one_token(platform):
    fresh = platform.new_integration()
    with Client(platform.base_url, fresh["client_id"], fresh["client_secret"]) as rm:
        threads = [threading.Thread(target=rm.find_job, args=(f"T-{i}",)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert platform.live_tokens(fresh["client_id"]) == 1


def test_a_429_is_retried_after_retry_after(rm, platform, caplog):
    rm.find_job("warm-up")
    platform.drain_rate_bucket(platform.client_id)
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="routemate_client"):
        accepted = rm.import_job(platform.job(), wait=False)
    assert accepted.job_id and time.monotonic() - started >= 1.0  # Retry-After: 1
    assert any("after 429" in r.getMessage() for r in caplog.records)


def test_a_429_without_retries_left_is_raised_with_retry_after(platform):
    own = platform.new_integration()  # its own mint bucket: the suite's many clients drain the shared one
    with Client(platform.base_url, own["client_id"], own["client_secret"], max_retries=0) as rm:
        rm.find_job("warm-up")
        platform.drain_rate_bucket(own["client_id"])
        with pytest.raises(RateLimitedError) as limited:
            rm.import_job(platform.job(), wait=False)
    assert limited.value.code == "rate_limited" and limited.value.retry_after >= 1


def test_a_503_while_the_broker_is_stopped_is_retried_until_it_is_back(platform, caplog):
    with Client(platform.base_url, platform.client_id, platform.client_secret, max_retries=20, backoff_max=5) as rm:
        rm.find_job("warm-up")  # the token is cached before the broker goes
        platform.kafka("stop")
        restart = threading.Timer(8, platform.up)
        restart.start()
        try:
            with caplog.at_level(logging.INFO, logger="routemate_client"):
                job = rm.import_job(platform.job())
        finally:
            restart.join()
    assert job.status == "assigned"
    assert any("after 503" in r.getMessage() for r in caplog.records)
