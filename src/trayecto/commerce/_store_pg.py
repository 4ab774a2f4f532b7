"""The PostgreSQL store of order placement: raw psycopg, one statement each way (the
snapshot, and the whole write ending in ``trayecto_hold()``); see ``_store``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from trayecto.commerce._catalogue import location_from_row
from trayecto.commerce._model import Location
from trayecto.commerce._sourcing import Policy
from trayecto.commerce._store import (
    Catalog,
    Duplicate,
    OrderRows,
    Read,
    Shortage,
    Snapshot,
    assemble,
    days_around,
    rows_of,
)

# --- PostgreSQL: raw psycopg, one statement each way --------------------------------------------

# kind 0: the order if already stored, known SKUs, expired holds on them, the versions;
# 2: stock rows; 3: picks booked around today at the locations holding the SKUs
_PG_SNAPSHOT = """
SELECT 0, NULL::text, NULL::text,
       (SELECT count(*) FROM products WHERE sku = ANY(%(skus)s))::integer, NULL::date,
       (SELECT updated_at FROM channel_policies WHERE channel = %(channel)s),
       (SELECT max(updated_at) FROM locations),
       (SELECT id FROM orders WHERE channel = %(channel)s AND external_id = %(external_id)s),
       EXISTS (SELECT 1 FROM reservations WHERE status = 'active' AND expires_at < %(at)s
                  AND sku = ANY(%(skus)s))
UNION ALL
SELECT 2, location_id, sku, on_hand - reserved - safety_stock, NULL, NULL, NULL, NULL, NULL
  FROM stock WHERE sku = ANY(%(skus)s) AND on_hand - reserved - safety_stock > 0
UNION ALL
SELECT 3, location_id, NULL, picks, day, NULL, NULL, NULL, NULL
  FROM location_load
 WHERE day = ANY(%(days)s)
   AND location_id IN (SELECT location_id FROM stock WHERE sku = ANY(%(skus)s))
"""
_PG_LOCATIONS = (
    "SELECT id, name, type, latitude, longitude, capabilities, address, timezone, opening_hours,"
    " slots, daily_capacity, cutoff, active FROM locations"
)


def _decimal(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


_PG_TABLES = [t for t, _ in rows_of(OrderRows({}, [], [], [], [], [], [], [], [], 0, datetime.min))]
_NAMES = {t: f"{t.name}" for t in _PG_TABLES}  # plain str keys for orjson
# The whole write of an order is ONE statement with ONE document (see the module doc).
_PG_WRITE = (
    "WITH doc AS (SELECT %s::jsonb AS d), "
    + ", ".join(
        f"i{n} AS (INSERT INTO {t.name} SELECT * FROM jsonb_populate_recordset("
        f"NULL::{t.name}, (SELECT d -> '{t.name}' FROM doc)) RETURNING 1)"
        for n, t in enumerate(_PG_TABLES)
    )
    + ", written AS (SELECT "
    + " + ".join(f"(SELECT count(*) FROM i{n})" for n in range(len(_PG_TABLES)))
    + " AS n) SELECT trayecto_hold(%s::text[], %s::text[], %s::integer[], %s::integer,"
    " %s::timestamptz, %s::text[], %s::date[], %s::integer[]) FROM written WHERE n > 0"
)


class PgSession:
    def __init__(self, store: PgStore, pg: Any) -> None:
        self.store = store
        self.pg = pg

    def snapshot(
        self,
        channel: str,
        external_id: str,
        skus: Sequence[str],
        pickup_id: str | None,
        at: datetime,
    ) -> Snapshot:
        pg = self.pg
        params = {
            "channel": channel,
            "external_id": external_id,
            "skus": list(skus),
            "days": days_around(at),
            "at": at,
        }
        read = Read(None, 0, False, None, None, [], [])
        for kind, loc_id, sku, n, day, policy_at, locations_at, existing, expired in pg.execute(
            _PG_SNAPSHOT, params
        ).fetchall():
            if kind == 2:
                read.stock.append((loc_id, sku, n))
            elif kind == 3:
                read.loads.append((loc_id, day, n))
            else:
                read.known_skus, read.policy_at, read.locations_at = n, policy_at, locations_at
                read.existing, read.expired_holds = existing, expired

        def load_policy() -> Policy:
            row = pg.execute(
                "SELECT config FROM channel_policies WHERE channel = %s", (channel,)
            ).fetchone()
            return Policy.from_config(row[0] if row else None)

        def load_locations() -> list[Location]:
            from psycopg.rows import dict_row

            with pg.cursor(row_factory=dict_row) as cur:
                return [location_from_row(r) for r in cur.execute(_PG_LOCATIONS)]

        return assemble(
            self.store.catalog, channel, skus, read, load_policy, load_locations, pickup_id, at
        )

    def write(self, rows: OrderRows) -> None:
        import psycopg

        doc = orjson.dumps({_NAMES[t]: items for t, items in rows_of(rows)}, default=_decimal)
        holds, loads = rows.holds, rows.loads
        params = (
            doc.decode(),
            [h[0] for h in holds],
            [h[1] for h in holds],
            [h[2] for h in holds],
            rows.extra_safety,
            rows.at,
            [x[0] for x in loads],
            [x[1] for x in loads],
            [x[2] for x in loads],
        )
        try:
            self.pg.execute(_PG_WRITE, params)
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name == "uq_orders_channel_external_id":
                raise Duplicate from None
            raise
        except psycopg.errors.RaiseException as exc:
            kind = exc.diag.message_primary or ""
            where = (exc.diag.message_detail or "").split("\t")
            if kind in ("insufficient_stock", "capacity_full"):
                raise Shortage(kind, where[0], where[1] if len(where) > 1 else None) from None
            raise


class PgStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.catalog = Catalog()

    @contextmanager
    def session(self) -> Iterator[PgSession]:
        raw = self.engine.raw_connection()
        try:
            pg: Any = raw.driver_connection
            pg.autocommit = True  # each statement is its own transaction
            try:
                yield PgSession(self, pg)
            finally:
                if not pg.closed and pg.info.transaction_status == 0:
                    pg.autocommit = False
                else:
                    raw.invalidate()
        finally:
            raw.close()
