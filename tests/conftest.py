"""Fixtures shared by the whole suite.

The database comes from ``TRAYECTO_TEST_DATABASE_URL``: unset means a SQLite file per test;
a PostgreSQL URL (set by ``scripts/with-postgres.sh``) means a fresh database per test,
cloned from a migrated template so each test starts clean and isolated.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.helpers import Server, start_server
from trayecto import bootstrap, db
from trayecto.bootstrap import Platform
from trayecto.settings import Settings

PG_ADMIN_URL = os.environ.get("TRAYECTO_TEST_DATABASE_URL")
TEMPLATE = "trayecto_template"


def _pg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    """Create (once per worker) a migrated template database on the PostgreSQL server."""
    if not PG_ADMIN_URL:
        yield None
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"{TEMPLATE}_{worker}"
    admin = sa.create_engine(_pg(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(False)
    engine = db.create_db_engine(url)
    db.upgrade(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def database_url(tmp_path: Path, pg_template: str | None) -> Iterator[str]:
    if not PG_ADMIN_URL or pg_template is None:
        yield f"sqlite:///{tmp_path / 'trayecto.sqlite3'}"
        return
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(_pg(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    """Environment for a real ``trayecto`` process pointed at this test's store."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    e = {k: v for k, v in os.environ.items() if not k.startswith("TRAYECTO_")}
    e.update(TRAYECTO_HOME=str(home), TRAYECTO_DATABASE_URL=database_url)
    return e


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    # In-process apps check tracking requests in-process: spawning ingest workers for every
    # app would cost seconds of CPU each. Real servers (``env``) run with the default pool.
    return Settings(
        home=Path(env["TRAYECTO_HOME"]),
        database_url=env["TRAYECTO_DATABASE_URL"],
        ingest_workers=0,
    )


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    p = bootstrap.build(settings)
    yield p
    p.close()


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    srv = start_server(env, tmp_path / "server.log")
    yield srv
    srv.stop()
