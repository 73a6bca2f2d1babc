"""Update by re-import: a changed body under the same external_job_id with `If-Match: "<version>"`
becomes the job's next spec, published under the same job_id.

Without If-Match a changed body stays a 409 (handlers.import_job), so a client's retry can never
change a job by accident. With it, the version must be the job's current one, as the status
service mirrors it in the job's head; the projection checks it once more when it applies the
update (a stop reported meanwhile makes it refuse, and the import answers 412 then too).
"""

import asyncio
import contextlib
import logging

from redis.exceptions import RedisError

from services.ingest.adapters import JobHeads, replayed_body
from services.ingest.handlers import (
    Accepted,
    ImportAnswer,
    ImportDependencies,
    ImportJob,
    Settled,
    best_effort,
    import_job,
    job_spec,
    parse_import,
    payload_hash,
    replay,
    unavailable,
    update_event_id,
)
from shared import logs
from shared.channels import JobHead, JobSettled
from shared.errors import Problem
from shared.events import ImportRequested
from shared.http import etag_matches, publish_or_unavailable
from shared.vocabulary import JobStatus

log = logging.getLogger(__name__)
NOT_UPDATABLE = frozenset({JobStatus.CANCELLED, JobStatus.COMPLETED})
# How long another body's update from the same version, not landed yet, holds this one back (412):
# far beyond a publish and its projection, short of keeping a job from updates when it never lands.
UNDER_WAY_S = 120


async def import_or_update(command: ImportJob, deps: ImportDependencies) -> ImportAnswer:
    """An import as before; with If-Match, an update of the job its external_job_id names."""
    if command.if_match is None:
        return await import_job(command, deps)
    model, warnings = parse_import(command.body, deps.max_stops)
    digest = payload_hash(model)
    key = deps.reservations.key(command.org_id, model.external_job_id)
    try:
        existing = await deps.reservations.get(key)
        if existing is None:
            raise _stale(None, f"There is no job with external_job_id {model.external_job_id!r} to update.")
        found = await (deps.heads or JobHeads(deps.reservations.redis)).get(existing.job_id)
        if (found is None or found.org_id != command.org_id) and existing.payload_hash == digest:
            return await replay(deps, command, existing.job_id, model.external_job_id)  # nothing to change
        head = _known(found, command.org_id)
        attempts = await deps.reservations.attempts(key, existing.job_id)
        replays = replayed_body(existing, head, attempts)
        if digest == replays == existing.payload_hash:
            return await replay(deps, command, existing.job_id, model.external_job_id)  # nothing to change
        mine = {spec: base for spec, (body, base, _) in attempts.items() if body == digest and spec > 1}
        if head.spec_version in mine:
            # An attempt of this very body is the job's spec: it reached Kafka, though this replica
            # never heard so (its publish timed out, or the request died after it). Answered as that
            # attempt would have been; the If-Match it was made from is stale now only because of it.
            spec = head.spec_version
            if existing.spec_version <= spec:  # a later update acknowledged since keeps the reservation
                await best_effort(deps.reservations.correct(key, existing, digest, spec))  # unless changed meanwhile
            log.info("update to spec %d found applied, though its publish was not acknowledged", spec)
            external = model.external_job_id
            return await _outcome(deps, command, existing.job_id, external, spec, key, existing.payload_hash, True)
        if digest == replays:  # the job's own body, the reservation naming an update that was refused
            await best_effort(deps.reservations.correct(key, existing, digest, head.spec_version))
            return await replay(deps, command, existing.job_id, model.external_job_id)
        if not etag_matches(command.if_match, _etag(head.version), weak=False):
            raise _stale(head, f"The job changed since that version; it is at version {head.version}.")
        if head.status in NOT_UPDATABLE:
            detail = f"The job is {head.status}; it cannot be updated."
            raise Problem(409, "illegal_transition", detail, job_id=existing.job_id, job_status=head.status)
        # This body onto this version went out before and has not landed (yet): the same event again
        # (both landing count once). Otherwise a spec after every attempt that may still land.
        again = next((spec for spec, base in mine.items() if spec > head.spec_version and base == head.version), 0)
        if not again and _under_way(attempts, digest, head, deps.reservations.clock()):
            raise _stale(head, "Another update of this version is under way; read the job again.")
        spec_version = again or max(existing.spec_version, head.spec_version, *attempts) + 1
        # A reservation at spec 1 holds the body the job was imported with (only imports write spec
        # 1): an update that finds spec 1's body unrecorded records it (replayed_body reads it).
        first = existing.payload_hash if existing.spec_version == 1 and 1 not in attempts else None
        if not await deps.reservations.claim_update(key, existing.job_id, spec_version, digest, head.version, first):
            raise _stale(head, "Another update of this version is under way; read the job again.")
        event = ImportRequested(
            event_id=update_event_id(existing.job_id, spec_version, digest, head.version),  # a retry's: a redelivery
            org_id=command.org_id,
            job_id=existing.job_id,
            integration_id=command.integration_id,
            correlation_id=logs.correlation_id.get(),
            job=job_spec(model, existing.job_id, digest, spec_version),
            warnings=tuple(warnings),
            spec_version=spec_version,
            base_version=head.version,
            keep=head.finished,
        )
        return await _publish(deps, command, event, key, existing.payload_hash, bool(again))
    except (RedisError, OSError):
        raise unavailable("The idempotency store") from None


def _under_way(attempts: dict[int, tuple[str, int, float]], digest: str, head: JobHead, now: float) -> bool:
    """Whether another body's update from this same version went out and has not landed: the two
    must not both go out (the projection would keep one and drop the other unannounced), so this
    one waits its turn (412). Only for UNDER_WAY_S: an attempt whose replica died with it in doubt
    never lands, and must not keep the job from being updated."""
    return any(
        body != digest and base == head.version and spec > head.spec_version and now - at < UNDER_WAY_S
        for spec, (body, base, at) in attempts.items()
    )


