"""Refused updates: the specs of a job's updates the projection refused, whose geocodings and
routes (the stages make them all the same) it then ignores.

Revision ID: 0007 (after 0006, erasure)
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    with op.batch_alter_table("status_jobs") as batch:
        batch.add_column(sa.Column("refused_specs", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("status_jobs") as batch:
        batch.drop_column("refused_specs")
