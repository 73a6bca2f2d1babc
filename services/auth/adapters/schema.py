"""Schema migrations of the auth tables (Alembic), applied when the service starts."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "auth_alembic_version"


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the auth tables to `revision`; a no-op when they are there already. A database that
    the older `create_all` code made (tables, no version table) is stamped at 0001 first."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        tables = set(inspect(connection).get_table_names())
        if "auth_organizations" in tables and VERSION_TABLE not in tables:
            command.stamp(config, "0001")
        command.upgrade(config, revision)
