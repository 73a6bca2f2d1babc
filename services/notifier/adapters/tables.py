"""The notifier's tables: endpoints, deliveries (one per change and endpoint) and their attempts."""

from datetime import datetime

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class EndpointRow(SQLModel, table=True):
    __tablename__ = "notifier_endpoints"
    id: str = Field(primary_key=True)
    org_id: str = Field(index=True)
    url: str
    description: str | None = None
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    secret: str  # AES-GCM ciphertext, never the secret itself
    old_secret: str | None = None  # the previous secret, signing too until old_secret_until
    old_secret_until: datetime | None = None
    status: str = "active"  # active | disabled
    disabled_reason: str | None = None
    failing_since: datetime | None = None
    created_at: datetime
    updated_at: datetime


class DeliveryRow(SQLModel, table=True):
    """One change (or test) to one endpoint; its body is fixed so every attempt sends the same bytes."""

    __tablename__ = "notifier_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "change_id", name="uq_notifier_deliveries_endpoint_change"),
        # The worker: the earliest pending delivery of each (endpoint, job), and what is due.
        Index("ix_notifier_deliveries_order", "endpoint_id", "job_id", "status", "seq"),
        Index("ix_notifier_deliveries_due", "status", "next_attempt_at"),
        # An endpoint's delivery log, newest first.
        Index("ix_notifier_deliveries_endpoint_seq", "endpoint_id", "seq"),
    )
    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True)
    endpoint_id: str
    org_id: str
    change_id: str  # the webhook-id: the same on every attempt and every redelivery
    job_id: str
    event_type: str
    body: str = Field(sa_column=Column(Text, nullable=False))
    source_at: datetime  # when the change happened (source event -> receipt latency)
    status: str = "pending"  # pending | succeeded | failed
    attempts: int = 0
    next_attempt_at: datetime
    lease_owner: str | None = None
    lease_until: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None


class AttemptRow(SQLModel, table=True):
    __tablename__ = "notifier_attempts"
    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(index=True)
    endpoint_id: str
    at: datetime
    status_code: int | None = None
    latency_ms: float
    error: str | None = None
    response: str | None = None  # the first 1 KiB of the answer
