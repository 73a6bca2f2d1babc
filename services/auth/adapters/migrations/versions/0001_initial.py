"""The auth tables as `create_all` made them before migrations: organizations, integrations, drivers.

A database made by that older code has these tables but no version table: `migrate` stamps it at
this revision instead of creating them again.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "auth_organizations",
        sa.Column("org_id", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_auth_organizations_name", "auth_organizations", ["name"], unique=True)
    op.create_table(
        "auth_integrations",
        sa.Column("client_id", sa.String(), primary_key=True),
        sa.Column("org_id", sa.String(), sa.ForeignKey("auth_organizations.org_id"), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("secret_hash", sa.String(), nullable=False),
        sa.Column("previous_secret_hash", sa.String()),
        sa.Column("previous_valid_until", sa.DateTime()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("rotated_at", sa.DateTime()),
        sa.Column("revoked_at", sa.DateTime()),
    )
    op.create_index("ix_auth_integrations_org_id", "auth_integrations", ["org_id"])
    op.create_table(
        "auth_drivers",
        sa.Column("org_id", sa.String(), sa.ForeignKey("auth_organizations.org_id"), primary_key=True),
        sa.Column("email", sa.String(), primary_key=True),
        sa.Column("name", sa.String()),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("auth_drivers", "auth_integrations", "auth_organizations"):
        op.drop_table(table)
