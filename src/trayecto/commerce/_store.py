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
from typing import Any, Protocol
from uuid import UUID
from zoneinfo import ZoneInfo

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


def days_around(at: datetime) -> list[date]:
    """Every calendar day some time zone is in at ``at`` (UTC-12 to UTC+14)."""
    today = at.date()
    return [today - timedelta(days=1), today, today + timedelta(days=1)]


def rows_of(rows: OrderRows) -> list[tuple[sa.Table, list[dict[str, Any]]]]:
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
class Catalog:
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
class Read:
    """What one snapshot statement returned."""

    existing: UUID | None
    known_skus: int
    expired_holds: bool
    policy_at: datetime | None
    locations_at: datetime | None
    stock: list[tuple[str, str, int]]  # (location, SKU, on hand - reserved - safety)
    loads: list[tuple[str, date, int]]  # (location, day, picks) around today


def assemble(
    catalog: Catalog,
    channel: str,
    skus: Sequence[str],
    read: Read,
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
        if engine.dialect.name == "postgresql":
            from trayecto.commerce._store_pg import PgStore

            found = PgStore(engine)
        else:
            found = _CoreStore(engine)
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
            read = Read(
                head[0],
                head[1],
                bool(head[2]),
                head[3],
                head[4],
                [(r[0], r[1], r[2]) for r in conn.execute(_STOCK, {"skus": list(skus)})],
                [
                    (r[0], r[1], r[2])
                    for r in conn.execute(_LOADS, {"skus": list(skus), "days": days_around(at)})
                ],
            )
            return assemble(
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
            for table, items in rows_of(rows)[1:]:
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
        self.catalog = Catalog()

    @contextmanager
    def session(self) -> Iterator[_CoreSession]:
        with self.engine.connect() as conn:
            yield _CoreSession(self, conn)
