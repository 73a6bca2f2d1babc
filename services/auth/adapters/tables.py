"""Auth tables. Rows stay inside the service; the API and events have their own models."""

from datetime import datetime

from sqlmodel import Field, SQLModel


class OrganizationRow(SQLModel, table=True):
    __tablename__ = "auth_organizations"
    org_id: str = Field(primary_key=True)
    name: str = Field(index=True, unique=True)
    created_at: datetime


class IntegrationRow(SQLModel, table=True):
    __tablename__ = "auth_integrations"
    client_id: str = Field(primary_key=True)
    org_id: str = Field(index=True, foreign_key="auth_organizations.org_id")
    name: str
    secret_hash: str
    previous_secret_hash: str | None = None
    previous_valid_until: datetime | None = None
    created_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None


class DriverRow(SQLModel, table=True):
    __tablename__ = "auth_drivers"
    org_id: str = Field(primary_key=True, foreign_key="auth_organizations.org_id")
    email: str = Field(primary_key=True)
    name: str | None = None
    active: bool = True
    created_at: datetime


class MemberRow(SQLModel, table=True):
    """A console member: one organization, one role; the password as an Argon2id hash, the
    pending set-up link as a SHA-256 digest (the link itself is shown once, never stored)."""

    __tablename__ = "auth_members"
    member_id: str = Field(primary_key=True)
    org_id: str = Field(index=True, foreign_key="auth_organizations.org_id")
    email: str = Field(index=True, unique=True)
    role: str
    password_hash: str | None = None
    setup_digest: str | None = Field(default=None, index=True)
    setup_expires_at: datetime | None = None
    created_at: datetime


class AuditRow(SQLModel, table=True):
    """The organization's activity, one row per auth event the console shows (no token issues)."""

    __tablename__ = "auth_audit"
    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(index=True)
    at: datetime
    event_type: str
    actor: str | None = None
    subject: str
