"""Engine creation with the settings each database needs, and the write-transaction helper."""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

__all__ = [
    "EngineSpec",
    "create_db_engine",
    "dialect_insert",
    "engine_spec",
    "sqlite_write_lock",
    "wipe_free_space",
    "write_transaction",
]


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


#: How each engine made here was configured, so another process can make its twin.
_SPECS: weakref.WeakKeyDictionary[Engine, EngineSpec] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """What it takes to open the same store from another process (picklable): a worker
    process must not use connections it inherited by fork; it makes its own engine."""

    url: str
    sqlite_synchronous: str = "FULL"

    def create(self, **kwargs: Any) -> Engine:
        return create_db_engine(self.url, sqlite_synchronous=self.sqlite_synchronous, **kwargs)


def engine_spec(engine: Engine) -> EngineSpec:
    """The spec of ``engine`` (made by ``create_db_engine``, or any engine: then its URL
    and the default settings)."""
    found = _SPECS.get(engine)
    return found or EngineSpec(engine.url.render_as_string(hide_password=False))


def create_db_engine(url: str, *, sqlite_synchronous: str = "FULL", **kwargs: Any) -> Engine:
    """Create the engine for ``url``.

    SQLite: WAL journal, ``synchronous`` as configured, foreign keys on, a 30 s busy
    timeout, and transactions begun explicitly (``BEGIN`` or ``BEGIN IMMEDIATE`` for
    writers) instead of pysqlite's implicit ones.
    """
    common: dict[str, Any] = {
        "json_serializer": _json_dumps,
        "json_deserializer": orjson.loads,
    }
    common.update(kwargs)
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **common
        )
        _configure_sqlite(engine, sqlite_synchronous)
        _SPECS[engine] = EngineSpec(url, sqlite_synchronous)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    common.setdefault("pool_size", 10)
    common.setdefault("max_overflow", 20)
    common.setdefault("pool_pre_ping", True)
    engine = sa.create_engine(url, **common)
    _SPECS[engine] = EngineSpec(url)
    return engine


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError("sqlite_synchronous must be FULL or NORMAL")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("sqlite_immediate"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


#: How long a writer waits for its turn before giving up (as SQLite's busy timeout).
WRITE_LOCK_TIMEOUT = 30.0


@contextmanager
def sqlite_write_lock(engine: Engine) -> Iterator[None]:
    """Take this SQLite file's writer turn: an exclusive ``flock`` on ``FILE-writer.lock``,
    held around a write transaction by every writer of every trayecto process (no-op on
    PostgreSQL and in-memory SQLite).

    SQLite lets one writer in at a time and makes the others poll with sleeps that grow to
    100 ms, so a writer often sleeps long after the lock is free: under an ingest load the
    tracking writer and the identity worker would lose most of their time that way. Waiters
    of this lock learn at once that it is free (polled every 50 µs to 1 ms), and the lock
    goes with the process if it dies."""
    path = _lock_path(engine)
    if path is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + WRITE_LOCK_TIMEOUT
        pause = 0.00005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    raise sqlite3.OperationalError(
                        f"database is locked: no turn to write within {WRITE_LOCK_TIMEOUT:g} s"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.001)
        yield
    finally:
        os.close(fd)  # releases the lock


def _lock_path(engine: Engine) -> str | None:
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return f"{database}-writer.lock"


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it waits for its writer turn
    (``sqlite_write_lock``) and takes the write lock up front, so it never fails to upgrade
    a read lock later."""
    with sqlite_write_lock(engine), engine.connect() as conn:
        conn = conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            yield conn


def dialect_insert(engine_or_conn: Engine | Connection, table: sa.Table) -> Any:
    """``INSERT`` that supports ``on_conflict_do_nothing`` on both databases."""
    name = engine_or_conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"database {name!r} is not supported")


def wipe_free_space(engine: Engine) -> None:
    """After an erasure: make deleted data unrecoverable from the database files.

    SQLite runs with ``secure_delete=ON`` (freed cells and pages are zeroed); here the WAL,
    which still holds old page images, is checkpointed and truncated. PostgreSQL keeps dead
    row versions until vacuumed: VACUUM marks them free (their bytes are overwritten by
    later writes; ``VACUUM FULL`` rewrites the tables if that must happen at once)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    elif engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM")


def refresh_statistics(engine: Engine, tables: Sequence[sa.Table]) -> None:
    """After a bulk load: let the query planner see what was loaded.

    PostgreSQL plans from sampled statistics that autovacuum refreshes only some time
    after a table changes (a minute or more); until then a freshly loaded table is planned
    as if it were empty or had its old shape, and a prepared statement may stay on a
    worse plan. ``ANALYZE`` samples at most 30,000 rows a table, so it costs little
    whatever the size. SQLite plans without statistics unless ``ANALYZE`` was ever run
    (then they would need refreshing too): nothing to do there."""
    if engine.dialect.name != "postgresql" or not tables:
        return
    names = ", ".join(engine.dialect.identifier_preparer.format_table(t) for t in tables)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"ANALYZE {names}")
