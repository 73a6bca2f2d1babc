"""Redis pub/sub channels between services (Kafka carries the events; these carry only nudges)."""

import hashlib
import zlib
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.pii import BLOB, open_bytes, seal_bytes

# status -> every ingest replica: a job settled; the message carries its public view.
JOB_OUTCOME = "rm:job-outcome"


class JobSettled(BaseModel):
    """The message on JOB_OUTCOME: which job of which organization settled, and its public view.

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
# stays JSON: nothing keeps it.
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
