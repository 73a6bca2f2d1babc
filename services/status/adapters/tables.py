"""The read model's tables. Rows stay in the service; views map them to the public shape."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from shared.vocabulary import JobStatus, StopStatus


class JobRow(SQLModel, table=True):
    __tablename__ = "status_jobs"
    # The jobs page: one organization's jobs, newest first, continued after a cursor.
    __table_args__ = (Index("ix_status_jobs_org_created", "org_id", "created_at", "job_id"),)
    job_id: str = Field(primary_key=True)
    org_id: str = Field(index=True)
    external_job_id: str | None = Field(default=None, index=True)
    title: str | None = None
    driver_email: str | None = Field(default=None, index=True)
    driver_name: str | None = None
    driver_assigned: bool | None = None
    status: str = Field(default=JobStatus.PENDING, index=True)
    imported: bool = False
    routed: bool = False
    accepted_at: datetime | None = None
    start_time: datetime | None = None
    optimization: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    warnings: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    failure: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # Counts every change of the job's public view (its ETag); spec_version counts its imports.
    version: int = 0
    spec_version: int = 1
    cancellation: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    depot: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))  # where it was placed
    # Fleet jobs: the vehicles as imported, and one summary per vehicle route (its stops are the
    # stop rows with its `vehicle`).
    vehicles: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    routes: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    # The specs of updates the projection refused: their geocodings and routes, which the stages
    # make all the same (they never hear of the refusal), are not the job's and are ignored.
    refused_specs: list[int] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = Field(index=True)
    updated_at: datetime = Field(index=True)


class StopRow(SQLModel, table=True):
    __tablename__ = "status_stops"
    job_id: str = Field(primary_key=True)
    stop_id: str = Field(primary_key=True)
    external_stop_id: str = Field(index=True)
    position: int = 0
    address: str | None = None
    label: str | None = None
    parcel_count: int = 1
    service_minutes: float | None = None
    time_window: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    lat: float | None = None
    lng: float | None = None
    precision: str | None = None
    provider: str | None = None
    sequence: int | None = None
    leg_distance_km: float | None = None
    leg_duration_minutes: float | None = None
    eta: datetime | None = None
    status: str = StopStatus.PENDING
    status_at: datetime | None = None
    reason: str | None = None
    notes: str | None = None
    proof: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # Fleet jobs: whose route the stop is on, and where on it; the fleet's stop fields.
    vehicle: int | None = None
    driver_email: str | None = Field(default=None, index=True)
    route_sequence: int | None = None
    time_windows: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    skills: list[str] | None = Field(default=None, sa_column=Column(JSON))
    priority: int | None = None


class DriverRow(SQLModel, table=True):
    __tablename__ = "status_drivers"
    org_id: str = Field(primary_key=True)
    email: str = Field(primary_key=True)
    name: str | None = None
    active: bool = True


class AppliedEventRow(SQLModel, table=True):
    """Every event applied once: replays and redeliveries change nothing."""

    __tablename__ = "status_applied_events"
    event_id: str = Field(primary_key=True)
    applied_at: datetime


class OutboxRow(SQLModel, table=True):
    """A public change of a job, written in the projection's transaction; the relay publishes it
    (routemate.jobs.changes) and marks it sent. `seq` keeps the order the changes happened in."""

    __tablename__ = "status_outbox"
    # The relay's query: unsent rows in order; sent rows are pruned by age.
    __table_args__ = (Index("ix_status_outbox_pending", "sent_at", "seq"),)
    seq: int | None = Field(default=None, primary_key=True)
    change_id: str = Field(unique=True)
    org_id: str
    job_id: str
    change_type: str
    version: int
    occurred_at: datetime
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    sent_at: datetime | None = None


class ErasedJobRow(SQLModel, table=True):
    """A job that was erased: only that it was (no personal field), so an event of it arriving
    late, or replayed by a rebuild, brings nothing of it back."""

    __tablename__ = "status_erased_jobs"
    job_id: str = Field(primary_key=True)
    org_id: str = Field(index=True)
    erased_at: datetime
    reason: str


class OrgRetentionRow(SQLModel, table=True):
    """How long an organization's finished jobs are kept (None: for ever), as auth announced it."""

    __tablename__ = "status_org_retention"
    org_id: str = Field(primary_key=True)
    job_retention_days: float | None = None


class ErasedOrgRow(SQLModel, table=True):
    """An organization that was erased: an event of it arriving late brings nothing back."""

    __tablename__ = "status_erased_orgs"
    org_id: str = Field(primary_key=True)
    erased_at: datetime
