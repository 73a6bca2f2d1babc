"""The fleet request at the edge: vehicles instead of driver_email, stop skills, priority and two
time windows; every wrong combination is a 422 naming the field to change."""

import pytest

from services.ingest.handlers import job_spec, parse_import, payload_hash
from services.ingest.models import MAX_VEHICLES
from shared.errors import Problem
from shared.testing.builders import at, import_body


def fleet_body(**over):
    body = import_body(stops=4)
    body.pop("driver_email")
    body["depot"] = {"lat": -27.47, "lng": 153.02}
    body["vehicles"] = [
        {
            "driver_email": "Ann@Example.com",
            "capacity": 10,
            "skills": ["fridge"],
            "shift_start": at(0),
            "shift_end": at(8),
        },
        {"driver_email": "bob@example.com", "start": {"address": "1 Ann St, Brisbane QLD 4000"}, "max_stops": 3},
    ]
    body["stops"][0].update(skills=["fridge"], priority=5)
    body["stops"][1].update(time_windows=[{"start": at(1), "end": at(2)}, {"start": at(4), "end": at(5)}])
    body.update(over)
    return body


def pointers(raw) -> list[str]:
    with pytest.raises(Problem) as err:
        parse_import(raw, 500)
    assert err.value.status == 422 and err.value.code == "validation_failed"
    return [e["pointer"] for e in err.value.errors]


def test_a_fleet_import_is_valid_and_its_spec_carries_every_fleet_field():
    model, warnings = parse_import(fleet_body(), 500)
    assert warnings == []
    spec = job_spec(model, "job_1", payload_hash(model))
    assert spec.driver_email is None and spec.fleet
    ann, bob = spec.vehicles
    assert (ann.driver_email, ann.capacity, ann.skills) == ("ann@example.com", 10, ("fridge",))
    assert bob.start.address == "1 Ann St, Brisbane QLD 4000" and bob.max_stops == 3
    assert (spec.stops[0].skills, spec.stops[0].priority) == (("fridge",), 5)
    assert len(spec.stops[1].windows()) == 2 and spec.stops[1].time_window is None


def test_the_public_single_driver_body_is_unchanged_and_hashes_as_before():
    model, _ = parse_import(import_body(), 500)
    spec = job_spec(model, "job_1", payload_hash(model))
    assert not spec.fleet and spec.vehicles == ()
    # the fleet fields are absent from the canonical form: an old import's hash is what it was
    assert payload_hash(model) == payload_hash(parse_import(import_body(), 500)[0])
    assert "vehicles" not in model.model_dump(exclude_none=True)


@pytest.mark.parametrize(
    "mutate, pointer",
    [
        (lambda b: b.update(driver_email="dana@example.com"), "/vehicles"),
        (lambda b: b.update(vehicle_capacity=5), "/vehicle_capacity"),
        (lambda b: b["vehicles"][1].update(driver_email="ANN@example.com"), "/vehicles/1/driver_email"),
        (lambda b: (b.pop("depot"), b["vehicles"][0].pop("start", None)), "/vehicles/0/start"),
        (lambda b: b["vehicles"][0].update(shift_end=at(-1)), "/vehicles/0"),
        (lambda b: b["vehicles"][0].update(capacity=-1), "/vehicles/0/capacity"),
        (lambda b: b["vehicles"][0].update(driver_email="nope"), "/vehicles/0/driver_email"),
        (lambda b: b["vehicles"][1].update(start={"lat": -27.4}), "/vehicles/1/start"),
        (lambda b: b["vehicles"][1].update(max_duration_minutes=0), "/vehicles/1/max_duration_minutes"),
        (lambda b: b.update(vehicles=[]), "/vehicles"),
        (lambda b: b["stops"][0].update(priority=-1), "/stops/0/priority"),
        (lambda b: b["stops"][0].update(skills=[""]), "/stops/0/skills/0"),
        (lambda b: b["stops"][1].update(time_window={"start": at(1), "end": at(2)}), "/stops/1/time_windows"),
        (lambda b: b["stops"][1]["time_windows"].append({"start": at(6), "end": at(7)}), "/stops/1/time_windows"),
        (lambda b: b["stops"][1]["time_windows"].reverse(), "/stops/1/time_windows/1/start"),
    ],
)
def test_each_wrong_fleet_field_is_named(mutate, pointer):
    body = fleet_body()
    mutate(body)
    assert pointer in pointers(body)


def test_a_fleet_has_at_most_the_vehicle_limit():
    body = fleet_body(vehicles=[{"driver_email": f"d{i}@example.com"} for i in range(MAX_VEHICLES + 1)])
    assert pointers(body) == ["/vehicles"]


def _previous_release_hash(model) -> str:
    """payload_hash as the release before the faster walk computed it (reservations made then
    must keep matching the same body after an upgrade, or a client's retry becomes a 409)."""
    import hashlib
    import json

    from pydantic import BaseModel

    def strip(value):
        if isinstance(value, BaseModel):
            return {k: strip(getattr(value, k)) for k in type(value).model_fields if getattr(value, k) is not None}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    canonical = json.dumps(strip(model), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def test_the_payload_hash_is_the_previous_releases_for_every_kind_of_field():
    body = fleet_body(title="Fleet", start_time=at(0), return_to_depot=True, colour="red")
    body["depot"].update(address="1 Depot Rd", hue="blue")
    body["vehicles"][1]["start"]["extra"] = {"deep": [1, 2]}
    body["stops"][2].update(time_window={"start": at(1), "end": at(3)}, notes="ring", phone="+61", email="A@b.co")
    model, warnings = parse_import(body, 500)
    assert payload_hash(model) == _previous_release_hash(model)
    assert sorted(w.message.split()[0] for w in warnings) == ["/colour", "/depot/hue", "/vehicles/1/start/extra"]


def test_the_spec_carries_every_stop_field_and_emails_in_their_normal_form():
    body = fleet_body()
    body["stops"][2].update(time_window={"start": at(1), "end": at(3)}, notes="ring", email="A@Example.com")
    model, _ = parse_import(body, 500)
    spec = job_spec(model, "job_1", "h")
    revalidated = type(spec).model_validate(spec.model_dump())
    assert spec == revalidated and spec.model_dump_json() == revalidated.model_dump_json()
    assert spec.stops[2].email == "A@example.com"  # EmailStr's normal form, from the cached check too
    assert parse_import(body, 500)[0].stops[2].email == "A@example.com"  # the second time from the cache
