"""Schema migrations of the read model (Alembic), applied when the service or a rebuild starts."""

from pathlib import Path

from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the read model's tables to `revision`; a no-op when they are there already."""
    from alembic import command  # a quarter second to import: not for a throwaway database (create_tables)
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def create_tables(engine: Engine) -> None:
    """The head schema straight from the models, for a throwaway database that is never migrated
    (`routemate optimize`); the schema test keeps the models and the migrations equal."""
    from sqlmodel import SQLModel

    from services.status.adapters import tables  # noqa: F401  (registers the tables)

    SQLModel.metadata.create_all(engine)
