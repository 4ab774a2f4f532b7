"""The PostgreSQL store of order placement: raw psycopg, one statement each way for a
whole batch of orders (the snapshot, and the write: ``trayecto_place()``, migration 0008);
see ``_store``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy.engine import Engine

from trayecto.commerce._catalogue import location_from_row
from trayecto.commerce._model import Location
from trayecto.commerce._rows import OrderRows
from trayecto.commerce._snapshot import Catalog, Read, days_around
from trayecto.commerce._sourcing import Policy
from trayecto.commerce._store import (
    VIEW_TABLES,
    Duplicate,
    Lease,
    Session,
    Shortage,
    ViewRows,
    rows_of,
)

# --- PostgreSQL: raw psycopg, one statement each way --------------------------------------------

# kind 0: the locations' version, and whether some cart or payment hold on the SKUs has
# expired by now; 4: the channels' policy versions; 5: the orders already stored under the
# batch's keys; 2: stock rows; 3: picks booked on the days asked at the locations holding
# the SKUs. Prepared, it runs on PostgreSQL's generic plan, not planned again for every
# batch: it compares the expiry with ``now()``, which the planner estimates with its value
# (few holds have expired), where a time parameter is estimated at a third of every hold
# and PostgreSQL kept planning the statement for each batch's values (30 custom plans of 30).
# Placement frees only the holds expired by an order's own time (``release_expired``).
_PG_SNAPSHOT = """
SELECT 0, NULL::text, NULL::text, NULL::integer, NULL::date,
       (SELECT max(updated_at) FROM locations), NULL::uuid,
       EXISTS (SELECT 1 FROM reservations WHERE status = 'active' AND expires_at < now()
                  AND expires_at IS NOT NULL AND sku = ANY(%(skus)s))
UNION ALL
SELECT 4, channel, NULL, NULL, NULL, updated_at, NULL, NULL
  FROM channel_policies WHERE channel = ANY(%(channels)s)
UNION ALL
SELECT 5, o.channel, o.external_id, NULL, NULL, NULL, o.id, NULL
  FROM unnest(%(key_channels)s::text[], %(key_ids)s::text[]) AS k(channel, external_id)
  JOIN orders o ON o.channel = k.channel AND o.external_id = k.external_id
UNION ALL
SELECT 2, location_id, sku, on_hand - reserved - safety_stock, NULL, NULL, NULL, NULL
  FROM stock WHERE sku = ANY(%(skus)s) AND on_hand - reserved - safety_stock > 0
UNION ALL
SELECT 3, location_id, NULL, picks, day, NULL, NULL, NULL
  FROM location_load
 WHERE day = ANY(%(days)s)
   AND location_id IN (SELECT location_id FROM stock WHERE sku = ANY(%(skus)s))
