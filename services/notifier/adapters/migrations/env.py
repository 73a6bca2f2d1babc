"""Alembic environment for the notifier's tables; run through services.notifier.adapters.schema.migrate."""

from alembic import context
from sqlmodel import SQLModel

from services.notifier.adapters.tables import EndpointRow  # noqa: F401 - registers the tables on the metadata

VERSION_TABLE = "notifier_alembic_version"
connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    version_table=VERSION_TABLE,
    include_object=lambda obj, name, kind, *_: kind != "table" or name.startswith("notifier_"),
)
with context.begin_transaction():
    context.run_migrations()
