"""Alembic environment for the status read model; run through services.status.adapters.schema.migrate."""

from alembic import context
from sqlmodel import SQLModel

from services.status.adapters.tables import JobRow  # noqa: F401 - registers the tables on the metadata

VERSION_TABLE = "status_alembic_version"
connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    version_table=VERSION_TABLE,
    include_object=lambda obj, name, kind, *_: kind != "table" or name.startswith("status_"),
)
with context.begin_transaction():
    context.run_migrations()
