"""Erasure: the jobs and organizations erased (no personal field, only that they were), and each organization's
job retention as the auth service announced it.

Revision ID: 0006 (after 0005, fleet routes)
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "status_erased_jobs",
        sa.Column("job_id", sa.String(), primary_key=True),
        sa.Column("org_id", sa.String(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
    )
    op.create_index("ix_status_erased_jobs_org_id", "status_erased_jobs", ["org_id"])
    op.create_table(
        "status_erased_orgs",
        sa.Column("org_id", sa.String(), primary_key=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "status_org_retention",
        sa.Column("org_id", sa.String(), primary_key=True),
        sa.Column("job_retention_days", sa.Float()),
    )


def downgrade() -> None:
    op.drop_table("status_org_retention")
    op.drop_table("status_erased_orgs")
    op.drop_table("status_erased_jobs")
