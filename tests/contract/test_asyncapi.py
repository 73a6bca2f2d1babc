"""docs/asyncapi.yaml is what the event models say, and a valid AsyncAPI 3 document."""

import json
import typing

import jsonschema
import yaml

from routemate_cli.contract import asyncapi
from shared.events import ALL_TOPICS, AnyEvent
from tests.conftest import ROOT

CHECKED_IN = ROOT / "docs/asyncapi.yaml"
SPEC = ROOT / "deploy/docs/node_modules/@asyncapi/specs/schemas/3.0.0-without-$id.json"


def test_the_checked_in_document_is_what_the_models_generate():
    assert CHECKED_IN.read_text() == asyncapi.render(), (
        "docs/asyncapi.yaml is stale: run .venv/bin/python -m routemate_cli.contract.asyncapi --out docs/asyncapi.yaml"
    )


def test_it_is_a_valid_asyncapi_3_document():
    assert SPEC.exists(), "the AsyncAPI JSON Schema comes from npm: run make install"
    validator = jsonschema.Draft7Validator(json.loads(SPEC.read_text()))
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(yaml.safe_load(CHECKED_IN.read_text()))]
    assert not errors, errors[:5]


def test_every_topic_and_every_event_is_described_with_its_key_and_envelope():
    document = yaml.safe_load(CHECKED_IN.read_text())
    assert sorted(c["address"] for c in document["channels"].values()) == sorted(ALL_TOPICS)
    events = {model.__name__ for model in typing.get_args(typing.get_args(AnyEvent)[0])}
    messages = document["components"]["messages"]
    assert events | {"DeadLetter"} == set(messages)
    assert messages["RouteOptimized"]["bindings"]["kafka"]["key"]["description"].startswith("job_id")
    assert messages["DriverRegistered"]["bindings"]["kafka"]["key"]["description"].startswith("org_id")
    schemas = document["components"]["schemas"]
    envelope = {"event_id", "event_type", "schema_version", "occurred_at", "correlation_id", "org_id"}
    assert envelope <= set(schemas["Envelope"]["properties"])
    for name in events:
        assert envelope <= set(schemas[name]["properties"]), name
    assert {"job_id", "job"} <= set(schemas["ImportRequested"]["properties"])
    assert "stops" in schemas["JobSpec"]["properties"]
