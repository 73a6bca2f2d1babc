"""Import use-cases on typed values: validate and fingerprint an import, rate-limit its sender, and
turn it into exactly one job per (organization, external_job_id), answered with its outcome."""

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from services.ingest.adapters import JobHeads, Lanes, Outcomes, Reservation, Reservations, replayed_body
from services.ingest.metrics import LANE_PUBLISHED, RATE_LIMITED
from services.ingest.models import ImportIn, fleet_errors, has_unknown, unknown_fields
from shared import logs, ratelimit
from shared.errors import Problem, field_errors
from shared.events import Event, ImportRequested, JobWarning
from shared.events.jobs import Depot, JobSpec, Lane, RequestedStop, TimeWindow, VehicleSpec
from shared.http import publish_or_unavailable
from shared.pii import DataKeys
from shared.ratelimit import RateLimiter
from shared.vocabulary import JobStatus, WarningCode

log = logging.getLogger(__name__)


def new_job_id() -> str:
    """A job's id: a UUID, as the public docs show it (ids of older jobs, `job_…`, keep working)."""
    return str(uuid.uuid4())


def import_event_id(job_id: str, digest: str) -> uuid.UUID:
    """One job's import of one body is always the same event: a retry after a publish that timed
    out but reached Kafka after all (a broker failing over) then carries the same id, which every
    stage downstream recognises as a redelivery, instead of starting a second chain of events."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"routemate:import:{job_id}:{digest}")


def update_event_id(job_id: str, spec_version: int, digest: str, base_version: int) -> uuid.UUID:
    """The same for an update by re-import: one job's spec of one body from one version is always
    the same event. The spec is in it (a job updated back to an earlier body is a new spec, not a
    redelivery), and so is the version it applies onto: a retry made from a newer version (one
    the projection refused, its version stale) is a new attempt, not the refused one again."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"routemate:update:{job_id}:{spec_version}:{digest}:{base_version}")


def validated_import(body: bytes) -> ImportIn | None:
    """The import straight from its JSON bytes (pydantic's own parser: no Python dict in between,
    one pass), when that is certainly what the general path (shared.inputs.parse_json, then
    parse_import) would make of it: a valid import, no escaped NUL anywhere (which the general path
    refuses with a 400), and no field outside the contract (unknown fields may nest anything, and
    the general path bounds their depth). None otherwise, and the general path answers, with its
    problems exactly as before."""
    if b"\\u0000" in body:
        return None
    try:
        model = ImportIn.model_validate_json(body)
    except ValidationError:
        return None
    return None if has_unknown(model) else model


def parse_import(raw: Any, max_stops: int) -> tuple[ImportIn, list[JobWarning]]:
    """The validated import and its warnings, or a 422 problem listing every bad field. `raw` is
    the JSON body, or the import validated_import() already made of it."""
    if isinstance(raw, ImportIn):
        return _checked(raw, max_stops), _warnings(raw)
    if not isinstance(raw, dict):
        raise Problem(
            422,
            "validation_failed",
            "The request body must be a JSON object.",
            errors=[{"pointer": "", "reason": "expected an object", "type": "object_type"}],
        )
    stops = raw.get("stops")
    if isinstance(stops, list):
        _stop_count(len(stops), max_stops)
    try:
        model = ImportIn.model_validate(raw)
    except ValidationError as exc:
        errors = field_errors(exc.errors(include_url=False))
        raise Problem(422, "validation_failed", "The import has invalid fields.", errors=errors) from None
    return _checked(model, max_stops), _warnings(model)


def _warnings(model: ImportIn) -> list[JobWarning]:
    return [
        JobWarning(
            code=WarningCode.UNKNOWN_FIELD, message=f"{pointer} is not part of the import contract and was ignored"
        )
        for pointer in unknown_fields(model)
    ]


def _stop_count(stops: int, max_stops: int) -> None:
    if stops > max_stops:
        raise Problem(
            422,
            "too_many_stops",
            f"A job may have at most {max_stops} stops.",
            errors=[{"pointer": "/stops", "reason": f"{stops} stops, limit {max_stops}", "type": "too_long"}],
            max_stops=max_stops,
        )


