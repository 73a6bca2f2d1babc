"""Import logic on typed values: validate, fingerprint, and turn an import into a job."""

import hashlib
import json
import uuid
from typing import Any

from pydantic import BaseModel, ValidationError

from services.ingest.models import ImportIn, unknown_fields
from shared.errors import Problem, field_errors
from shared.events import JobWarning
from shared.events.jobs import Depot, JobSpec, RequestedStop, TimeWindow


def new_job_id() -> str:
    return "job_" + uuid.uuid4().hex[:24]


def parse_import(raw: Any, max_stops: int) -> tuple[ImportIn, list[JobWarning]]:
    """The validated import and its warnings, or a 422 problem listing every bad field."""
    if not isinstance(raw, dict):
        raise Problem(
            422,
            "validation_failed",
            "The request body must be a JSON object.",
            errors=[{"pointer": "", "reason": "expected an object", "type": "object_type"}],
        )
    errors: list[dict[str, str]] = []
    stops = raw.get("stops")
    if isinstance(stops, list) and len(stops) > max_stops:
        raise Problem(
            422,
            "too_many_stops",
            f"A job may have at most {max_stops} stops.",
            errors=[{"pointer": "/stops", "reason": f"{len(stops)} stops, limit {max_stops}", "type": "too_long"}],
            max_stops=max_stops,
        )
    try:
        model = ImportIn.model_validate(raw)
    except ValidationError as exc:
        errors = field_errors(exc.errors(include_url=False))
        raise Problem(422, "validation_failed", "The import has invalid fields.", errors=errors) from None
    seen: dict[str, int] = {}
    for index, stop in enumerate(model.stops):
        if stop.external_stop_id in seen:
            errors.append(
                {
                    "pointer": f"/stops/{index}/external_stop_id",
                    "type": "duplicate",
                    "reason": f"duplicates /stops/{seen[stop.external_stop_id]}/external_stop_id",
                }
            )
        seen.setdefault(stop.external_stop_id, index)
    if errors:
        raise Problem(422, "validation_failed", "The import has invalid fields.", errors=errors)
    warnings = [
        JobWarning(code="UNKNOWN_FIELD", message=f"{pointer} is not part of the import contract and was ignored")
        for pointer in unknown_fields(model)
    ]
    return model, warnings


def _contract(model: ImportIn) -> dict[str, Any]:
    """The import's contract fields only, in a canonical form (unknown fields do not count)."""

    def strip(value: Any) -> Any:
        if isinstance(value, BaseModel):
            return {k: strip(getattr(value, k)) for k in type(value).model_fields if getattr(value, k) is not None}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(model)


def payload_hash(model: ImportIn) -> str:
    """Identical imports hash alike, whatever their key order, spacing or unknown fields."""
    canonical = json.dumps(_contract(model), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def job_spec(model: ImportIn, job_id: str, digest: str) -> JobSpec:
    """The job as the pipeline carries it, each stop with its own stop_id."""
    stops = tuple(
        RequestedStop(
            stop_id=f"{job_id}.{i + 1}",
            external_stop_id=s.external_stop_id,
            address=s.address,
            label=s.label,
            parcel_count=s.parcel_count,
            lat=s.lat,
            lng=s.lng,
            time_window=TimeWindow(start=s.time_window.start, end=s.time_window.end) if s.time_window else None,
            service_minutes=s.service_minutes,
            notes=s.notes,
            phone=s.phone,
            email=str(s.email) if s.email else None,
        )
        for i, s in enumerate(model.stops)
    )
    depot = Depot(address=model.depot.address, lat=model.depot.lat, lng=model.depot.lng) if model.depot else None
    return JobSpec(
        external_job_id=model.external_job_id,
        title=model.title,
        driver_email=str(model.driver_email).lower() if model.driver_email else None,
        stops=stops,
        depot=depot,
        return_to_depot=model.return_to_depot,
        start_time=model.start_time,
        vehicle_capacity=model.vehicle_capacity,
        payload_hash=digest,
    )
