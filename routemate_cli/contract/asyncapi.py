"""The AsyncAPI 3 document of RouteMate's Kafka events, generated from the pydantic models in
shared/events: topics, partition keys, headers, the envelope and every event's schema.

`python -m routemate_cli.contract.asyncapi --out docs/asyncapi.yaml` writes it; the file is checked
in, and tests/contract/test_asyncapi.py regenerates it and fails when the two differ.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.events import (
    ALL_TOPICS,
    AUTH_EVENTS,
    DEADLETTER,
    JOBS_CHANGES,
    JOBS_FAILED,
    JOBS_GEOCODED,
    JOBS_GEOCODED_BULK,
    JOBS_OPTIMIZED,
    JOBS_REQUESTED,
    JOBS_REQUESTED_BULK,
    STOPS_STATUS,
    DriverRegistered,
    DriverRemoved,
    Event,
    ImportRequested,
    IntegrationCreated,
    IntegrationRevoked,
    JobCancelled,
    JobChanged,
    JobFailed,
    MemberInvited,
    MemberPasswordSet,
    MemberRemoved,
    MemberRoleChanged,
    MemberSignedIn,
    ReplanRequested,
    RouteOptimized,
    SecretRotated,
    StopsGeocoded,
    StopStatusChanged,
    TokenIssued,
    WebhookEndpointDisabled,
)

REF = "#/components/schemas/{model}"
KAFKA_BINDING = "0.5.0"
# Every event the platform publishes: the union the decoder knows (shared/events.AnyEvent), so a
# new event cannot be left out of the document (the drift test compares them).
EVENTS: list[type[Event]] = [
    ImportRequested,
    JobCancelled,
    StopsGeocoded,
    ReplanRequested,
    RouteOptimized,
    JobFailed,
    StopStatusChanged,
    IntegrationCreated,
    SecretRotated,
    IntegrationRevoked,
    TokenIssued,
    DriverRegistered,
    DriverRemoved,
    WebhookEndpointDisabled,
    MemberInvited,
    MemberRoleChanged,
    MemberRemoved,
    MemberPasswordSet,
    MemberSignedIn,
    JobChanged,
]
# topic -> (channel id, what flows there, producing services, consuming services)
TOPICS: dict[str, tuple[str, str, list[str], list[str]]] = {
    JOBS_REQUESTED: (
        "jobsRequested",
        "Validated imports and updates (ingest), cancellations (status)",
        ["ingest", "status"],
        ["geocoder", "status"],
    ),
    JOBS_GEOCODED: (
        "jobsGeocoded",
        "Every stop placed, with its precision (geocoder); re-plan requests (status)",
        ["geocoder", "status"],
        ["optimizer", "status"],
    ),
    JOBS_OPTIMIZED: ("jobsOptimized", "Stops in visiting order, totals, solver stats", ["optimizer"], ["status"]),
    JOBS_FAILED: ("jobsFailed", "A stage gave up on a job", ["geocoder", "optimizer"], ["status"]),
    STOPS_STATUS: ("stopsStatus", "Delivery progress of single stops", ["status"], ["status"]),
    AUTH_EVENTS: (
        "authEvents",
        "Audit trail of integrations and webhook endpoints, and the driver directory",
        ["auth", "notifier"],
        ["status"],
    ),
    JOBS_CHANGES: ("jobsChanges", "Public changes of jobs and stops (the webhooks' source)", ["status"], ["notifier"]),
    JOBS_REQUESTED_BULK: (
        "jobsRequestedBulk",
        "The bulk lane of validated imports: an organization's jobs beyond its fair share in flight",
        ["ingest"],
        ["geocoder", "status"],
    ),
    JOBS_GEOCODED_BULK: (
        "jobsGeocodedBulk",
        "The bulk lane of placed jobs (solved when the normal lane is idle)",
        ["geocoder"],
        ["optimizer", "status"],
    ),
    DEADLETTER: (
        "deadletter",
        "Messages a consumer could not decode or process, with the reason",
        ["geocoder", "optimizer", "status"],
        [],
    ),
}
LANE_OF = {JOBS_REQUESTED_BULK: JOBS_REQUESTED, JOBS_GEOCODED_BULK: JOBS_GEOCODED}
SUMMARIES = {
    "ImportRequested": "The whole validated job: ids, title, driver, stops with their own stop_id, depot, payload hash",
    "StopsGeocoded": "Every stop's coordinates, precision and provider; geocoding warnings",
    "RouteOptimized": "Stops in visiting order with legs and ETA offsets, unrouted stops, totals, solver stats",
    "JobFailed": "The stage that gave up on a job, a machine code and a message",
    "JobCancelled": "A job was cancelled (terminal): its pending stops are cancelled, finished ones keep their status",
    "ReplanRequested": "Re-order a started route's remaining stops from a start point and time; finished stops stay",
    "StopStatusChanged": "A stop's new status, when it happened, the reason and proof of delivery",
    "IntegrationCreated": "An integration was created for an organization",
    "SecretRotated": "An integration's secret was rotated (the old one valid until the given time, if any)",
    "IntegrationRevoked": "An integration was revoked; its tokens stopped working",
    "TokenIssued": "A token was issued (its fingerprint only, never the token)",
    "DriverRegistered": "A driver joined (or changed in) the organization's directory",
    "DriverRemoved": "A driver left the organization's directory",
    "WebhookEndpointDisabled": "A webhook endpoint was disabled (it answered 410 or failed for too long)",
    "MemberInvited": "A member was added to an organization with a role; they set a password through a set-up link",
    "MemberRoleChanged": "A member's role changed (admin, developer, viewer)",
    "MemberRemoved": "A member was removed from the organization; their console sessions end",
    "MemberPasswordSet": "A member set their password (from a set-up link, or by the operator)",
    "MemberSignedIn": "A member signed in to the console",
    "JobChanged": "One public change of a job (job.routed, job.assigned, stop.status_changed...): the public view",
}
DEAD_LETTER_SCHEMA = {
    "description": "The parked message's value byte for byte as it was on its source topic (so whatever "
    "fit there fits here; usually a RouteMate event, possibly garbage); where it came from and why are "
    "in the headers.",
}


def _strip_titles(node: Any) -> Any:
    """Pydantic's generated `title` on every property is noise in a contract document."""
    if isinstance(node, dict):
        return {k: _strip_titles(v) for k, v in node.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(node, list):
        return [_strip_titles(v) for v in node]
    return node


def schemas() -> dict[str, Any]:
    models: list[type[BaseModel]] = [Event, *EVENTS]
    _, top = models_json_schema([(m, "serialization") for m in models], ref_template=REF)
    found = {name: _strip_titles(schema) for name, schema in top["$defs"].items()}
    found["Envelope"] = found.pop("Event")
    found["Envelope"]["description"] = "The fields every event carries; each event adds its own."
    found["DeadLetter"] = DEAD_LETTER_SCHEMA
    return dict(sorted(found.items()))


def _key(event: type[Event]) -> dict[str, str]:
    if "job_id" in event.model_fields:
        return {"type": "string", "description": "job_id: one job's events keep their order"}
    return {"type": "string", "description": "org_id: one organization's events keep their order"}


def message(event: type[Event]) -> dict[str, Any]:
    name = event.__name__
    version = event.model_fields["schema_version"].default
    return {
        "name": name,
        "title": name,
        "summary": SUMMARIES[name],
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "properties": {
                "event_type": {"type": "string", "const": name},
                "schema_version": {"type": "string", "const": str(version)},
                "content-type": {"type": "string", "const": "application/json"},
            },
        },
        "correlationId": {"$ref": "#/components/correlationIds/request"},
        "payload": {"$ref": REF.format(model=name)},
        "bindings": {"kafka": {"key": _key(event), "bindingVersion": KAFKA_BINDING}},
    }


