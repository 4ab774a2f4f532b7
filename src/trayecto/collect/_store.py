"""Event log storage: the fast append path and the read path.

The append path writes driver-ready tuples through one prepared ``INSERT … ON CONFLICT DO
NOTHING``, idempotent on (source, the message's own timestamp as sent, messageId): a retry
resends the same message, timestamp included. Every index of the table is time-ordered, so
an append writes at the end of each index. The read path uses SQLAlchemy Core.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from trayecto.collect._contracts import NativeEvent
from trayecto.collect._tables import events
from trayecto.db import to_epoch_us
from trayecto.kernel import ValidationError

__all__ = [
    "EventFilter",
    "EventPage",
    "append_events",
    "append_rows",
    "append_rows_dbapi",
    "count_events",
    "counts_by_channel",
    "encode_cursor",
    "encode_rows",
    "events_by_id",
    "message_ids",
    "query_events",
    "read_log",
]

_COLS = (
    "id",
    "source_id",
    "channel",
    "location_id",
    "type",
    "event",
    "message_id",
    "anonymous_id",
    "user_id",
    "group_id",
    "previous_id",
    "traits",
    "properties",
    "context",
    "extra",
    "occurred_at",
    "original_timestamp",
    "sent_at",
    "received_at",
    "message_ts",
)
_CONFLICT = "ON CONFLICT (source_id, message_ts, message_id) DO NOTHING"
#: The columns a ``NativeEvent`` is read from (``message_ts`` is only a key).
_EVENT_COLS = [c for c in events.c if c.name != "message_ts"]
_JSON_COLS = frozenset({"traits", "properties", "context", "extra"})


def _sql(dialect: str) -> str:
    if dialect == "sqlite":
        marks = ", ".join("?" for _ in _COLS)
    else:
        marks = ", ".join("%s::jsonb" if c in _JSON_COLS else "%s" for c in _COLS)
    return f"INSERT INTO events ({', '.join(_COLS)}) VALUES ({marks}) {_CONFLICT}"


_SQL = {"sqlite": _sql("sqlite"), "postgresql": _sql("postgresql")}

# SQLite: up to this many rows per INSERT statement. ``executemany`` steps the statement
# once per row and gives up the interpreter lock around each step; under load (the event
# loop busy validating the next request) re-taking it costs more than the insert. One
# statement per 100 rows gives it up once per 100 rows. 20 columns x 100 = 2,000 bound
# parameters, far under SQLite's limit.
_ROWS_PER_STATEMENT = 100
_ROW_MARKS = "(" + ", ".join("?" for _ in _COLS) + ")"


def _multirow_sql(n: int) -> str:
    return (
        f"INSERT INTO events ({', '.join(_COLS)}) VALUES "
        + ", ".join(_ROW_MARKS for _ in range(n))
        + f" {_CONFLICT}"
    )


_MULTIROW_FULL = _multirow_sql(_ROWS_PER_STATEMENT)


def _insert_sqlite(cursor: Any, rows: list[tuple[Any, ...]]) -> int:
    """Insert ``rows`` with multi-row statements; returns how many were new."""
    inserted = 0
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        part = rows[start : start + _ROWS_PER_STATEMENT]
        sql = _MULTIROW_FULL if len(part) == _ROWS_PER_STATEMENT else _multirow_sql(len(part))
        cursor.execute(sql, [v for row in part for v in row])
        inserted += max(cursor.rowcount, 0)
    return inserted


def _j(value: dict[str, Any] | None) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _t(value: datetime | None) -> int | None:
    # ``UTCDateTime`` on SQLite: integer microseconds since the epoch.
    return None if value is None else to_epoch_us(value)


def _sqlite_row(e: NativeEvent) -> tuple[Any, ...]:
    return (
        e.id.hex,
        e.source_id.hex,
        e.channel,
        e.location_id,
        e.type,
        e.event,
        e.message_id,
        e.anonymous_id,
        e.user_id,
        e.group_id,
        e.previous_id,
        _j(e.traits),
        _j(e.properties),
        _j(e.context),
        _j(e.extra),
        _t(e.occurred_at),
        _t(e.original_timestamp),
        _t(e.sent_at),
        _t(e.received_at),
        _t(e.original_timestamp) or 0,
    )


def _pg_row(e: NativeEvent) -> tuple[Any, ...]:
    return (
        e.id,
        e.source_id,
        e.channel,
        e.location_id,
        e.type,
        e.event,
        e.message_id,
        e.anonymous_id,
        e.user_id,
        e.group_id,
        e.previous_id,
        _j(e.traits),
        _j(e.properties),
        _j(e.context),
        _j(e.extra),
        e.occurred_at,
        e.original_timestamp,
        e.sent_at,
        e.received_at,
        _t(e.original_timestamp) or 0,
    )


_ROW: dict[str, Callable[[NativeEvent], tuple[Any, ...]]] = {
    "sqlite": _sqlite_row,
    "postgresql": _pg_row,
}


def encode_rows(batch: Sequence[NativeEvent], dialect: str) -> list[tuple[Any, ...]]:
    """``batch`` as driver-ready rows for ``dialect`` (picklable: the bulk importer encodes
    in worker processes and appends the rows with ``append_rows``)."""
    to_row = _ROW[dialect]
    return [to_row(e) for e in batch]


def append_events(conn: Connection, batch: Sequence[NativeEvent]) -> int:
    """Append ``batch`` inside the caller's transaction; duplicates (same source, timestamp
    as sent and messageId) are skipped. Returns the number of rows actually inserted."""
    if not batch:
        return 0
    return append_rows(conn, encode_rows(batch, conn.dialect.name))


_LAST_ID = "SELECT id FROM events ORDER BY id DESC LIMIT 1"
#: PostgreSQL advisory lock held by every append until its commit (any value, used only here).
APPEND_LOCK = 0x7472_6179  # "tray"


def _in_id_order(cursor: Any, dialect: str, batches: Sequence[list[tuple[Any, ...]]]) -> None:
    """Make the log's id order its commit order, in place: every row's id must sort after
    the newest stored id and after the row before it, else it is moved up by one.

    Followers of the log (identity, later the analytics copy) read it by id after a
    checkpoint, so an id committed below an id already read would never be seen. Ids are
    made where messages are checked: in-process they are already in order and nothing
    changes; worker processes (tracking requests, bulk import) make them concurrently, in
    an order that the commit order need not follow. Called inside the write transaction:
    on SQLite writers are serialised, so this holds across processes too; on PostgreSQL
    appends are serialised here, by a transaction-scoped advisory lock released after the
    commit, so no transaction can commit ids below those of one that committed before it.
    (Appends are batches: one lock turn per batch of requests or chunk of an import.)"""
    if dialect == "postgresql":
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
    cursor.execute(_LAST_ID)
    found = cursor.fetchone()
    last = found[0] if found else None
    for rows in batches:
        for i, row in enumerate(rows):
            rid = row[0]
            if last is not None and rid <= last:
                rid = _successor(last, dialect)
                rows[i] = (rid, *row[1:])
            last = rid


def _successor(value: Any, dialect: str) -> Any:
    if dialect == "sqlite":  # 32 lower-case hex digits: text order is numeric order
        return f"{int(value, 16) + 1:032x}"
    return UUID(int=value.int + 1)


def append_rows(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    """Append rows made by ``encode_rows`` for this connection's dialect, inside the
    caller's transaction; returns how many were new."""
    if not rows:
        return 0
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        _in_id_order(cursor, conn.dialect.name, [rows])
        if conn.dialect.name == "sqlite":
            return _insert_sqlite(cursor, rows)
        cursor.executemany(_SQL[conn.dialect.name], rows)
        return max(int(cursor.rowcount), 0)
    finally:
        cursor.close()


