"""One OpenAPI 3.1 document for the whole public API, merged from the auth, ingest, status and notifier apps.

`python -m routemate_cli.contract.openapi --out var/edge/openapi.json`: deploy/local/platform.sh runs
it on every `up`, and nginx serves the file at /v1/openapi.json and renders it at /docs. Only the
`/v1/` routes are kept (no admin API, no health or metrics); every answer is described with the
models in `responses.py`, every error as problem+json.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from routemate_cli.contract import responses as r

REF = "#/components/schemas/{model}"
RATE_HEADERS = {
    name: {"description": text, "schema": {"type": "integer"}}
    for name, text in (
        ("RateLimit-Limit", "imports allowed per burst"),
        ("RateLimit-Remaining", "imports left in the current burst"),
        ("RateLimit-Reset", "seconds until the bucket is full again"),
    )
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}
LOCATION = {"Location": {"description": "the job's URL on the jobs endpoint", "schema": {"type": "string"}}}
REPLAYED = {
    "Idempotent-Replayed": {
        "description": "`true` when this answer replays an earlier import of the same body",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
DESCRIPTIONS = {
    400: "The request could not be parsed",
    401: "Missing, unknown, expired or revoked bearer token",
    404: "No such job (or stop) for this organization",
    409: "Conflict: a different body under the same external_job_id, or an illegal transition",
    412: "If-Match names another version of the job: `current_version` and the ETag say which is current",
    413: "The body is too large",
    415: "Not application/json",
    422: "Invalid fields, listed in `errors`",
    429: "Too many requests; wait `Retry-After` seconds",
    503: "A dependency is down; nothing was recorded, retry after `Retry-After` seconds",
}
OPERATIONS = {  # (path, method) -> operationId, answers beyond the success ones
    ("/v1/integration-token", "post"): ("issueToken", (413, 415, 429, 503)),
    ("/v1/integration-import", "post"): ("importJob", (400, 401, 409, 412, 413, 415, 422, 429, 503)),
    ("/v1/integration-jobs", "get"): ("listJobs", (400, 401, 404, 422, 503)),
    ("/v1/integration-jobs/{job_id}", "get"): ("getJob", (401, 404, 422, 503)),
    ("/v1/integration-jobs/{job_id}", "delete"): ("eraseJob", (401, 404, 422, 429, 503)),
    ("/v1/integration-jobs/{job_id}/cancel", "post"): ("cancelJob", (400, 401, 404, 409, 412, 422, 429, 503)),
    ("/v1/integration-jobs/{job_id}/reoptimize", "post"): (
        "reoptimizeJob",
        (400, 401, 404, 409, 412, 422, 429, 503),
    ),
    ("/v1/integration-jobs/{job_id}/stops/{external_stop_id}/status", "post"): (
        "recordStopStatus",
        (401, 404, 409, 422, 503),
    ),
    ("/v1/integration-webhooks", "post"): ("createWebhook", (401, 409, 422, 503)),
    ("/v1/integration-webhooks", "get"): ("listWebhooks", (401, 503)),
    ("/v1/integration-webhooks/{endpoint_id}", "get"): ("getWebhook", (401, 404, 422, 503)),
    ("/v1/integration-webhooks/{endpoint_id}", "patch"): ("updateWebhook", (401, 404, 422, 503)),
    ("/v1/integration-webhooks/{endpoint_id}", "delete"): ("deleteWebhook", (401, 404, 422, 503)),
    ("/v1/integration-webhooks/{endpoint_id}/rotate-secret", "post"): ("rotateWebhookSecret", (401, 404, 422, 503)),
    ("/v1/integration-webhooks/{endpoint_id}/test", "post"): ("testWebhook", (401, 404, 422, 503)),
    ("/v1/integration-webhooks/{endpoint_id}/deliveries", "get"): ("listWebhookDeliveries", (400, 401, 404, 422, 503)),
    ("/v1/integration-webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver", "post"): (
        "redeliverWebhook",
        (401, 404, 422, 503),
    ),
}
WEBHOOK_ANSWERS = {
    "createWebhook": {"201": ("The endpoint, with its signing secret (shown only here)", "WebhookEndpointWithSecret")},
    "listWebhooks": {"200": ("The organization's endpoints", "WebhookEndpointList")},
    "getWebhook": {"200": ("The endpoint", "WebhookEndpoint")},
    "updateWebhook": {"200": ("The endpoint as changed", "WebhookEndpoint")},
    "rotateWebhookSecret": {"200": ("The endpoint with its new secret (shown only here)", "WebhookEndpointWithSecret")},
    "testWebhook": {"202": ("A webhook.test delivery is scheduled", "WebhookDeliveryScheduled")},
    "listWebhookDeliveries": {"200": ("Deliveries newest first, each with its attempts", "WebhookDeliveryPage")},
    "redeliverWebhook": {
        "202": ("The delivery is attempted again now, with the same webhook-id", "WebhookDeliveryScheduled")
    },
}
PUBLISHED_MODELS: list[type[BaseModel]] = [
    r.Problem,
    r.OAuthError,
    r.Job,
    r.JobPage,
    r.ImportAccepted,
    r.StopStatusAccepted,
    r.CancelAccepted,
    r.ReplanAccepted,
    r.WebhookEndpoint,
    r.WebhookEndpointWithSecret,
    r.WebhookEndpointList,
    r.WebhookDeliveryPage,
    r.WebhookDeliveryScheduled,
]


ETAG = {"ETag": {"description": "The job's version, quoted (strong)", "schema": {"type": "string"}}}


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def json_answer(description: str, schema: dict, headers: dict | None = None, media="application/json") -> dict:
    answer: dict[str, Any] = {"description": description, "content": {media: {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


def problem_answer(status: int) -> dict:
    headers = RETRY_AFTER if status in (429, 503) else None
    return json_answer(DESCRIPTIONS[status], ref("Problem"), headers, media="application/problem+json")


def success_answers(operation_id: str) -> dict[str, dict]:
    job = ref("Job")
    if operation_id == "issueToken":
        oauth = ref("OAuthError")
        return {
            "200": json_answer("A bearer token; reuse it until it expires", ref("TokenResponse")),
            "400": json_answer("RFC 6749 error: invalid_request or unsupported_grant_type", oauth),
            "401": json_answer("RFC 6749 error: invalid_client", oauth),
        }
    if operation_id == "importJob":
        return {
            "201": json_answer("The job, geocoded, optimized and assigned", job, {**LOCATION, **RATE_HEADERS}),
            "200": json_answer("A replay of an earlier import with the same body", job, {**LOCATION, **REPLAYED}),
            "202": json_answer(
                "Accepted and still being routed (`Prefer: respond-async`, or the wait ran out): follow `Location`",
                ref("ImportAccepted"),
                {**LOCATION, **REPLAYED, **RATE_HEADERS},
            ),
        }
    if operation_id == "listJobs":
        page_or_job = {"anyOf": [ref("JobPage"), job]}
        return {
            "200": json_answer("A page of jobs (newest first), or one job with `job_id`/`external_job_id`", page_or_job)
        }
    if operation_id == "eraseJob":
        return {
            "204": {
                "description": "Erased (now, or before: idempotent). The job is gone from the API, and its personal "
                "data can no longer be read anywhere, the event log and snapshots included (its data key is destroyed)"
            }
        }
    if operation_id == "deleteWebhook":
        return {"204": {"description": "Deleted, with its delivery log"}}
    if operation_id in WEBHOOK_ANSWERS:
        return {
            status: json_answer(text, ref(model)) for status, (text, model) in WEBHOOK_ANSWERS[operation_id].items()
        }
    if operation_id == "getJob":
        return {
            "200": json_answer("The job with its stops in route order; its version as a strong ETag", job, ETAG),
            "304": {"description": "Unchanged since the ETag sent in If-None-Match (no body)", "headers": ETAG},
        }
    if operation_id == "cancelJob":
        cancelled = ref("CancelAccepted")
        return {
            "202": json_answer("Cancelled: the job and its pending stops become cancelled", cancelled, LOCATION),
            "200": json_answer("Cancelled already: the same answer again", cancelled, LOCATION),
        }
    if operation_id == "reoptimizeJob":
        return {
            "202": json_answer("Accepted: the remaining stops are being re-ordered", ref("ReplanAccepted"), LOCATION)
        }
    return {"202": json_answer("Recorded; the job view shows it within moments", ref("StopStatusAccepted"), LOCATION)}


def service_documents() -> list[dict]:
    """The OpenAPI documents of the four public apps, built without touching any real store."""
    from services.auth.app import create_app as auth_app
    from services.auth.settings import AuthSettings
    from services.ingest.app import create_app as ingest_app
    from services.ingest.settings import IngestSettings
    from services.notifier.app import create_app as notifier_app
    from services.notifier.settings import NotifierSettings
    from services.status.app import create_app as status_app
    from services.status.settings import StatusSettings

    with tempfile.TemporaryDirectory() as scratch:
        auth = auth_app(AuthSettings(database_url=f"sqlite:///{scratch}/auth.db"))
        status = status_app(StatusSettings(database_url=f"sqlite:///{scratch}/status.db"))
        notifier = notifier_app(NotifierSettings(database_url=f"sqlite:///{scratch}/notifier.db"))
        return [auth.openapi(), ingest_app(IngestSettings()).openapi(), status.openapi(), notifier.openapi()]


def merge(documents: list[dict]) -> dict:
    """The public paths of every document, with their request schemas and our answers."""
    paths: dict[str, dict] = {}
    schemas: dict[str, Any] = {}
    for document in documents:
        for path, item in document["paths"].items():
            if path.startswith("/v1/"):
                paths[path] = item
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            if name not in ("HTTPValidationError", "ValidationError"):
                schemas[name] = schema
    for (path, method), (operation_id, errors) in OPERATIONS.items():
        operation = paths[path][method]
        operation["operationId"] = operation_id
        operation["responses"] = {
            **success_answers(operation_id),
            **{str(s): problem_answer(s) for s in errors if str(s) not in success_answers(operation_id)},
        }
        if operation_id != "issueToken":
            operation["security"] = [{"bearerAuth": []}]
    paths["/v1/integration-import"]["post"]["parameters"] = [
        {
            "name": "Prefer",
            "in": "header",
            "required": False,
            "description": "`respond-async` answers 202 at once instead of waiting for the route",
            "schema": {"type": "string"},
        }
    ]
    _, published = models_json_schema([(m, "validation") for m in PUBLISHED_MODELS], ref_template=REF)
    schemas.update(published["$defs"])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "RouteMate Integration API",
            "version": "1.0.0",
            "description": (
                "Exchange client credentials for a bearer token, import delivery jobs and get back a geocoded, "
                "optimized, driver-assigned route, then follow delivery progress. Errors are RFC 9457 "
                "`application/problem+json` with a stable `code`."
            ),
        },
        "servers": [{"url": "/", "description": "this RouteMate edge"}],
        "tags": [
            {"name": "auth", "description": "OAuth2 client credentials"},
            {"name": "ingest", "description": "importing jobs"},
            {"name": "status", "description": "jobs and delivery progress"},
            {"name": "webhooks", "description": "Standard Webhooks-signed callbacks for job and stop changes"},
        ],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`rm_at_…` from POST /v1/integration-token",
                }
            },
        },
    }


def build() -> dict:
    return merge(service_documents())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    text = json.dumps(build(), indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_suffix(".tmp")
    partial.write_text(text)
    partial.replace(args.out)  # nginx never serves a half-written document


if __name__ == "__main__":
    main()
