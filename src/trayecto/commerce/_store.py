"""The hot path of order placement, per database: one read, then one write.

Each attempt of ``place_order`` needs a snapshot of what is available and, once the
engine has chosen, one atomic write of the whole order. Both are single statements on
PostgreSQL; the rest of what placement needs is cached in the process and validated by
the snapshot itself:

* every location, with the newest ``locations.updated_at`` it was read at (the snapshot
  reads ``max(updated_at)`` through an index; when it moved, the locations are reloaded);
* the channel's policy, with its ``updated_at`` (read by the same statement).

The snapshot: the available units of the order's SKUs per location (stock rows only, no
join), the two versions, and today's booked picks of the locations holding the SKUs.

The write inserts the order's rows first and takes the stock and capacity holds **last**,
in a fixed order (stock rows by (location, SKU), then capacity rows by location):

* PostgreSQL: ONE statement in autocommit mode, so it is its own transaction and no client
  round trip ever happens inside it. Every row of every table travels in one JSON document
  (one ``orjson.dumps``) that the server expands with ``jsonb_populate_recordset`` into
  each table's row type; the main query reads every insert's output and only then calls
  ``trayecto_hold()`` (migration 0005: the conditional updates in order, raising on the
  first that does not fit). Row locks live from the holds to the statement's commit.
* SQLite (and any other database): the same steps through SQLAlchemy Core in one write
  transaction; SQLite's database lock serialises writers anyway.

A hold that does not fit raises ``Shortage`` (the transaction rolls back, nothing of the
order is kept); a duplicate (channel, external id) raises ``Duplicate``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID
from zoneinfo import ZoneInfo

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from trayecto.commerce._catalogue import location_from_row
from trayecto.commerce._model import Location
from trayecto.commerce._sourcing import Policy, Site
from trayecto.commerce._tables import (
    allocations,
    channel_policies,
    fulfilment_groups,
    location_load,
    locations,
    order_events,
    order_lines,
    orders,
    payments,
    products,
    reservations,
    stock,
)
from trayecto.db import dialect_insert


class Shortage(Exception):
    """A hold did not fit when the order was written: someone else took the units (or the
    location's last pick of the day) since the snapshot."""

    def __init__(self, kind: str, location_id: str, sku: str | None = None) -> None:
        super().__init__(f"{kind} at {location_id} {sku or ''}".strip())
        self.kind = kind  # insufficient_stock | capacity_full
        self.location_id = location_id
        self.sku = sku


class Duplicate(Exception):
    """An order with the same (channel, external id) is already stored."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    existing: UUID | None  # the order already stored under (channel, external id)
    unknown_skus: bool  # some SKU of the order is not in the catalogue
    expired_holds: bool  # some cart or payment hold on these SKUs has expired
    policy: Policy
    pickup: Location | None  # the requested pickup location, when it exists
    locations: dict[str, Location]  # the locations holding some of the order (+ pickup)
    sites: list[Site]
    available: dict[tuple[str, str], int]  # (location, SKU) -> units, channel safety deducted


@dataclass(slots=True)
class OrderRows:
    """Everything one order writes, as column mappings, plus its holds."""

    order: dict[str, Any]
    lines: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    allocations: list[dict[str, Any]]
    reservations: list[dict[str, Any]]
    payments: list[dict[str, Any]]
    events: list[dict[str, Any]]
    holds: list[tuple[str, str, int]]  # (location, SKU, units), sorted
    loads: list[tuple[str, date, int]]  # (location, its local day, daily capacity), sorted
    extra_safety: int
    at: datetime


def local_day(loc: Location, at: datetime) -> date:
    """The location's own calendar day at ``at``: capacity is counted per local day."""
    return at.astimezone(ZoneInfo(loc.timezone)).date()


def _days_around(at: datetime) -> list[date]:
    """Every calendar day some time zone is in at ``at`` (UTC-12 to UTC+14)."""
    today = at.date()
    return [today - timedelta(days=1), today, today + timedelta(days=1)]


def _rows_of(rows: OrderRows) -> list[tuple[sa.Table, list[dict[str, Any]]]]:
    """Each table with its rows, parents before children."""
    return [
        (orders, [rows.order]),
        (order_lines, rows.lines),
        (fulfilment_groups, rows.groups),
        (reservations, rows.reservations),
        (allocations, rows.allocations),
        (payments, rows.payments),
        (order_events, rows.events),
    ]


# --- what is cached ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Catalog:
    """Every location as read at ``version`` (their newest ``updated_at``), and the
    policies by channel, each with its own ``updated_at``."""

    version: datetime | None = None
    loaded: bool = False
    locations: dict[str, tuple[Location, Site]] = field(default_factory=dict)
    policies: dict[str, tuple[datetime | None, Policy]] = field(default_factory=dict)


def _site(loc: Location, picks: int | None) -> Site:
    return Site(
        id=loc.id,
        type=loc.type,
        latitude=loc.latitude,
        longitude=loc.longitude,
        capabilities=loc.capabilities,
        capacity_left=None if loc.daily_capacity is None else loc.daily_capacity - (picks or 0),
        open=loc.opening_hours != {},
        active=loc.active,
    )


@dataclass(slots=True)
class _Read:
    """What one snapshot statement returned."""

    existing: UUID | None
    known_skus: int
    expired_holds: bool
    policy_at: datetime | None
    locations_at: datetime | None
    stock: list[tuple[str, str, int]]  # (location, SKU, on hand - reserved - safety)
    loads: list[tuple[str, date, int]]  # (location, day, picks) around today


def _assemble(
    catalog: _Catalog,
    channel: str,
    skus: Sequence[str],
    read: _Read,
    load_policy: Callable[[], Policy],
    load_locations: Callable[[], Iterable[Location]],
    pickup_id: str | None,
    at: datetime,
) -> Snapshot:
    """The snapshot from what was read, refreshing the cache first when it is stale."""
    cached = catalog.policies.get(channel)
    if cached is None or cached[0] != read.policy_at:
        cached = (read.policy_at, load_policy() if read.policy_at is not None else Policy())
        catalog.policies[channel] = cached
    policy = cached[1]
    if not catalog.loaded or catalog.version != read.locations_at:
        catalog.locations = {loc.id: (loc, _site(loc, None)) for loc in load_locations()}
        catalog.version, catalog.loaded = read.locations_at, True
    entries = catalog.locations
    picks: dict[str, int] = {}
    for loc_id, day, n in read.loads:
        entry = entries.get(loc_id)
        if (
            entry is not None
            and entry[0].daily_capacity is not None
            and local_day(entry[0], at) == day
        ):
            picks[loc_id] = n
    locs: dict[str, Location] = {}
    sites: list[Site] = []
    available: dict[tuple[str, str], int] = {}
    extra = policy.safety_stock
    for loc_id, sku, atp in read.stock:
        if loc_id not in locs:
            entry = entries.get(loc_id)
            if entry is None:  # created after the snapshot's version: next time
                continue
            loc, site = entry
            locs[loc_id] = loc
            sites.append(site if loc.daily_capacity is None else _site(loc, picks.get(loc_id)))
        if atp > extra:
            available[(loc_id, sku)] = atp - extra
    pickup = None
    if pickup_id is not None and pickup_id in entries:
        pickup, site = entries[pickup_id]
        if pickup_id not in locs:
            locs[pickup_id] = pickup
            sites.append(site if pickup.daily_capacity is None else _site(pickup, None))
    return Snapshot(
        read.existing,
        read.known_skus < len(skus),
        read.expired_holds,
        policy,
        pickup,
        locs,
        sites,
        available,
    )


# --- the stores -------------------------------------------------------------------------------


class Session(Protocol):
    def snapshot(
        self,
        channel: str,
        external_id: str,
        skus: Sequence[str],
        pickup_id: str | None,
        at: datetime,
    ) -> Snapshot: ...

    def write(self, rows: OrderRows) -> None: ...


class Store(Protocol):
    def session(self) -> Any: ...


_STORES: weakref.WeakKeyDictionary[Engine, Store] = weakref.WeakKeyDictionary()


def store_for(engine: Engine) -> Store:
    """The store of ``engine`` (PostgreSQL's fast path or the portable one) with its
    caches; one per engine."""
    found = _STORES.get(engine)
    if found is None:
        found = _PgStore(engine) if engine.dialect.name == "postgresql" else _CoreStore(engine)
        _STORES[engine] = found
    return found


# --- portable: SQLAlchemy Core ----------------------------------------------------------------

_ATP = stock.c.on_hand - stock.c.reserved - stock.c.safety_stock
_STOCK = sa.select(stock.c.location_id, stock.c.sku, _ATP.label("atp")).where(
    stock.c.sku.in_(sa.bindparam("skus", expanding=True)), _ATP > 0
)
_HEAD = sa.select(
    sa.select(orders.c.id)
    .where(
        orders.c.channel == sa.bindparam("channel"),
        orders.c.external_id == sa.bindparam("external_id"),
    )
    .scalar_subquery(),
    sa.select(sa.func.count())
    .select_from(products)
    .where(products.c.sku.in_(sa.bindparam("skus", expanding=True)))
    .scalar_subquery(),
    sa.exists().where(
        reservations.c.status == "active",
        reservations.c.expires_at < sa.bindparam("at"),
        reservations.c.sku.in_(sa.bindparam("skus", expanding=True)),
    ),
    sa.select(channel_policies.c.updated_at)
    .where(channel_policies.c.channel == sa.bindparam("channel"))
    .scalar_subquery(),
    sa.select(sa.func.max(locations.c.updated_at)).scalar_subquery(),
)
_POLICY = sa.select(channel_policies.c.config).where(
    channel_policies.c.channel == sa.bindparam("channel")
)
_LOADS = sa.select(location_load.c.location_id, location_load.c.day, location_load.c.picks).where(
    location_load.c.day.in_(sa.bindparam("days", expanding=True)),
    location_load.c.location_id.in_(
        sa.select(stock.c.location_id).where(stock.c.sku.in_(sa.bindparam("skus", expanding=True)))
    ),
)
_HOLD = (
    stock.update()
    .where(
        stock.c.location_id == sa.bindparam("l"),
        stock.c.sku == sa.bindparam("s"),
        stock.c.on_hand - stock.c.reserved - stock.c.safety_stock - sa.bindparam("extra")
        >= sa.bindparam("q"),
    )
    .values(reserved=stock.c.reserved + sa.bindparam("q"), updated_at=sa.bindparam("at"))
)
_BOOK = (
    location_load.update()
    .where(
        location_load.c.location_id == sa.bindparam("l"),
        location_load.c.day == sa.bindparam("d"),
        location_load.c.picks + 1 <= sa.bindparam("cap"),
    )
    .values(picks=location_load.c.picks + 1)
)


class _CoreSession:
    def __init__(self, store: _CoreStore, conn: Connection) -> None:
        self.store = store
        self.conn = conn

    def snapshot(
        self,
        channel: str,
        external_id: str,
        skus: Sequence[str],
        pickup_id: str | None,
        at: datetime,
    ) -> Snapshot:
        conn = self.conn
        with conn.begin():
            head = conn.execute(
                _HEAD,
                {"channel": channel, "external_id": external_id, "skus": list(skus), "at": at},
            ).one()
            read = _Read(
                head[0],
                head[1],
                bool(head[2]),
                head[3],
                head[4],
                [(r[0], r[1], r[2]) for r in conn.execute(_STOCK, {"skus": list(skus)})],
                [
                    (r[0], r[1], r[2])
                    for r in conn.execute(_LOADS, {"skus": list(skus), "days": _days_around(at)})
                ],
            )
            return _assemble(
                self.store.catalog,
                channel,
                skus,
                read,
                lambda: Policy.from_config(conn.execute(_POLICY, {"channel": channel}).scalar()),
                lambda: [location_from_row(r._mapping) for r in conn.execute(sa.select(locations))],
                pickup_id,
                at,
            )

    def write(self, rows: OrderRows) -> None:
        conn = self.conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            ins = dialect_insert(conn, orders).on_conflict_do_nothing(
                index_elements=["channel", "external_id"]
            )
            if conn.execute(ins, [rows.order]).rowcount != 1:
                raise Duplicate
            for table, items in _rows_of(rows)[1:]:
                if items:
                    conn.execute(table.insert(), items)
            for loc_id, sku, qty in rows.holds:
                params = {"l": loc_id, "s": sku, "q": qty, "extra": rows.extra_safety}
                if conn.execute(_HOLD, {**params, "at": rows.at}).rowcount != 1:
                    raise Shortage("insufficient_stock", loc_id, sku)
            for loc_id, day, cap in rows.loads:
                if cap < 1:
                    raise Shortage("capacity_full", loc_id)
                new = dialect_insert(conn, location_load).values(
                    location_id=loc_id, day=day, picks=0
                )
                conn.execute(new.on_conflict_do_nothing(index_elements=["location_id", "day"]))
                if conn.execute(_BOOK, {"l": loc_id, "d": day, "cap": cap}).rowcount != 1:
                    raise Shortage("capacity_full", loc_id)


class _CoreStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.catalog = _Catalog()

    @contextmanager
    def session(self) -> Iterator[_CoreSession]:
        with self.engine.connect() as conn:
            yield _CoreSession(self, conn)


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


_PG_TABLES = [
    t for t, _ in _rows_of(OrderRows({}, [], [], [], [], [], [], [], [], 0, datetime.min))
]
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


class _PgSession:
    def __init__(self, store: _PgStore, pg: Any) -> None:
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
            "days": _days_around(at),
            "at": at,
        }
        read = _Read(None, 0, False, None, None, [], [])
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

        return _assemble(
            self.store.catalog, channel, skus, read, load_policy, load_locations, pickup_id, at
        )

    def write(self, rows: OrderRows) -> None:
        import psycopg

        doc = orjson.dumps({_NAMES[t]: items for t, items in _rows_of(rows)}, default=_decimal)
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


class _PgStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.catalog = _Catalog()

    @contextmanager
    def session(self) -> Iterator[_PgSession]:
        raw = self.engine.raw_connection()
        try:
            pg: Any = raw.driver_connection
            pg.autocommit = True  # each statement is its own transaction
            try:
                yield _PgSession(self, pg)
            finally:
                if not pg.closed and pg.info.transaction_status == 0:
                    pg.autocommit = False
                else:
                    raw.invalidate()
        finally:
            raw.close()
