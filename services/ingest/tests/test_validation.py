import json

import pytest

from services.ingest.handlers import job_spec, parse_import, payload_hash, validated_import
from shared.errors import Problem
from shared.testing.builders import at, import_body


def errors_of(raw, max_stops=500):
    with pytest.raises(Problem) as err:
        parse_import(raw, max_stops)
    return err.value


def test_the_public_example_is_valid_and_warns_about_nothing():
    model, warnings = parse_import(import_body(), 500)
    assert len(model.stops) == 8 and warnings == []


def test_unknown_fields_warn_instead_of_failing():
    raw = import_body(priority="high")
    raw["stops"][0]["colour"] = "red"
    _, warnings = parse_import(raw, 500)
    assert {w.message.split()[0] for w in warnings} == {"/priority", "/stops/0/colour"}
    assert all(w.code == "UNKNOWN_FIELD" for w in warnings)


@pytest.mark.parametrize(
    "mutate, pointer",
    [
        (lambda b: b.pop("external_job_id"), "/external_job_id"),
        (lambda b: b.update(title=""), "/title"),
        (lambda b: b.update(stops=[]), "/stops"),
        (lambda b: b.update(driver_email="not-an-email"), "/driver_email"),
        (lambda b: b["stops"][1].update(parcel_count=-1), "/stops/1/parcel_count"),
        (lambda b: b["stops"][1].update(parcel_count=10**9), "/stops/1/parcel_count"),
        (lambda b: b["stops"][2].update(lat=95.0, lng=153.0), "/stops/2/lat"),
        (lambda b: b["stops"][2].update(lat=-27.4), "/stops/2"),
        (
            lambda b: b["stops"][0].update(time_window={"start": at(2), "end": at(1)}),
            "/stops/0/time_window",
        ),
        (
            lambda b: b["stops"][0].update(time_window={"start": at(2)[:-1], "end": at(3)[:-1]}),
            "/stops/0/time_window",
        ),
        (lambda b: b["stops"][3].update(email="nope"), "/stops/3/email"),
        (lambda b: b.update(start_time="9999-12-31T00:00:00Z"), "/start_time"),
        (lambda b: b.update(start_time="1999-12-31T00:00:00Z"), "/start_time"),
        (
            lambda b: b["stops"][0].update(time_window={"start": at(), "end": "9999-12-31T00:00:00Z"}),
            "/stops/0/time_window",
        ),
        (lambda b: b["stops"][3].pop("address"), "/stops/3"),
        (lambda b: b.update(return_to_depot=True), ""),
    ],
)
def test_each_bad_field_is_named_by_its_pointer(mutate, pointer):
    raw = import_body()
    mutate(raw)
    problem = errors_of(raw)
    assert problem.status == 422 and problem.code == "validation_failed"
    assert pointer in [e["pointer"] for e in problem.errors]


def test_duplicate_stop_ids_point_at_the_second_one():
    raw = import_body()
    raw["stops"][4]["external_stop_id"] = "STOP-1"
    problem = errors_of(raw)
    assert problem.errors == [
        {"pointer": "/stops/4/external_stop_id", "type": "duplicate", "reason": "duplicates /stops/0/external_stop_id"}
    ]


def test_too_many_stops_is_its_own_error():
    problem = errors_of(import_body(), max_stops=5)
    assert problem.code == "too_many_stops" and problem.errors[0]["pointer"] == "/stops"


def test_a_body_that_is_not_an_object_is_rejected():
    assert errors_of([1, 2]).status == 422


def test_the_payload_hash_ignores_key_order_and_unknown_fields_but_not_content():
    a, _ = parse_import(import_body(), 500)
    reordered = dict(reversed(list(import_body(extra="x").items())))
    b, _ = parse_import(reordered, 500)
    c, _ = parse_import(import_body(title="another"), 500)
    assert payload_hash(a) == payload_hash(b) != payload_hash(c)


def test_every_stop_gets_its_own_id_and_emails_are_lower_case():
    model, _ = parse_import(import_body(driver_email="Driver@Example.com"), 500)
    spec = job_spec(model, "job_1", "h")
    assert [s.stop_id for s in spec.stops][:2] == ["job_1.1", "job_1.2"]
    assert spec.driver_email == "driver@example.com"


def _rich_body() -> dict:
    body = import_body(stops=6, start_time=at(0), vehicle_capacity=12)
    body["depot"] = {"address": "1 Depot Rd", "lat": -27.47, "lng": 153.02}
    body["return_to_depot"] = True
    body["stops"][1].update(time_window={"start": at(1), "end": at(3)}, notes="ring", phone="+61", email="A@b.co")
    body["stops"][2].update(
        time_windows=[{"start": at(1), "end": at(2)}, {"start": at(4), "end": at(5)}], skills=["fridge"], priority=3
    )
    body["stops"][3].update(lat=-27.5, lng=153.0, service_minutes=4.5, parcel_count=0, title="  spaced  ")
    return body


def test_a_valid_import_straight_from_its_bytes_is_the_import_the_general_path_makes():
    """validated_import() parses once, in pydantic; what it makes must be what json.loads and
    parse_import make of the same bytes: the same model, warnings, digest and job spec."""
    body = _rich_body()
    body["stops"][3].pop("title")
    raw = json.dumps(body).encode()
    fast = validated_import(raw)
    assert fast is not None
    (general, general_warnings), (checked, warnings) = parse_import(json.loads(raw), 500), parse_import(fast, 500)
    assert checked == general and warnings == general_warnings == []
    assert payload_hash(checked) == payload_hash(general)
    assert job_spec(checked, "job_1", "d") == job_spec(general, "job_1", "d")


@pytest.mark.parametrize(
    "why,body",
    [
        ("an unknown field, whose depth only the general path bounds", _rich_body()),
        ("an escaped NUL, which the general path refuses", import_body(title="a\u0000b")),
        ("an invalid field", import_body(title="")),
        ("not an object", [1, 2]),
        ("not JSON", None),
    ],
)
def test_anything_but_a_plain_valid_import_is_left_to_the_general_path(why, body):
    raw = b"{nope" if body is None else json.dumps(body).encode()
    assert validated_import(raw) is None, why


def test_too_many_stops_is_refused_on_the_fast_path_as_on_the_general_one():
    fast = validated_import(json.dumps(import_body()).encode())
    with pytest.raises(Problem) as err:
        parse_import(fast, 5)
    assert err.value.code == "too_many_stops" and err.value.errors[0]["pointer"] == "/stops"
