"""Redis pub/sub channels between services (Kafka carries the events; these carry only nudges)."""

import hashlib
import zlib
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

from shared.pii import BLOB, open_bytes, seal_bytes

# status -> every ingest replica: a job settled; the message carries its outcome sealed (announcement).
JOB_OUTCOME = "rm:job-outcome"


class JobSettled(BaseModel):
    """A settled job: which job of which organization, and its public view; on JOB_OUTCOME and at
    outcome_key, sealed under the job's data key (announcement, seal_outcome).

    `rejected_spec_version` names an update (by re-import) the projection refused because the
    job had changed since the client's If-Match: the import waiting for it answers 412."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    org_id: str
    job: dict[str, Any]
    rejected_spec_version: int | None = None


class JobHead(BaseModel):
    """What ingest needs to know of a job to take an update by re-import: its current version
    (the ETag), status, spec and the stops already finished (last finished last); and when its
    public view last changed, which a rebuild takes with the version (None: a head written before
    it was there)."""

    model_config = ConfigDict(frozen=True)

    org_id: str
    version: int
    spec_version: int = 1
    status: str
    finished: tuple[str, ...] = ()
    updated_at: datetime | None = None


def jobhead_key(job_id: str) -> str:
    """Where the status service mirrors a job's head after each committed projection batch."""
    return f"rm:jobhead:{job_id}"


def outcome_key(job_id: str) -> str:
    """Where the status service keeps a settled job's JobSettled message, so an idempotent replay
    of the import (on any ingest replica) answers from Redis instead of calling the status service."""
    return f"rm:outcome:{job_id}"


# A kept outcome is the job's whole public view: about 0.6 KB of JSON per stop, kept a day, most of
# the durable Redis' memory (README, sizing). zlib at level 1 keeps it at a sixth (11.7 KB -> 1.9 KB
# for 20 stops) for about 0.1 ms of the status service's CPU per settled job. The channel's message
# is the same sealed bytes, after the job's id (announcement).
OUTCOME_LEVEL = 1
OUTCOME_MAX_BYTES = 64 * 1024 * 1024  # unpacked; far above any view an event budget lets through


def pack_outcome(view_json: str | bytes) -> bytes:
    """A settled job's JSON, compressed (`seal_outcome` keeps it so, sealed)."""
    return zlib.compress(view_json.encode() if isinstance(view_json, str) else view_json, OUTCOME_LEVEL)


def seal_outcome(view_json: str | bytes, key: bytes, job_id: str) -> bytes:
    """A settled job's JSON as kept at `outcome_key`: compressed, then sealed under the job's data
    key. The view holds the job's personal fields (addresses, names, notes), and the durable Redis
    writes what it keeps to disk (its append-only file, its snapshots): kept in clear, a deleted
    outcome stayed readable there after the job's erasure; sealed, destroying the key erases it."""
    return seal_bytes(key, job_id, pack_outcome(view_json))


def open_outcome(kept: bytes | str | None, key: bytes | None, job_id: str) -> bytes | str | None:
    """What `seal_outcome` kept, as JSON again; None when there is none or the job's key is gone.
    An outcome kept before outcomes were sealed (they live a day) reads as `unpack_outcome` reads it."""
    if isinstance(kept, bytes) and kept.startswith(BLOB):
        return unpack_outcome(open_bytes(key, job_id, kept))
    return unpack_outcome(kept)


def unpack_outcome(kept: bytes | str | None) -> bytes | str | None:
    """What `pack_outcome` kept, as JSON again; JSON kept plain (before outcomes were packed) as it
    is; None for nothing kept or bytes that do not unpack (then they are not an outcome)."""
    if kept is None or isinstance(kept, str) or kept[:1] == b"{":
        return kept
    unpacker = zlib.decompressobj()
    try:
        view = unpacker.decompress(kept, OUTCOME_MAX_BYTES)
    except zlib.error:
        return None
    return view if unpacker.eof else None  # cut short, or over the bound: not a whole outcome


def inflight_key(org_id: str) -> str:
    """The organization's jobs in flight, a sorted set of job_id by the time ingest admitted them:
    ingest adds a job before it publishes it (and picks its lane from its rank), status removes
    it when the job settles."""
    return f"rm:inflight:{org_id}"


def reservation_key(org_id: str, external_job_id: str) -> str:
    """Ingest's idempotency reservation of an external_job_id (which job it made, the body's hash);
    erasing the job deletes it, so the external id may be imported afresh."""
    return f"rm:idem:{org_id}:{hashlib.sha256(external_job_id.encode()).hexdigest()}"


def announcement(job_id: str, sealed: bytes | None) -> bytes:
    """A settled job's message on JOB_OUTCOME: its id, a newline, then its outcome as status keeps
    it (seal_outcome), or nothing after the id for a job whose data key was gone (erased).

    Every ingest replica hears every settled job; only one holding an import of it opens the
    outcome, with the job's key. The channel carried the whole view in clear before (addresses,
    names, notes, about 12 KB for 20 stops) to every subscriber; now nothing personal crosses it
    readable, and a sixth of the bytes (the outcome is compressed)."""
    return job_id.encode() + b"\n" + (sealed or b"")


def announced(data: bytes | str) -> tuple[str, bytes] | None:
    """(job_id, the outcome: sealed, or b"" for none) of a JOB_OUTCOME message; a message of the
    release before (the JobSettled JSON itself, heard during a rolling upgrade) gives (its job_id,
    that JSON), which open_outcome reads as it is. None for anything else, an outcome after the id
    that is not sealed included."""
    raw = data.encode() if isinstance(data, str) else data
    if not isinstance(raw, bytes):
        return None
    if raw[:1] == b"{":
        try:
            job_id = orjson.loads(raw).get("job_id")
        except (orjson.JSONDecodeError, AttributeError):
            return None
        return (job_id, raw) if isinstance(job_id, str) else None
    job_id, newline, sealed = raw.partition(b"\n")
    if not newline or not job_id or (sealed and not sealed.startswith(BLOB)):
        return None  # not an announcement, or one whose outcome is not sealed (never sent so)
    try:
        return job_id.decode(), sealed
    except UnicodeDecodeError:
        return None