def dead_letter_message() -> dict[str, Any]:
    return {
        "name": "DeadLetter",
        "title": "DeadLetter",
        "summary": "A message parked because it could not be decoded or handling it failed for a reason "
        "in the message itself (outages are retried, never parked)",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "required": ["reason", "service", "source_topic", "source_partition", "source_offset", "deadlettered_at"],
            "properties": {
                "reason": {"type": "string", "maxLength": 1000},
                "service": {"type": "string", "description": "the consumer that parked it"},
                "source_topic": {"type": "string"},
                "source_partition": {"type": "string", "description": "an integer, as text"},
                "source_offset": {"type": "string", "description": "an integer, as text"},
                "deadlettered_at": {"type": "string", "format": "date-time"},
            },
        },
        "payload": {"$ref": REF.format(model="DeadLetter")},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "the parked message's own key"},
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }


def channels_and_operations() -> tuple[dict[str, Any], dict[str, Any]]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in ALL_TOPICS:
        channel_id, description, producers, consumers = TOPICS[topic]
        carries = LANE_OF.get(topic, topic)  # a bulk lane carries its normal lane's events
        names = ["DeadLetter"] if topic == DEADLETTER else [e.__name__ for e in EVENTS if carries == e.TOPIC]
        channels[channel_id] = {
            "address": topic,
            "description": description,
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
            "bindings": {
                "kafka": {
                    "topic": topic,
                    "partitions": 3 if topic == DEADLETTER else 12,
                    "bindingVersion": KAFKA_BINDING,
                }
            },
        }
        refs = [{"$ref": f"#/channels/{channel_id}/messages/{n}"} for n in names]
        for service in producers:
            operations[f"{service}Sends{channel_id[0].upper()}{channel_id[1:]}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "summary": f"{service} publishes to {topic} (acks=all, idempotent producer)",
                "messages": refs,
            }
        for service in consumers:
            operations[f"{service}Receives{channel_id[0].upper()}{channel_id[1:]}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "summary": f"consumer group routemate-{service} reads {topic}, committing after its output is stored",
                "messages": refs,
                "bindings": {
                    "kafka": {
                        "groupId": {"type": "string", "const": f"routemate-{service}"},
                        "bindingVersion": KAFKA_BINDING,
                    }
                },
            }
    return channels, operations


def build() -> dict[str, Any]:
    channels, operations = channels_and_operations()
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "RouteMate events",
            "version": "1.0.0",
            "description": (
                "The Kafka topics the RouteMate services talk through. Every event is a JSON object on one envelope "
                "(`event_id`, `event_type`, `schema_version`, `occurred_at`, `correlation_id`, `org_id`, and `job_id` "
                "for job events), keyed by `job_id` (auth events by `org_id`). Delivery is at least once; consumers "
                "are idempotent on `event_id`. A breaking change bumps `schema_version`. Generated from shared/events "
                "by routemate_cli.contract.asyncapi."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "KAFKA_BOOTSTRAP_SERVERS of a local run",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": {**{e.__name__: message(e) for e in EVENTS}, "DeadLetter": dead_letter_message()},
            "schemas": schemas(),
            "correlationIds": {
                "request": {
                    "description": "The X-Request-ID of the HTTP request that started it",
                    "location": "$message.payload#/correlation_id",
                }
            },
        },
    }


def render() -> str:
    header = "# Generated by `python -m routemate_cli.contract.asyncapi --out docs/asyncapi.yaml`; do not edit.\n"
    return header + yaml.safe_dump(build(), sort_keys=False, allow_unicode=True, width=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    if args.out is None:
        sys.stdout.write(render())
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(render())


if __name__ == "__main__":
    main()
