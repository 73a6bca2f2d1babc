"""The notifier's Alembic migrations build exactly the tables, columns, types and indexes the code declares."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from services.notifier.adapters.schema import migrate
from services.notifier.adapters.tables import EndpointRow  # noqa: F401 - the tables the migrations must match
from shared.db import make_engine


def test_the_migrations_build_exactly_the_tables_the_code_uses(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'schema.db'}")
    migrate(engine)
    migrate(engine)  # again: a no-op
    assert {"notifier_endpoints", "notifier_deliveries", "notifier_attempts"} <= set(inspect(engine).get_table_names())

    def ours(obj, name, kind, reflected, compare_to) -> bool:
        table = name if kind == "table" else obj.table.name
        return table.startswith("notifier_") and "alembic" not in table

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": ours, "compare_type": True})
        assert list(compare_metadata(context, SQLModel.metadata)) == []
