"""Bulk writes without SQLAlchemy's per-row machinery, for the hot paths of bulk imports.

``conn.execute(table.insert(), rows)`` builds a parameter dict per row and runs every
value through its type's bind processor in Python: about 15 µs a row, which dominates an
import that writes ten rows per record. Here each column's encoding is chosen once per
statement and the rows go to the driver as tuples: SQLite gets multi-row ``INSERT``
statements, PostgreSQL (psycopg) one ``executemany``. Values are stored exactly as
SQLAlchemy stores them (UUIDs as 32 hex digits and ``UTCDateTime`` as epoch microseconds on
SQLite, JSON ``None`` as JSON ``null``), so rows written either way read back the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from trayecto.db.types import UTCDateTime, to_epoch_us

__all__ = ["bulk_insert", "bulk_update"]

Encoder = Callable[[Any], Any] | None

#: SQLite: rows per INSERT statement (10 columns x 100 rows = 1,000 bound parameters,
#: far under SQLite's limit of 32,766).
_ROWS_PER_STATEMENT = 100


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _uuid_hex(value: Any) -> Any:
    return None if value is None else value.hex


def _epoch_us(value: Any) -> Any:
    return None if value is None else to_epoch_us(value)


def _is_json(col: sa.Column[Any], dialect: str) -> bool:
    return isinstance(col.type.dialect_impl(_DIALECTS[dialect]), sa.JSON)


_DIALECTS = {
    "sqlite": sqlite.dialect(),
    "postgresql": postgresql.dialect(),  # type: ignore[no-untyped-call]
}


def _encoder(col: sa.Column[Any], dialect: str) -> Encoder:
    if _is_json(col, dialect):
        return _json
    if dialect == "sqlite":
        if isinstance(col.type, sa.Uuid):
            return _uuid_hex
        if isinstance(col.type, UTCDateTime):
            return _epoch_us
    return None


def _mark(col: sa.Column[Any], dialect: str) -> str:
    if dialect == "sqlite":
        return "?"
    return "%s::jsonb" if _is_json(col, dialect) else "%s"


def _encode(
    rows: Sequence[Mapping[str, Any]], names: Sequence[str], encoders: Sequence[Encoder]
) -> list[tuple[Any, ...]]:
    # Column by column: one comprehension per column is much cheaper than a generator
    # per row. UUIDs and times repeat (one source, one time, ten rows per profile): each
    # distinct value is encoded once.
    columns = []
    for n, e in zip(names, encoders, strict=True):
        values = [row[n] for row in rows]
        if e is _json:
            values = [_json(v) for v in values]
        elif e is not None:
            done = {v: e(v) for v in set(values)}
            values = [done[v] for v in values]
        columns.append(values)
    return list(zip(*columns, strict=True))


def _columns(table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> list[sa.Column[Any]]:
    names = list(rows[0])
    for col in table.c:
        if col.name not in names and col.default is not None:
            raise ValueError(f"bulk_insert: give {table.name}.{col.name} (it has a default)")
    return [table.c[n] for n in names]


def bulk_insert(conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """``INSERT`` ``rows`` (dicts with the same keys) into ``table``, in the caller's
    transaction."""
    if not rows:
        return
    dialect = conn.dialect.name
    cols = _columns(table, rows)
    names = [c.name for c in cols]
    values = _encode(rows, names, [_encoder(c, dialect) for c in cols])
    head = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES "
    one = "(" + ", ".join(_mark(c, dialect) for c in cols) + ")"
    if dialect != "sqlite":
        conn.exec_driver_sql(head + one, values)
        return
    full = head + ", ".join([one] * _ROWS_PER_STATEMENT)
    for start in range(0, len(values), _ROWS_PER_STATEMENT):
        part = values[start : start + _ROWS_PER_STATEMENT]
        sql = full if len(part) == _ROWS_PER_STATEMENT else head + ", ".join([one] * len(part))
        conn.exec_driver_sql(sql, tuple(chain.from_iterable(part)))


def bulk_update(
    conn: Connection, table: sa.Table, key: str, rows: Sequence[Mapping[str, Any]]
) -> None:
    """``UPDATE table SET … WHERE key = …`` once per row (dicts with the same keys, one of
    them ``key``), in order, in the caller's transaction."""
    if not rows:
        return
    dialect = conn.dialect.name
    cols = [table.c[n] for n in rows[0] if n != key] + [table.c[key]]
    names = [c.name for c in cols]
    sets = ", ".join(f"{c.name} = {_mark(c, dialect)}" for c in cols[:-1])
    sql = f"UPDATE {table.name} SET {sets} WHERE {key} = {_mark(cols[-1], dialect)}"
    conn.exec_driver_sql(sql, _encode(rows, names, [_encoder(c, dialect) for c in cols]))
