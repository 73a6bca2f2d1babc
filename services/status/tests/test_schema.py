"""The Alembic migrations build exactly the tables, columns, types and indexes the code declares."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from services.status.adapters.schema import migrate
from services.status.adapters.tables import JobRow  # noqa: F401 - the tables the migrations must match
from shared.db import make_engine


def differences(engine: Engine) -> list:
    """Every difference between the migrated database and the tables' metadata, indexes included."""

    def ours(obj, name, kind, reflected, compare_to) -> bool:
        table = name if kind == "table" else obj.table.name
        return table.startswith("status_") and "alembic" not in table

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": ours, "compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


def test_the_migrations_build_exactly_the_tables_the_code_uses(database):
    engine = make_engine(database("schema"))
    migrate(engine)
    migrate(engine)  # again: a no-op
    assert {"status_jobs", "status_stops", "status_drivers", "status_applied_events"} <= set(
        inspect(engine).get_table_names()
    )
    assert differences(engine) == []


def test_a_migration_that_misses_an_index_is_caught(database):
    engine = make_engine(database("no_index"))
    migrate(engine)
    with engine.begin() as conn:  # as if the migration had never created the jobs page's index
        conn.exec_driver_sql("DROP INDEX ix_status_jobs_org_created")
    assert [d[0] for d in differences(engine)] == ["add_index"]
