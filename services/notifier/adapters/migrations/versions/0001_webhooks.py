"""Webhook endpoints, their deliveries and every attempt.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "notifier_endpoints",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("org_id", sa.String(), nullable=False, index=True),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("description", sa.String()),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(), nullable=False),
        sa.Column("old_secret", sa.String()),
        sa.Column("old_secret_until", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("disabled_reason", sa.String()),
        sa.Column("failing_since", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "notifier_deliveries",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(), nullable=False, unique=True),
        sa.Column("endpoint_id", sa.String(), nullable=False),
        sa.Column("org_id", sa.String(), nullable=False),
        sa.Column("change_id", sa.String(), nullable=False),
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("source_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String()),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("last_status_code", sa.Integer()),
        sa.Column("last_error", sa.String()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("endpoint_id", "change_id", name="uq_notifier_deliveries_endpoint_change"),
    )
    op.create_index("ix_notifier_deliveries_order", "notifier_deliveries", ["endpoint_id", "job_id", "status", "seq"])
    op.create_index("ix_notifier_deliveries_due", "notifier_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_notifier_deliveries_endpoint_seq", "notifier_deliveries", ["endpoint_id", "seq"])
    op.create_table(
        "notifier_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(), nullable=False, index=True),
        sa.Column("endpoint_id", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("error", sa.String()),
        sa.Column("response", sa.String()),
    )


def downgrade() -> None:
    for table in ("notifier_attempts", "notifier_deliveries", "notifier_endpoints"):
        op.drop_table(table)
