"""Read-model rows -> the public jobs shape (the same shape the import call answers with)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.channels import JobHead
from shared.vocabulary import FINISHED_STOP, StopStatus, as_utc

if TYPE_CHECKING:  # views read rows by attribute only: `routemate optimize` hands in plain ones, without SQLAlchemy
    from services.status.adapters.tables import JobRow, StopRow


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
        "time_windows": row.time_windows,
        "skills": row.skills,
        "priority": row.priority,
        "vehicle": row.vehicle,
        "driver_email": row.driver_email,
        "route_sequence": row.route_sequence,
    }


def status_counts(stops: list[StopRow]) -> dict[str, int]:
    """How many stops are in each stop status; only the statuses present (as the public docs show)."""
    counts: dict[str, int] = {}
    for row in stops:
        counts[str(row.status)] = counts.get(str(row.status), 0) + 1
    return counts


def optimization_view(optimization: dict[str, Any] | None) -> dict[str, Any] | None:
    """Totals as the docs type them: whole minutes (rounded), and the seconds behind them."""
    if not optimization:
        return None
    seconds = optimization.get("total_duration_seconds")
    if seconds is None:  # a route recorded before the seconds were carried
        seconds = round(optimization["total_duration_minutes"] * 60)
    return {
        "total_distance_km": optimization["total_distance_km"],
        "total_duration_minutes": round(seconds / 60),
        "total_duration_seconds": int(seconds),
        "solver": optimization.get("solver"),
        "matrix_provider": optimization.get("matrix_provider"),
    }


def _totals(distance_km: float, seconds: int) -> dict[str, Any]:
    return {
        "total_distance_km": distance_km,
        "total_duration_minutes": round(seconds / 60),
        "total_duration_seconds": seconds,
    }


def routes_view(job: JobRow, ordered: list[StopRow], driver: str | None = None) -> list[dict[str, Any]]:
    """One route per vehicle that got stops (a routed single-driver job has one): its driver, its
    stops in visiting order, its totals and times. With `driver`, only that driver's route."""
    if job.routes:
        routes = [
            {
                "vehicle": r["vehicle"],
                "driver": {"email": r["driver_email"], "name": r.get("driver_name")},
                "stops": [s.external_stop_id for s in ordered if s.vehicle == r["vehicle"]],
                "parcels": r.get("parcels"),
                "optimization": _totals(r["total_distance_km"], int(r["total_duration_seconds"])),
                "start_time": iso(datetime.fromisoformat(r["start_time"])),
                "end_time": iso(datetime.fromisoformat(r["end_time"])),
            }
            for r in job.routes
        ]
    elif job.routed and job.optimization:
        on_route = [s for s in ordered if s.sequence is not None]
        totals = optimization_view(job.optimization)
        start = as_utc(job.start_time)
        routes = [
            {
                "vehicle": 0,
                "driver": {"email": job.driver_email, "name": job.driver_name} if job.driver_email else None,
                "stops": [s.external_stop_id for s in on_route],
                "parcels": sum(s.parcel_count for s in on_route),
                "optimization": _totals(totals["total_distance_km"], totals["total_duration_seconds"]),
                "start_time": iso(start),
                "end_time": iso(start + timedelta(seconds=totals["total_duration_seconds"])) if start else None,
            }
        ]
    else:
        return []
    if driver is not None:
        routes = [r for r in routes if r["driver"] and r["driver"]["email"] == driver]
    return routes


def etag(job: JobRow) -> str:
    """The job's strong entity tag: its version, quoted (RFC 9110)."""
    return f'"{job.version}"'


def route_order(stops: list[StopRow]) -> list[StopRow]:
    """Routed stops in visiting order, then the rest in the order they were imported."""
    return sorted(stops, key=lambda r: (r.sequence is None, r.sequence or 0, r.position))


def _warning_order(warning: dict[str, Any]) -> tuple[str, str, str]:
    """Job-wide warnings first, then by stop, code and text: the same job always reads the same,
    whatever order the stages' events arrived in (a rebuild, an ETag, a diff rely on it)."""
    return (warning.get("external_stop_id") or "", warning["code"], warning["message"])


def drives(job: JobRow, row: StopRow, driver: str) -> bool:
    """Whether this stop is on `driver`'s route."""
    return row.driver_email == driver if job.routes else job.driver_email == driver


def job_view(job: JobRow, stops: list[StopRow], driver: str | None = None) -> dict[str, Any]:
    """The public shape of one job, as the jobs endpoint and the import call answer it. With
    `driver` (the jobs list's ?driver=), `routes` and `stops` hold only that driver's route."""
    ordered = route_order(stops)
    mine = ordered if driver is None else [r for r in ordered if drives(job, r, driver)]
    return {
        "job_id": job.job_id,
        "external_job_id": job.external_job_id,
        "title": job.title,
        "status": job.status,
        "version": job.version,
        "spec_version": job.spec_version,
        "driver": ({"email": job.driver_email, "name": job.driver_name} if job.driver_assigned else None),
        "driver_email": job.driver_email,
        "stop_count": len(stops),
        "status_counts": status_counts(stops),
        "optimization": optimization_view(job.optimization),
        "stops": [stop_view(r) for r in mine if r.status != StopStatus.UNROUTABLE],
        "routes": routes_view(job, ordered, driver),
        "vehicles": job.vehicles,
        "unrouted_stops": [
            {"external_stop_id": r.external_stop_id, "reason": r.reason, "address": r.address}
            for r in ordered
            if r.status == StopStatus.UNROUTABLE
        ],
        "warnings": [
            {"code": w["code"], "external_stop_id": w.get("external_stop_id"), "message": w["message"]}
            for w in sorted(job.warnings, key=_warning_order)
        ],
        "failure": job.failure,
        "cancellation": job.cancellation,
        "start_time": iso(job.start_time),
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
    }


def finished_in_order(stops: list[StopRow]) -> list[StopRow]:
    """The finished stops, the last one finished last (the driver is there now)."""
    done = [row for row in stops if row.status in FINISHED_STOP]
    return sorted(done, key=lambda r: (iso(r.status_at) or "", r.sequence or 0))


def job_head(job: JobRow, stops: list[StopRow]) -> JobHead:
    """What ingest needs to take an update of this job by re-import."""
    finished = tuple(row.external_stop_id for row in finished_in_order(stops))
    return JobHead(
        org_id=job.org_id,
        version=job.version,
        spec_version=job.spec_version,
        status=job.status,
        finished=finished,
        updated_at=as_utc(job.updated_at),
    )
