"""The read model: jobs, stops, the driver directory and the applied-events ledger.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "status_jobs",
        sa.Column("job_id", sa.String(), primary_key=True),
        sa.Column("org_id", sa.String(), nullable=False, index=True),
        sa.Column("external_job_id", sa.String(), index=True),
        sa.Column("title", sa.String()),
        sa.Column("driver_email", sa.String(), index=True),
        sa.Column("driver_name", sa.String()),
        sa.Column("driver_assigned", sa.Boolean()),
        sa.Column("status", sa.String(), nullable=False, index=True),
        sa.Column("imported", sa.Boolean(), nullable=False),
        sa.Column("routed", sa.Boolean(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True)),
        sa.Column("start_time", sa.DateTime(timezone=True)),
        sa.Column("optimization", sa.JSON()),
        sa.Column("warnings", sa.JSON()),
        sa.Column("failure", sa.JSON()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_index("ix_status_jobs_org_created", "status_jobs", ["org_id", "created_at", "job_id"])
    op.create_table(
        "status_stops",
        sa.Column("job_id", sa.String(), primary_key=True),
        sa.Column("stop_id", sa.String(), primary_key=True),
        sa.Column("external_stop_id", sa.String(), nullable=False, index=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("address", sa.String()),
        sa.Column("label", sa.String()),
        sa.Column("parcel_count", sa.Integer(), nullable=False),
        sa.Column("time_window", sa.JSON()),
        sa.Column("lat", sa.Float()),
        sa.Column("lng", sa.Float()),
        sa.Column("precision", sa.String()),
        sa.Column("provider", sa.String()),
        sa.Column("sequence", sa.Integer()),
        sa.Column("leg_distance_km", sa.Float()),
        sa.Column("leg_duration_minutes", sa.Float()),
        sa.Column("eta", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.String()),
        sa.Column("notes", sa.String()),
        sa.Column("proof", sa.JSON()),
    )
    op.create_table(
        "status_drivers",
        sa.Column("org_id", sa.String(), primary_key=True),
        sa.Column("email", sa.String(), primary_key=True),
        sa.Column("name", sa.String()),
        sa.Column("active", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "status_applied_events",
        sa.Column("event_id", sa.String(), primary_key=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("status_applied_events", "status_drivers", "status_stops", "status_jobs"):
        op.drop_table(table)
