"""Redis pub/sub channels between services (Kafka carries the events; these carry only nudges)."""

import hashlib
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

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


def inflight_key(org_id: str) -> str:
    """The organization's jobs in flight, a sorted set of job_id by the time ingest admitted them:
    ingest adds a job before it publishes it (and picks its lane from its rank), status removes
    it when the job settles."""
    return f"rm:inflight:{org_id}"


def reservation_key(org_id: str, external_job_id: str) -> str:
    """Ingest's idempotency reservation of an external_job_id (which job it made, the body's hash);
    erasing the job deletes it, so the external id may be imported afresh."""
    return f"rm:idem:{org_id}:{hashlib.sha256(external_job_id.encode()).hexdigest()}"
