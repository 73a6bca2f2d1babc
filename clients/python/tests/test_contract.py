"""The client's models are the published OpenAPI document's, field for field."""

import httpx
import pytest

from routemate_client import models

PAIRS = [
    (models.ImportJob, "ImportIn"),
    (models.ImportStop, "StopIn"),
    (models.Depot, "DepotIn"),
    (models.TimeWindow, "TimeWindowIn"),
    (models.Token, "TokenResponse"),
    (models.Job, "Job"),
    (models.Stop, "Stop"),
    (models.Driver, "Driver"),
    (models.Optimization, "Optimization"),
    (models.Vehicle, "VehicleIn"),
    (models.Route, "Route"),
    (models.RouteTotals, "RouteTotals"),
    (models.ProofOfDelivery, "ProofOfDelivery"),
    (models.UnroutedStop, "UnroutedStop"),
    (models.JobWarning, "JobWarning"),
    (models.JobPage, "JobPage"),
    (models.ImportAccepted, "ImportAccepted"),
    (models.StopStatusAccepted, "StopStatusAccepted"),
]


@pytest.fixture(scope="module")
def schemas(platform) -> dict:
    document = httpx.get(f"{platform.base_url}/v1/openapi.json", timeout=10).raise_for_status().json()
    assert document["openapi"].startswith("3.1")
    return document["components"]["schemas"]


@pytest.mark.parametrize(("model", "name"), PAIRS, ids=[name for _, name in PAIRS])
def test_model_fields_are_the_documented_ones(schemas, model, name):
    schema = schemas[name]
    assert set(model.model_fields) == set(schema["properties"]), name
    required = {f for f, info in model.model_fields.items() if info.is_required()}
    assert required == set(schema.get("required", [])), name
