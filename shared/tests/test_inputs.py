from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from shared.events import utcnow
from shared.inputs import PLAN_FUTURE, InvalidJson, parse_json, within
from shared.service import service_app


@pytest.mark.parametrize(
    "body, code, pointer",
    [
        (b"[" * 100_000 + b"]" * 100_000, "json_too_deep", ""),  # json.loads itself would recurse out
        (
            b'{"a":' * 40 + b"1" + b"}" * 40,
            "json_too_deep",
            "/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a",
        ),
        (b'{"stops":[{"address":"1 Queen St\\u0000"}]}', "invalid_text", "/stops/0/address"),
        (b'{"ke\\u0000y": 1}', "invalid_text", ""),
        (b'{"a/b":[{"c~d":"x\\u0000"}]}', "invalid_text", "/a~1b/0/c~0d"),  # RFC 6901 escapes
        (b"{not json", "invalid_json", ""),
    ],
)
def test_json_the_edges_refuse(body, code, pointer):
    with pytest.raises(InvalidJson) as err:
        parse_json(body)
    assert (err.value.code, err.value.pointer) == (code, pointer)


def test_json_within_bounds_parses():
    assert parse_json(b'{"a":' * 20 + b'"x"' + b"}" * 20) is not None


def test_times_must_lie_in_the_window_around_now():
    now = utcnow()
    within(now + PLAN_FUTURE - timedelta(minutes=1), timedelta(days=1), PLAN_FUTURE, "start_time")
    for bad in (now.replace(year=9999), now.replace(year=1), now + PLAN_FUTURE + timedelta(days=1)):
        with pytest.raises(ValueError, match="start_time must lie between"):
            within(bad, timedelta(days=1), PLAN_FUTURE, "start_time")
    with pytest.raises(ValueError, match="UTC offset"):
        within(now.replace(tzinfo=None), timedelta(days=1), PLAN_FUTURE, "start_time")


def test_a_nul_in_the_url_is_a_400_problem_not_a_500():
    app = service_app("test")

    @app.get("/v1/things")
    async def things(cursor: str = "") -> dict:
        raise AssertionError("a NUL must never reach a route")

    with TestClient(app) as client:
        for url in ("/v1/things?cursor=%00abc", "/v1/things%00"):
            answer = client.get(url)
            assert answer.status_code == 400 and answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["code"] == "invalid_request"


def test_entity_tags_compare_as_rfc_9110_says():
    from shared.http import etag_matches

    assert etag_matches('"7"', '"7"', weak=False) and etag_matches("*", '"7"', weak=False)
    assert etag_matches(' "1" , "7" ', '"7"', weak=False)
    assert not etag_matches('W/"7"', '"7"', weak=False)  # If-Match compares strongly
    assert etag_matches('W/"7"', '"7"', weak=True)  # If-None-Match compares weakly
    assert not etag_matches('"6"', '"7"', weak=True) and not etag_matches(None, '"7"', weak=True)
    assert not etag_matches("7", '"7"', weak=False)  # an unquoted tag is not the tag