def _checked(model: ImportIn, max_stops: int) -> ImportIn:
    """`model`, or a 422 problem: too many stops, or the rules across fields."""
    _stop_count(len(model.stops), max_stops)
    errors: list[dict[str, str]] = []
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
    errors += fleet_errors(model)
    if errors:
        raise Problem(422, "validation_failed", "The import has invalid fields.", errors=errors)
    return model


def _contract(value: Any) -> Any:
    """The import's contract fields only, in a canonical form (unknown fields do not count): a
    model's __dict__ holds its declared fields, its unknown ones are kept apart (model_extra)."""
    if isinstance(value, BaseModel):
        return {k: _contract(v) for k, v in value.__dict__.items() if v is not None}
    if isinstance(value, list):
        return [_contract(v) for v in value]
    return value


def payload_hash(model: ImportIn) -> str:
    """Identical imports hash alike, whatever their key order, spacing or unknown fields (the same
    digest for the same body in every release: reservations made before an upgrade keep matching)."""
    canonical = json.dumps(_contract(model), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def job_spec(model: ImportIn, job_id: str, digest: str, spec_version: int = 1) -> JobSpec:
    """The job as the pipeline carries it, each stop with its own stop_id (an update's new stops
    get ids of their own spec, so they never take an existing stop's id)."""
    prefix = job_id if spec_version == 1 else f"{job_id}.{spec_version}"
    stops = tuple(
        RequestedStop(
            stop_id=f"{prefix}.{i + 1}",
            external_stop_id=s.external_stop_id,
            address=s.address,
            label=s.label,
            parcel_count=s.parcel_count,
            lat=s.lat,
            lng=s.lng,
            time_window=_window(s.time_window) if s.time_window else None,
            service_minutes=s.service_minutes,
            notes=s.notes,
            phone=s.phone,
            email=str(s.email) if s.email else None,
            time_windows=tuple(_window(w) for w in s.time_windows or ()),
            skills=tuple(s.skills or ()),
            priority=s.priority or 0,
        )
        for i, s in enumerate(model.stops)
    )
    depot = _place(model.depot)
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
        vehicles=tuple(_vehicle(v) for v in model.vehicles or ()),
    )


def _window(window: Any) -> TimeWindow:
    return TimeWindow(start=window.start, end=window.end)


def _place(place: Any) -> Depot | None:
    return Depot(address=place.address, lat=place.lat, lng=place.lng) if place else None


def _vehicle(v: Any) -> VehicleSpec:
    return VehicleSpec(
        driver_email=str(v.driver_email).lower(),
        capacity=v.capacity,
        shift_start=v.shift_start,
        shift_end=v.shift_end,
        start=_place(v.start),
        end=_place(v.end),
        max_stops=v.max_stops,
        max_duration_minutes=v.max_duration_minutes,
        skills=tuple(v.skills or ()),
    )


class Bus(Protocol):
    async def publish(self, event: Event) -> None: ...


@dataclass(frozen=True)
class ImportJob:
    """One POST of an import: who sent it, its JSON body, and whether they would rather not wait."""

    org_id: str
    integration_id: str
    body: Any
    respond_async: bool = False
    if_match: str | None = None  # an update by re-import of the job this version (ETag) names


@dataclass(frozen=True)
class Accepted:
    """Kafka has the job, its outcome is not known yet (202)."""

    job_id: str
    external_job_id: str
    status: JobStatus
    replayed: bool


@dataclass(frozen=True)
class Settled:
    """The job's public view as it settled (201; 200 for a replay)."""

    job_id: str
    view: dict[str, Any]
    replayed: bool
    updated: bool = False  # an update by re-import (200, not 201)


ImportAnswer = Accepted | Settled


@dataclass(frozen=True)
class ImportDependencies:
    """What importing a job needs: the reservations, the outcomes, the bus, the lanes, and the limits."""

    reservations: Reservations
    outcomes: Outcomes
    bus: Bus
    lanes: Lanes
    max_stops: int
    publish_timeout_s: float
    wait_s: float
    clock: Callable[[], float] = field(default=time.time)
    heads: JobHeads | None = None  # the jobs' heads, for updates by re-import
    data_keys: DataKeys | None = None  # the bus's data keys: a new job's is made with its reservation