def _etag(version: int) -> str:
    return f'"{version}"'


def _stale(head: JobHead | None, detail: str) -> Problem:
    if head is None:
        return Problem(412, "precondition_failed", detail)
    return Problem(
        412,
        "precondition_failed",
        detail + " Read the job again and retry with its ETag.",
        headers={"ETag": _etag(head.version)},
        current_version=head.version,
    )


def _known(head: JobHead | None, org_id: str) -> JobHead:
    """The job's head, or a 412 problem when it is unknown."""
    if head is None or head.org_id != org_id:  # another organization's head is never read
        detail = (
            "The job's current version is not known yet (it may still be routing, or its record expired); "
            "read the job, then retry with its ETag."
        )
        raise Problem(412, "precondition_failed", detail)
    return head


async def _publish(
    deps: ImportDependencies,
    command: ImportJob,
    event: ImportRequested,
    key: str,
    previous_hash: str,
    again: bool = False,
) -> ImportAnswer:
    """Publish the update; then answer as an import does: its outcome in time (200), else 202.
    `again`: the same update as an earlier attempt in doubt, which may have settled already."""
    logs.job_id.set(event.job_id)
    future = deps.outcomes.expect(event.job_id)  # before publishing, so a fast outcome is not missed
    try:
        try:
            await publish_or_unavailable(deps.bus, event, deps.publish_timeout_s, "The update")
        except Problem as problem:
            # A 503 is "not acknowledged in time", not "not delivered": its spec stays its own.
            if problem.status != 503:
                await best_effort(deps.reservations.release_update(key, event.job_id, event.spec_version))
            raise
        # Accepted: what follows is best effort (a retry of this body finds it applied regardless).
        await best_effort(deps.reservations.updated(key, event.job_id, event.job.payload_hash, event.spec_version))
        log.info("update to spec %d accepted with %d stops", event.spec_version, len(event.job.stops))
        external = event.job.external_job_id
        spec = event.spec_version
        return await _outcome(deps, command, event.job_id, external, spec, key, previous_hash, again, future)
    finally:
        deps.outcomes.forget(event.job_id, future)


async def _outcome(
    deps: ImportDependencies,
    command: ImportJob,
    job_id: str,
    external_job_id: str,
    spec_version: int,
    key: str,
    previous_hash: str,
    settled_maybe: bool = False,
    future: "asyncio.Future[bytes] | None" = None,
) -> ImportAnswer:
    """An accepted update's answer: its outcome if it comes in time (200, or 412 when the
    projection refused it), else 202; at once (202) when the caller prefers not to wait.
    `settled_maybe`: an update that was in doubt, which may have settled before this request
    listened: the kept outcome is read first (best effort: without Redis, the wait). `future`: the
    waiter registered before the update was published (else one is registered here)."""
    future = future or deps.outcomes.expect(job_id)
    try:
        if command.respond_async:
            return Accepted(job_id, external_job_id, JobStatus.PROCESSING, replayed=False)
        settled: JobSettled | None = None
        if settled_maybe:
            with contextlib.suppress(RedisError, OSError):
                settled = await deps.outcomes.kept(job_id)
        deadline = deps.clock() + deps.wait_s
        while True:
            if settled is not None and (verdict := _verdict(settled, command.org_id, spec_version)) is not None:
                if verdict is False:
                    await best_effort(_put_back(deps, key, job_id, spec_version, previous_hash))
                    raise _stale(_as_head(settled), "The job changed before the update was applied; it was not.")
                return Settled(job_id, settled.job, replayed=False, updated=True)
            if (left := deadline - deps.clock()) <= 0:
                return Accepted(job_id, external_job_id, JobStatus.PROCESSING, replayed=False)
            settled = await deps.outcomes.wait(job_id, future, left)
            future = deps.outcomes.expect(job_id)  # an earlier outcome of the job: wait for ours
            if settled is None or _verdict(settled, command.org_id, spec_version) is None:
                # ours may have been announced while the one heard was opened (its key read), with
                # nobody here listening: status keeps each outcome before announcing it
                with contextlib.suppress(RedisError, OSError):
                    settled = await deps.outcomes.kept(job_id) or settled
            await asyncio.sleep(0)
    finally:
        deps.outcomes.forget(job_id, future)


async def _put_back(deps: ImportDependencies, key: str, job_id: str, spec_version: int, previous_hash: str) -> None:
    """After the projection refused the update `spec_version`: the reservation replays the body
    before it again, if it still names this update (compare-and-set: another update acknowledged
    meanwhile, or an erasure, keeps what it wrote)."""
    now = await deps.reservations.get(key)
    if now is not None and now.spec_version == spec_version and now.job_id == job_id:
        await deps.reservations.correct(key, now, previous_hash, spec_version)


def _verdict(settled: JobSettled, org_id: str, spec_version: int) -> bool | None:
    """True: our update is in the job; False: the projection refused it; None: not about it."""
    if settled.org_id != org_id:
        return None
    if settled.rejected_spec_version == spec_version:
        return False
    # Only this very spec: a later one settled means this one was dropped unannounced (stale
    # behind it), or has yet to be heard of; either way not "applied", so the wait goes on (202).
    return True if settled.job.get("spec_version", 1) == spec_version else None


def _as_head(settled: JobSettled) -> JobHead:
    job = settled.job
    return JobHead(org_id=settled.org_id, version=job.get("version", 0), status=job.get("status", ""))