def append_rows_dbapi(
    dbapi_conn: Any, dialect: str, encoded: Sequence[list[tuple[Any, ...]]]
) -> list[int]:
    """The writer's hot path: append several requests' rows (from ``encode_rows``, made
    before the write lock is taken) in one transaction on a raw DB-API connection, without
    SQLAlchemy's per-statement machinery. Returns the rows inserted per request. The caller
    owns the connection; on error it is rolled back."""
    sql = _SQL[dialect]
    cur = dbapi_conn.cursor()
    try:
        if dialect == "sqlite":
            cur.execute("BEGIN IMMEDIATE")
        _in_id_order(cur, dialect, encoded)
        counts = []
        for rows in encoded:
            if not rows:
                counts.append(0)
            elif dialect == "sqlite":
                counts.append(_insert_sqlite(cur, rows))
            else:
                cur.executemany(sql, rows)
                counts.append(max(cur.rowcount, 0))
        if dialect == "sqlite":
            cur.execute("COMMIT")
        else:
            dbapi_conn.commit()
        return counts
    except BaseException:
        if dialect == "sqlite":
            if dbapi_conn.in_transaction:
                cur.execute("ROLLBACK")
        else:
            dbapi_conn.rollback()
        raise
    finally:
        cur.close()


@dataclass(frozen=True, slots=True)
class EventFilter:
    source_id: UUID | None = None
    channel: str | None = None
    type: str | None = None
    event: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class EventPage:
    data: list[NativeEvent]
    next_cursor: str | None