def unavailable(what: str) -> Problem:
    return Problem(
        503,
        "dependency_unavailable",
        f"{what} is unavailable; nothing was accepted, retry shortly.",
        headers={"Retry-After": "5"},
    )


async def admit(limiter: RateLimiter, integration_id: str, epoch: int | None = None) -> dict[str, str]:
    """The RateLimit-* headers of one more import, or a 429 problem when the integration is over its
    rate; with `epoch` (its token's), a 401 problem when the integration's tokens were revoked since."""
    from shared.tokens import client_epoch_key  # here: `routemate optimize` imports this module without FastAPI

    return await ratelimit.admit(
        limiter,
        integration_id,
        "Too many imports for this integration; slow down.",
        RATE_LIMITED.inc,
        epoch=None if epoch is None else (client_epoch_key(integration_id), epoch),
    )


async def import_job(command: ImportJob, deps: ImportDependencies) -> ImportAnswer:
    """Validate, reserve the external id, publish `ImportRequested` once, then wait (bounded) for the route.

    The same import again (same organization, external_job_id and body) is a replay: it never
    makes a second job, and answers with the job as it settled, as the first answer did
    (Stripe-style idempotent replay); its Location points at the jobs endpoint for the current state.
    """
    model, warnings = parse_import(command.body, deps.max_stops)
    digest = payload_hash(model)
    key = Reservations.key(command.org_id, model.external_job_id)
    try:
        fresh = new_job_id()
        job_id, existing, lane = await _reserve(deps, command.org_id, key, fresh, digest)
        if existing is None:
            return await _publish(deps, command, model, warnings, key, job_id, digest, lane, again=job_id != fresh)
        if digest != await _replaying_body(deps, command.org_id, key, existing):
            raise Problem(
                409,
                "idempotency_conflict",
                f"external_job_id {model.external_job_id!r} was already imported with a different "
                "body; use a new external_job_id to import a different job.",
                job_id=existing.job_id,
                external_job_id=model.external_job_id,
            )
        return await replay(deps, command, existing.job_id, model.external_job_id)
    except (RedisError, OSError):
        raise unavailable("The idempotency store") from None


async def _replaying_body(deps: ImportDependencies, org_id: str, key: str, existing: Reservation) -> str:
    """The body whose import again replays the job: its reservation's, for a job never updated (no
    more Redis reads); for an updated one, as adapters.replayed_body tells from its head and its
    record of updates (the reservation may name an async update the projection refused). Then the
    reservation is corrected to it (best effort): the head lives a day, the reservation a week."""
    if existing.spec_version == 1 or deps.heads is None:
        return existing.payload_hash
    head = await deps.heads.get(existing.job_id)
    if head is None or head.org_id != org_id:
        return existing.payload_hash
    body = replayed_body(existing, head, await deps.reservations.attempts(key, existing.job_id))
    if body != existing.payload_hash:
        await best_effort(deps.reservations.correct(key, existing, body, head.spec_version))
    return body


async def best_effort(write: Awaitable[Any]) -> None:
    """A Redis write that the answer does not depend on: logged when it fails, never a 503."""
    try:
        await write
    except (RedisError, OSError) as exc:
        log.warning("could not record the import's progress (%s: %s)", type(exc).__name__, exc)


async def _reserve(
    deps: ImportDependencies, org_id: str, key: str, job_id: str, digest: str
) -> tuple[str, Reservation | None, Lane | None]:
    """(the job_id to publish under, None, its lane if already admitted) once this import may
    publish; else (_, the reservation to answer from, None). A new import's reservation, lane and
    data key take one round trip (Reservations.reserve_new)."""
    patience = deps.publish_timeout_s + 2
    deadline = deps.clock() + patience
    existing, lane = await deps.reservations.reserve_new(key, job_id, digest, org_id, deps.lanes, deps.data_keys)
    while existing is not None and existing.payload_hash == digest and not existing.accepted:
        if deps.clock() - existing.since > patience:
            # its publisher failed or died: publish again under its job_id, so never two jobs
            await deps.reservations.take_over(key, existing.job_id, digest)
            return existing.job_id, None, None
        if deps.clock() > deadline:
            break
        await asyncio.sleep(0.05)  # a concurrent duplicate is publishing: wait for its answer
        existing = await deps.reservations.get(key)
        if existing is None:
            existing = await deps.reservations.reserve(key, job_id, digest)
    return job_id, existing, lane


