from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from services.status.schema import migrate
from services.status.tables import JobRow  # noqa: F401 - the tables the migrations must match
from shared.db import make_engine


def test_the_migrations_build_exactly_the_tables_the_code_uses(database):
    engine = make_engine(database("schema"))
    migrate(engine)
    migrate(engine)  # again: a no-op
    assert {"status_jobs", "status_stops", "status_drivers", "status_applied_events"} <= set(
        inspect(engine).get_table_names()
    )
    with engine.connect() as conn:
        ours = lambda obj, name, kind, *_: kind != "table" or (name.startswith("status_") and "alembic" not in name)  # noqa: E731
        context = MigrationContext.configure(conn, opts={"include_object": ours, "compare_type": True})
        diff = [
            d
            for d in compare_metadata(context, SQLModel.metadata)
            if not (isinstance(d, tuple) and d[0] in ("add_index", "remove_index"))
        ]
    assert diff == []
