"""Webhooks carry the job's own version (its ETag): the outbox's separate change counter goes.

Revision ID: 0004 (after 0003, webhook outbox)
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.drop_table("status_job_change_counts")


def downgrade() -> None:
    op.create_table(
        "status_job_change_counts",
        sa.Column("job_id", sa.String(), primary_key=True),
        sa.Column("changes", sa.Integer(), nullable=False),
    )
