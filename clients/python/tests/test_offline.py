"""Token lifetime and retry timing, on a scripted transport (no platform needed)."""

import time

import httpx

from routemate_client import Client, UnavailableError
from routemate_client._core import Settings, retry_delay


def scripted(answers: list, seen: list) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)(request) if callable(answers[0]) else answers.pop(0)

    return httpx.Client(transport=httpx.MockTransport(handler))


def token(expires_in: int, name: str = "rm_at_1") -> httpx.Response:
    return httpx.Response(200, json={"access_token": name, "token_type": "Bearer", "expires_in": expires_in})


def missing() -> httpx.Response:
    return httpx.Response(404, json={"type": "t", "title": "Not Found", "status": 404, "code": "job_not_found"})


def test_the_token_is_reused_then_refreshed_shortly_before_it_expires():
    seen: list[httpx.Request] = []
    http = scripted([token(3, "rm_at_1"), missing(), missing(), token(3, "rm_at_2"), missing()], seen)
    rm = Client("http://rm.test", "id", "secret", http_client=http)
    rm.find_job("a")
    rm.find_job("b")  # same token, no second token call
    time.sleep(2.75)  # within the last tenth of its 3 s lifetime
    rm.find_job("c")
    paths = [r.url.path for r in seen]
    assert paths.count("/v1/integration-token") == 2
    assert seen[-1].headers["Authorization"] == "Bearer rm_at_2"


def test_a_503_is_retried_with_retry_after_and_then_raised():
    seen: list[httpx.Request] = []
    busy = httpx.Response(503, headers={"Retry-After": "0"}, json={"code": "dependency_unavailable", "status": 503})
    http = scripted([token(3600), busy, busy, busy], seen)
    rm = Client("http://rm.test", "id", "secret", http_client=http, max_retries=2)
    try:
        rm.get_job("job_1")
    except UnavailableError as error:
        assert error.code == "dependency_unavailable" and error.retry_after == 0
    else:
        raise AssertionError("no error after the retries")
    assert len(seen) == 4  # the token, then three tries


def test_backoff_grows_with_jitter_and_honours_retry_after():
    settings = Settings("http://rm.test", "id", "secret", backoff_base=0.5, backoff_max=4, max_retries=6)
    for attempt, ceiling in enumerate([0.5, 1, 2, 4, 4]):
        delays = {retry_delay(settings, attempt, None) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays) and len(delays) > 1
    told = httpx.Response(429, headers={"Retry-After": "7"})
    assert 7 <= retry_delay(settings, 0, told) <= 8
    assert retry_delay(settings, 6, told) is None  # out of retries
    assert retry_delay(settings, 0, httpx.Response(429, headers={"Retry-After": "999"})) is None
