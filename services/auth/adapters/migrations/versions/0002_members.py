"""Console members (Argon2id password hashes, set-up link digests) and the organization's activity.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "auth_members",
        sa.Column("member_id", sa.String(), primary_key=True),
        sa.Column("org_id", sa.String(), sa.ForeignKey("auth_organizations.org_id"), nullable=False),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String()),
        sa.Column("setup_digest", sa.String()),
        sa.Column("setup_expires_at", sa.DateTime()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_auth_members_org_id", "auth_members", ["org_id"])
    op.create_index("ix_auth_members_email", "auth_members", ["email"], unique=True)
    op.create_index("ix_auth_members_setup_digest", "auth_members", ["setup_digest"])
    op.create_table(
        "auth_audit",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("org_id", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("actor", sa.String()),
        sa.Column("subject", sa.String(), nullable=False),
    )
    op.create_index("ix_auth_audit_org_id", "auth_audit", ["org_id"])


def downgrade() -> None:
    op.drop_table("auth_audit")
    op.drop_table("auth_members")
