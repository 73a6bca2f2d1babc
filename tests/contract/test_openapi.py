"""The merged public OpenAPI document: valid, public routes only, and served by the edge."""

import json

import pytest
from openapi_spec_validator import validate

from routemate_cli.contract import openapi

PUBLIC = {
    ("/v1/integration-token", "post"): "issueToken",
    ("/v1/integration-import", "post"): "importJob",
    ("/v1/integration-jobs", "get"): "listJobs",
    ("/v1/integration-jobs/{job_id}", "get"): "getJob",
    ("/v1/integration-jobs/{job_id}", "delete"): "eraseJob",
    ("/v1/integration-jobs/{job_id}/cancel", "post"): "cancelJob",
    ("/v1/integration-jobs/{job_id}/reoptimize", "post"): "reoptimizeJob",
    ("/v1/integration-jobs/{job_id}/stops/{external_stop_id}/status", "post"): "recordStopStatus",
    ("/v1/integration-webhooks", "post"): "createWebhook",
    ("/v1/integration-webhooks", "get"): "listWebhooks",
    ("/v1/integration-webhooks/{endpoint_id}", "get"): "getWebhook",
    ("/v1/integration-webhooks/{endpoint_id}", "patch"): "updateWebhook",
    ("/v1/integration-webhooks/{endpoint_id}", "delete"): "deleteWebhook",
    ("/v1/integration-webhooks/{endpoint_id}/rotate-secret", "post"): "rotateWebhookSecret",
    ("/v1/integration-webhooks/{endpoint_id}/test", "post"): "testWebhook",
    ("/v1/integration-webhooks/{endpoint_id}/deliveries", "get"): "listWebhookDeliveries",
    ("/v1/integration-webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver", "post"): "redeliverWebhook",
}


@pytest.fixture(scope="module")
def document() -> dict:
    return openapi.build()


def test_the_merged_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_it_has_the_public_operations_only(document):
    operations = {
        (path, method): op["operationId"] for path, item in document["paths"].items() for method, op in item.items()
    }
    assert operations == PUBLIC
    assert not any(p.startswith("/admin") or p in ("/healthz", "/metrics") for p in document["paths"])


def test_every_error_is_problem_json_and_every_call_but_the_token_needs_a_bearer(document):
    for path, item in document["paths"].items():
        for operation in item.values():
            for status, answer in operation["responses"].items():
                if int(status) >= 400 and operation["operationId"] != "issueToken":
                    assert list(answer["content"]) == ["application/problem+json"], (path, status)
            secured = operation.get("security") == [{"bearerAuth": []}]
            assert secured == (operation["operationId"] != "issueToken"), path
    answers = document["paths"]["/v1/integration-import"]["post"]["responses"]
    assert {"200", "201", "202", "409", "422", "429", "503"} <= set(answers)
    assert "Retry-After" in answers["429"]["headers"] and "Location" in answers["202"]["headers"]


def test_the_document_serialises_stably(document):
    assert json.dumps(openapi.build(), indent=2) == json.dumps(document, indent=2)
