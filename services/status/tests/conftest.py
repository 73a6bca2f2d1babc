"""Every read-model test runs on SQLite (the default) and on PostgreSQL (the production option)."""

import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The project's test PostgreSQL, started here if it is not running (never skipped)."""
    script = ROOT / "deploy/local/postgres.sh"
    subprocess.run(["bash", str(script), "start"], check=True, stdout=subprocess.DEVNULL)
    return subprocess.run(["bash", str(script), "url"], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.e2e)])
def database(request, tmp_path):
    """A factory of empty databases of one kind: `database(name)` -> URL."""
    created: list[str] = []

    def new(name: str) -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / name}.db"
        admin_url = request.getfixturevalue("postgres_url")
        db = f"t_{name}_{uuid.uuid4().hex[:8]}".lower()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db}"')
        created.append(db)
        return admin_url.rsplit("/", 1)[0] + f"/{db}"

    yield new
    if created:
        from sqlalchemy import create_engine  # noqa: F401 - engines are disposed with the process

        admin_url = request.getfixturevalue("postgres_url")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            for db in created:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
