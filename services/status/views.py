"""Read-model rows -> the public jobs shape (the same shape the import call answers with)."""

from datetime import datetime
from typing import Any

from services.status.adapters.tables import JobRow, StopRow
from shared.vocabulary import StopStatus, as_utc


def iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat().replace("+00:00", "Z") if value else None


def stop_view(row: StopRow) -> dict[str, Any]:
    return {
        "external_stop_id": row.external_stop_id,
        "sequence": row.sequence,
        "status": row.status,
        "address": row.address,
        "label": row.label,
        "parcel_count": row.parcel_count,
        "lat": row.lat,
        "lng": row.lng,
        "geocode_precision": row.precision,
        "geocode_provider": row.provider,
        "eta": iso(row.eta),
        "distance_from_previous_km": row.leg_distance_km,
        "duration_from_previous_minutes": row.leg_duration_minutes,
        "time_window": row.time_window,
        "status_at": iso(row.status_at),
        "reason": row.reason,
        "notes": row.notes,
        "proof_of_delivery": row.proof,
    }


def status_counts(stops: list[StopRow]) -> dict[str, int]:
    """How many stops are in each stop status (every status present, zero or not)."""
    counts = dict.fromkeys(StopStatus, 0)
    for row in stops:
        counts[row.status] = counts.get(row.status, 0) + 1
    return {str(status): count for status, count in counts.items()}


def route_order(stops: list[StopRow]) -> list[StopRow]:
    """Routed stops in visiting order, then the rest in the order they were imported."""
    return sorted(stops, key=lambda r: (r.sequence is None, r.sequence or 0, r.position))


def job_view(job: JobRow, stops: list[StopRow]) -> dict[str, Any]:
    """The public shape of one job, as the jobs endpoint and the import call answer it."""
    ordered = route_order(stops)
    optimization = None
    if job.optimization:
        optimization = {
            "total_distance_km": job.optimization["total_distance_km"],
            "total_duration_minutes": job.optimization["total_duration_minutes"],
            "solver": job.optimization.get("solver"),
            "matrix_provider": job.optimization.get("matrix_provider"),
        }
    return {
        "job_id": job.job_id,
        "external_job_id": job.external_job_id,
        "title": job.title,
        "status": job.status,
        "driver": ({"email": job.driver_email, "name": job.driver_name} if job.driver_assigned else None),
        "driver_email": job.driver_email,
        "stop_count": len(stops),
        "status_counts": status_counts(stops),
        "optimization": optimization,
        "stops": [stop_view(r) for r in ordered if r.status != StopStatus.UNROUTABLE],
        "unrouted_stops": [
            {"external_stop_id": r.external_stop_id, "reason": r.reason, "address": r.address}
            for r in ordered
            if r.status == StopStatus.UNROUTABLE
        ],
        "warnings": [
            {"code": w["code"], "external_stop_id": w.get("external_stop_id"), "message": w["message"]}
            for w in job.warnings
        ],
        "failure": job.failure,
        "start_time": iso(job.start_time),
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
    }
