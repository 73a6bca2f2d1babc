"""Fleet jobs: the job's vehicles and per-vehicle route summaries; per stop, the vehicle and driver
whose route it is on, its place on that route, and the fleet's stop fields (windows, skills, priority).

Revision ID: 0005 (after 0004, webhook versions)
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"

STOP_COLUMNS = ("vehicle", "driver_email", "route_sequence", "time_windows", "skills", "priority")


def upgrade() -> None:
    with op.batch_alter_table("status_jobs") as batch:
        batch.add_column(sa.Column("vehicles", sa.JSON()))
        batch.add_column(sa.Column("routes", sa.JSON()))
    with op.batch_alter_table("status_stops") as batch:
        batch.add_column(sa.Column("vehicle", sa.Integer()))
        batch.add_column(sa.Column("driver_email", sa.String()))
        batch.add_column(sa.Column("route_sequence", sa.Integer()))
        batch.add_column(sa.Column("time_windows", sa.JSON()))
        batch.add_column(sa.Column("skills", sa.JSON()))
        batch.add_column(sa.Column("priority", sa.Integer()))
        # ?driver=: the jobs a driver has a route in
        batch.create_index("ix_status_stops_driver_email", ["driver_email"])


def downgrade() -> None:
    with op.batch_alter_table("status_stops") as batch:
        batch.drop_index("ix_status_stops_driver_email")
        for column in STOP_COLUMNS:
            batch.drop_column(column)
    with op.batch_alter_table("status_jobs") as batch:
        batch.drop_column("routes")
        batch.drop_column("vehicles")
