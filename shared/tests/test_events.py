import json

import pytest
from pydantic import ValidationError

from shared.events import (
    JOBS_GEOCODED,
    JOBS_REQUESTED,
    ImportRequested,
    JobCancelled,
    ReplanRequested,
    RouteOptimized,
    UndecodableEvent,
    decode_event,
    utcnow,
)
from shared.events.envelope import UPCASTERS
from shared.events.jobs import JobSpec, ReplanStop, RequestedStop, StartPoint


def _import(**over) -> ImportRequested:
    spec = JobSpec(
        external_job_id="X-1",
        title="t",
        stops=(RequestedStop(stop_id="j.1", external_stop_id="A", address="1 Queen St"),),
        payload_hash="h",
    )
    return ImportRequested(org_id="org", job_id="job_1", integration_id="rm_ci_x", job=spec, **over)


def test_an_event_survives_the_wire_unchanged():
    event = _import(correlation_id="req-1")
    assert decode_event(event.to_bytes()) == event


def test_events_are_frozen():
    with pytest.raises(ValidationError, match="frozen"):
        _import().job_id = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"\xff\xfe garbage", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"event_type": "Nope", "schema_version": 1}', "invalid event"),
        (b'{"event_type": "ImportRequested", "schema_version": 1, "org_id": "o"}', "invalid event"),
    ],
)
def test_poison_messages_are_named_not_crashed_on(raw, reason):
    with pytest.raises(UndecodableEvent, match=reason):
        decode_event(raw)


def test_an_unknown_schema_version_is_undecodable():
    raw = _import().model_dump(mode="json")
    raw["schema_version"] = 7
    with pytest.raises(UndecodableEvent, match="schema_version"):
        decode_event(__import__("json").dumps(raw).encode())


def test_an_upcaster_lifts_an_old_version(monkeypatch):
    raw = _import().model_dump(mode="json")
    raw["schema_version"] = 0
    raw["job"]["name"] = raw["job"].pop("title")

    def v0_to_v1(old: dict) -> dict:
        new = dict(old, schema_version=1)
        new["job"] = dict(old["job"], title=old["job"]["name"])
        return new

    monkeypatch.setitem(UPCASTERS, ("ImportRequested", 0), v0_to_v1)
    event = decode_event(__import__("json").dumps(raw).encode())
    assert isinstance(event, ImportRequested) and event.job.title == "t"


def test_job_events_are_keyed_by_job_so_they_keep_their_order():
    assert _import().key == b"job_1"
    assert RouteOptimized.TOPIC == "routemate.jobs.optimized"


def test_lifecycle_fields_are_additive_and_old_events_decode_with_their_meaning():
    old = json.loads(_import().to_bytes())
    for field in ("spec_version", "base_version", "keep"):
        old.pop(field)
    decoded = decode_event(json.dumps(old).encode())
    assert (decoded.schema_version, decoded.spec_version, decoded.base_version, decoded.keep) == (2, 1, None, ())
    update = _import(spec_version=3, base_version=7, keep=("A",))
    assert decode_event(update.to_bytes()) == update


def test_the_new_job_events_decode_and_are_keyed_by_their_job():
    cancel = JobCancelled(org_id="org", job_id="job_1", reason="customer called")
    replan = ReplanRequested(
        org_id="org",
        job_id="job_1",
        stops=(ReplanStop(stop_id="j.1", external_stop_id="A", lat=-27.4, lng=153.0),),
        start=StartPoint(lat=-27.5, lng=153.0, origin="depot"),
        start_time=utcnow(),
    )
    for event in (cancel, replan):
        assert decode_event(event.to_bytes()) == event and event.key == b"job_1"
    assert (JobCancelled.TOPIC, ReplanRequested.TOPIC) == (JOBS_REQUESTED, JOBS_GEOCODED)
