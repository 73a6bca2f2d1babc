"""Job versions (the ETag), the spec version of updates by re-import, cancellation, where the
depot was placed and each stop's service time (a re-plan hands both to the optimizer).

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("status_jobs") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("spec_version", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("cancellation", sa.JSON()))
        batch.add_column(sa.Column("depot", sa.JSON()))
    with op.batch_alter_table("status_stops") as batch:
        batch.add_column(sa.Column("service_minutes", sa.Float()))


def downgrade() -> None:
    with op.batch_alter_table("status_stops") as batch:
        batch.drop_column("service_minutes")
    with op.batch_alter_table("status_jobs") as batch:
        for column in ("depot", "cancellation", "spec_version", "version"):
            batch.drop_column(column)