"""
_PG_LOCATIONS = (
    "SELECT id, name, type, latitude, longitude, capabilities, address, timezone, opening_hours,"
    " slots, daily_capacity, cutoff, active FROM locations"
)
_PG_PLACE = (
    "SELECT r_order, r_outcome, r_location, r_sku FROM trayecto_place(%s::jsonb, %s::text[],"
    " %s::text[], %s::integer[], %s::integer[], %s::integer[], %s::text[], %s::date[],"
    " %s::integer[], %s::integer[], %s::integer[], %s::uuid[], %s::integer[],"
    " %s::timestamptz[])"
)


# the order, then the tables of ``VIEW_TABLES`` in their order
_PG_VIEW = [
    "SELECT * FROM orders WHERE id = %s",
    *(f"SELECT * FROM {t.name} WHERE order_id = %s ORDER BY {by}" for t, by in VIEW_TABLES),
]


def _in_utc(row: dict[str, Any]) -> dict[str, Any]:
    for key, value in row.items():
        if isinstance(value, datetime):
            row[key] = value.astimezone(UTC)
    return row


def _decimal(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _ints(values: Sequence[int]) -> str:
    """An array literal of ``values`` (each parameter of ``trayecto_place()`` is cast to
    its array type in the statement): built here in one join, where psycopg's list
    adapter spends a Python call on every element."""
    return "{" + ",".join(map(str, values)) + "}"


def _texts(values: Sequence[str]) -> str:
    """An array literal of ``values``, each quoted (so commas, braces, spaces and NULL
    stay text) with its backslashes and double quotes escaped."""
    return "{" + ",".join(map(_quoted, values)) + "}"


def _quoted(value: str) -> str:
    if "\\" in value or '"' in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + value + '"'


_NAMES = [
    f"{t.name}" for t, _ in rows_of(OrderRows({}, [], [], [], [], [], [], [], [], 0, datetime.min))
]  # plain str keys for orjson


class PgSession(Session):
    def __init__(self, store: PgStore, pg: Any) -> None:
        self.store = store
        self.pg = pg

    def read(
        self,
        keys: Sequence[tuple[str, str]],
        skus: Sequence[str],
        at: datetime,
        days: Sequence[date] = (),
    ) -> Read:
        channels = sorted({c for c, _ in keys})
        params = {
            "skus": list(skus),
            "channels": channels,
            "key_channels": [c for c, _ in keys],
            "key_ids": [e for _, e in keys],
            "days": sorted(days or days_around(at)),
        }
        read = Read.empty()
        read.policy_at = dict.fromkeys(channels)
        read.add_rows(self.pg.execute(_PG_SNAPSHOT, params).fetchall())
        return read

    def missing_skus(self, skus: Sequence[str]) -> list[str]:
        rows = self.pg.execute("SELECT sku FROM products WHERE sku = ANY(%s)", (list(skus),))
        known = {r[0] for r in rows.fetchall()}
        return [s for s in skus if s not in known]

    def load_policy(self, channel: str) -> Policy:
        row = self.pg.execute(
            "SELECT config FROM channel_policies WHERE channel = %s", (channel,)
        ).fetchone()
        return Policy.from_config(row[0] if row else None)

    def load_locations(self) -> list[Location]:
        from psycopg.rows import dict_row

        with self.pg.cursor(row_factory=dict_row) as cur:
            return [location_from_row(r) for r in cur.execute(_PG_LOCATIONS)]

    def view_rows(self, order_id: UUID) -> ViewRows | None:
        """The seven queries of ``view_rows_of`` in one round trip (psycopg's pipeline),
        each its own statement (prepared by psycopg once it repeats), rows as dicts; times
        in UTC, as ``UTCDateTime`` gives them."""
        from psycopg.rows import dict_row

        with self.pg.pipeline():
            cursors = [self.pg.cursor(row_factory=dict_row) for _ in _PG_VIEW]
            for cur, sql in zip(cursors, _PG_VIEW, strict=True):
                cur.execute(sql, (order_id,))
        head, *children = [[_in_utc(r) for r in cur.fetchall()] for cur in cursors]
        if not head:
            return None
        lines, groups, allocs, pays, events, rets = children
        return head[0], lines, groups, allocs, pays, events, rets

    def write_many(self, batch: Sequence[OrderRows]) -> list[Shortage | Duplicate | None]:
        import psycopg

        doc: dict[str, list[dict[str, Any]]] = {name: [] for name in _NAMES}
        stock_rows = sorted({(h[0], h[1]) for rows in batch for h in rows.holds})
        load_rows = sorted({(x[0], x[1]) for rows in batch for x in rows.loads})
        row_no = {key: i for i, key in enumerate(stock_rows, 1)}
        load_no = {key: i for i, key in enumerate(load_rows, 1)}
        hold_orders, hold_rows, hold_qty = [], [], []
        pick_orders, pick_rows, pick_caps = [], [], []
        for i, rows in enumerate(batch, 1):
            for name, (_, items) in zip(_NAMES, rows_of(rows), strict=True):
                doc[name].extend(items)
            for loc_id, sku, qty in rows.holds:
                hold_orders.append(i)
                hold_rows.append(row_no[(loc_id, sku)])
                hold_qty.append(qty)
            for loc_id, day, cap in rows.loads:
                pick_orders.append(i)
                pick_rows.append(load_no[(loc_id, day)])
                pick_caps.append(cap)
        params = (
            orjson.dumps(doc, default=_decimal).decode(),
            _texts([r[0] for r in stock_rows]),
            _texts([r[1] for r in stock_rows]),
            _ints(hold_orders),
            _ints(hold_rows),
            _ints(hold_qty),
            _texts([r[0] for r in load_rows]),
            _texts([r[1].isoformat() for r in load_rows]),
            _ints(pick_orders),
            _ints(pick_rows),
            _ints(pick_caps),
            _texts([str(rows.order["id"]) for rows in batch]),
            _ints([rows.extra_safety for rows in batch]),
            _texts([rows.at.isoformat() for rows in batch]),
        )
        answers: list[Shortage | Duplicate | None] = [None] * len(batch)
        try:
            for i, outcome, loc_id, sku in self.pg.execute(_PG_PLACE, params).fetchall():
                answers[i - 1] = (
                    Duplicate() if outcome == "duplicate" else Shortage(outcome, loc_id, sku)
                )
        except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
            # another writer locked the same rows in another order: nothing was written
            return [Shortage("busy", "") for _ in batch]
        return answers


class PgStore:
    def __init__(self) -> None:
        self.catalog = Catalog()

    @contextmanager
    def session(self, engine: Engine, lease: Lease | None = None) -> Iterator[PgSession]:
        raw = lease.connection() if lease is not None else engine.raw_connection()
        pg: Any = raw.driver_connection
        try:
            pg.autocommit = True  # each statement is its own transaction
            yield PgSession(self, pg)
        finally:
            if not pg.closed and pg.info.transaction_status == 0:
                pg.autocommit = False  # (no round trip) as the pool hands connections out
                if lease is None:
                    raw.close()
            elif lease is not None:
                lease.forget()
            else:
                raw.invalidate()
                raw.close()