async def _publish(
    deps: ImportDependencies,
    command: ImportJob,
    model: ImportIn,
    warnings: list[JobWarning],
    key: str,
    job_id: str,
    digest: str,
    lane: Lane | None = None,
    again: bool = False,
) -> ImportAnswer:
    """Publish the import under `job_id`, in its organization's lane (`lane` when its reservation
    already admitted it); accepted only once Kafka acknowledged it.

    `again`: the job_id of an earlier attempt whose publish failed. Failed here means its ack did
    not come in time (a broker outage): the producer may still have delivered it once the broker
    was back, and the job settled before this attempt. The stages then take this event as the
    duplicate it is and nothing settles again, so its kept outcome is the answer, not a wait."""
    logs.job_id.set(job_id)
    if lane is None:
        lane = await deps.lanes.admit(command.org_id, job_id)
    event = ImportRequested(
        event_id=import_event_id(job_id, digest),
        lane=lane,
        org_id=command.org_id,
        job_id=job_id,
        integration_id=command.integration_id,
        correlation_id=logs.correlation_id.get(),
        job=job_spec(model, job_id, digest),
        warnings=tuple(warnings),
    )
    future = deps.outcomes.expect(job_id)  # before publishing, so a fast outcome is not missed
    try:
        await publish_or_unavailable(deps.bus, event, deps.publish_timeout_s, "The import")
    except Problem:
        deps.outcomes.forget(job_id, future)
        await deps.lanes.release(command.org_id, job_id)
        await deps.reservations.publish_failed(key, job_id, digest)
        raise
    await deps.reservations.accept(key, job_id, digest)
    LANE_PUBLISHED.labels(lane).inc()
    log.info("import accepted with %d stops in the %s lane", len(model.stops), lane)
    if again and not command.respond_async:
        try:
            kept = await deps.outcomes.kept(job_id)
        except (RedisError, OSError):  # accepted already: wait for the outcome as any import does
            kept = None
        if kept is not None and kept.org_id == command.org_id:
            deps.outcomes.forget(job_id, future)
            # admitted again above, but it settled already: no settling will take it off again
            await deps.lanes.release(command.org_id, job_id)
            return Settled(job_id, kept.job, replayed=False)
    return await _answer(deps, command, job_id, model.external_job_id, future, replayed=False)


async def replay(deps: ImportDependencies, command: ImportJob, job_id: str, external_job_id: str) -> ImportAnswer:
    """The same import again: the same job as it settled (the status service keeps that), never a second job."""
    future = deps.outcomes.expect(job_id)  # before reading, so an outcome settling meanwhile is not missed
    try:
        kept = await deps.outcomes.kept(job_id)
    except BaseException:
        deps.outcomes.forget(job_id, future)
        raise
    if kept is not None and kept.org_id == command.org_id:  # another organization's outcome is never shown
        deps.outcomes.forget(job_id, future)
        return Settled(job_id, kept.job, replayed=True)
    return await _answer(deps, command, job_id, external_job_id, future, replayed=True)


async def _answer(
    deps: ImportDependencies,
    command: ImportJob,
    job_id: str,
    external_job_id: str,
    future: "asyncio.Future[bytes]",
    replayed: bool,
) -> ImportAnswer:
    """At once when the caller prefers not to wait; otherwise the outcome if it comes in time."""
    if command.respond_async:
        deps.outcomes.forget(job_id, future)
        return Accepted(job_id, external_job_id, JobStatus.PENDING, replayed)
    settled = await deps.outcomes.wait(job_id, future, deps.wait_s)
    if settled is None:
        return Accepted(job_id, external_job_id, JobStatus.PROCESSING, replayed)
    return Settled(job_id, settled.job, replayed)
