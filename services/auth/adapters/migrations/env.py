"""Alembic environment for the auth tables; run through services.auth.adapters.schema.migrate."""

from alembic import context
from sqlmodel import SQLModel

from services.auth.adapters.tables import MemberRow  # noqa: F401 - registers the tables on the metadata

VERSION_TABLE = "auth_alembic_version"
connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    version_table=VERSION_TABLE,
    include_object=lambda obj, name, kind, *_: kind != "table" or (name.startswith("auth_") and "alembic" not in name),
)
with context.begin_transaction():
    context.run_migrations()
