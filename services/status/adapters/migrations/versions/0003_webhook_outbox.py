"""The webhooks' transactional outbox: public job changes written with the projection's batch.

Revision ID: 0003 (after 0002, job versions)
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "status_outbox",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("change_id", sa.String(), nullable=False, unique=True),
        sa.Column("org_id", sa.String(), nullable=False),
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("change_type", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_status_outbox_pending", "status_outbox", ["sent_at", "seq"])
    op.create_table(
        "status_job_change_counts",
        sa.Column("job_id", sa.String(), primary_key=True),
        sa.Column("changes", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("status_job_change_counts")
    op.drop_table("status_outbox")