def encode_cursor(event_id: UUID) -> str:
    return base64.urlsafe_b64encode(event_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return UUID(bytes=raw)
    except (ValueError, binascii.Error):
        raise ValidationError(
            "cursor is not one this API gave out; start again without it",
            code="invalid_cursor",
            field="cursor",
        ) from None


def _where(f: EventFilter) -> list[sa.ColumnElement[bool]]:
    c = events.c
    conds: list[sa.ColumnElement[bool]] = []
    if f.source_id is not None:
        conds.append(c.source_id == f.source_id)
    if f.channel is not None:
        conds.append(c.channel == f.channel)
    if f.type is not None:
        conds.append(c.type == f.type)
    if f.event is not None:
        conds.append(c.event == f.event)
    if f.user_id is not None:
        conds.append(c.user_id == f.user_id)
    if f.anonymous_id is not None:
        conds.append(c.anonymous_id == f.anonymous_id)
    if f.since is not None:
        conds.append(c.occurred_at >= f.since)
    if f.until is not None:
        conds.append(c.occurred_at < f.until)
    return conds


def _event(row: sa.Row[Any]) -> NativeEvent:
    return NativeEvent(**row._mapping)


def query_events(
    engine: Engine,
    flt: EventFilter,
    *,
    limit: int = 100,
    cursor: str | None = None,
    newest_first: bool = True,
) -> EventPage:
    """One page of events in receive order (newest first by default), keyset-paginated.

    The log's only indexes are time-ordered (see ``_tables``), so a filter on channel, type,
    event name, user or anonymous id is checked row by row. Such a page examines at most
    ``SCAN_BUDGET`` events of the log: it may come back short, even empty, with a
    ``next_cursor`` to go on from; the log is exhausted only when ``next_cursor`` is None.
    """
    if not 1 <= limit <= 1000:
        raise ValidationError("limit must be between 1 and 1000", code="invalid", field="limit")
    conds = _where(flt)
    window: list[sa.ColumnElement[bool]] = []
    if cursor:
        after = decode_cursor(cursor)
        window.append(events.c.id < after if newest_first else events.c.id > after)
    order = events.c.id.desc() if newest_first else events.c.id.asc()
    with engine.connect() as conn:
        bound = None
        if _unindexed(flt):
            bound = conn.execute(
                sa.select(events.c.id)
                .where(*window)
                .order_by(order)
                .offset(SCAN_BUDGET - 1)
                .limit(1)
            ).scalar()
            if bound is not None:
                window.append(events.c.id >= bound if newest_first else events.c.id <= bound)
        stmt = sa.select(*_EVENT_COLS).where(*conds, *window).order_by(order).limit(limit + 1)
        rows = conn.execute(stmt).all()
    items = [_event(r) for r in rows[:limit]]
    if len(rows) > limit:
        nxt: str | None = encode_cursor(items[-1].id)
    elif bound is not None:
        nxt = encode_cursor(bound)  # the window ended before the log did: go on from there
    else:
        nxt = None
    return EventPage(items, nxt)


#: At most this many events of the log are examined for one page of a filter that no index
#: serves (see ``query_events``).
SCAN_BUDGET = 20_000


def _unindexed(f: EventFilter) -> bool:
    return any(v is not None for v in (f.channel, f.type, f.event, f.user_id, f.anonymous_id))


def count_events(engine: Engine, flt: EventFilter | None = None) -> int:
    stmt = sa.select(sa.func.count()).select_from(events)
    if flt is not None:
        stmt = stmt.where(*_where(flt))
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def message_ids(engine: Engine, source_id: UUID) -> set[str]:
    """Every messageId stored for a source (for audits and tests)."""
    with engine.connect() as conn:
        return set(
            conn.execute(
                sa.select(events.c.message_id).where(events.c.source_id == source_id)
            ).scalars()
        )


def counts_by_channel(engine: Engine) -> dict[str, int]:
    """Stored events per channel, in one grouped scan."""
    stmt = sa.select(events.c.channel, sa.func.count()).group_by(events.c.channel)
    with engine.connect() as conn:
        return {ch: int(n) for ch, n in conn.execute(stmt).all()}


def read_log(
    engine: Engine, after: UUID | None, limit: int = 5000, *, with_properties: bool = True
) -> list[NativeEvent]:
    """The next ``limit`` events of the log after event ``after``, in receive order: how
    downstream consumers (identity, the analytics copy, triggers) follow the log.
    ``with_properties=False`` leaves out ``properties`` and ``extra`` (they come back as
    None) for consumers that do not read them: half the decoding work."""
    cols = [c for c in _EVENT_COLS if with_properties or c.name not in ("properties", "extra")]
    stmt = sa.select(*cols).order_by(events.c.id).limit(limit)
    if after is not None:
        stmt = stmt.where(events.c.id > after)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    if with_properties:
        return [_event(r) for r in rows]
    return [NativeEvent(**r._mapping, properties=None, extra=None) for r in rows]


def events_by_id(engine: Engine, ids: Sequence[UUID]) -> dict[UUID, NativeEvent]:
    if not ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*_EVENT_COLS).where(events.c.id.in_(list(ids)))).all()
    return {r.id: _event(r) for r in rows}
