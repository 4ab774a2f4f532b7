"""The hot path of order placement, per database: one read, then one write, for a whole
batch of orders.

Each round of ``place_orders`` needs a snapshot of what is available to the batch's orders
and, once the engine has chosen for each, one atomic write of them all. Both are single
statements on PostgreSQL; the rest of what placement needs is cached in the process and
validated by the snapshot itself:

* every location, with the newest ``locations.updated_at`` it was read at (the snapshot
  reads ``max(updated_at)`` through an index; when it moved, the locations are reloaded);
* each channel's policy, with its ``updated_at`` (read by the same statement).

The snapshot (``Read``): the available units of the batch's SKUs per location (stock rows
only, no join), the versions, the orders already stored under the batch's keys, and the
booked picks of the locations holding the SKUs. The orders of a batch are sourced in turn
on it, each taking its units off (``Read.take``).

The write (``Session.write_many``) answers each order: written, ``Shortage`` (a hold did
not fit: nothing of that order is kept) or ``Duplicate`` (its (channel, external id) is
already stored). Stock and capacity rows are locked in one fixed order (stock rows by
(location, SKU), then capacity rows by (location, day)):

* PostgreSQL: ONE statement, ``trayecto_place()`` (migration 0008), in autocommit mode, so
  it is its own transaction and no client round trip ever happens inside it. Every row of
  every order travels in one JSON document (one ``orjson.dumps``) that the server expands
  with ``jsonb_populate_recordset``. Row locks live from the holds to the commit.
* SQLite (and any other database): one write transaction through SQLAlchemy Core, each
  order in a savepoint with its rows and then its conditional updates; SQLite's database
  lock serialises writers anyway.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import PoolProxiedConnection

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
    returns,
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


#: An order's rows as its view shows them (``_views.build_view``): the order, then its
#: lines, fulfilment groups, allocations, payments, history and returns, each list in the
#: view's order.
ViewRows = tuple[
    Mapping[Any, Any],
    Sequence[Mapping[Any, Any]],
    Sequence[Mapping[Any, Any]],
    Sequence[Mapping[Any, Any]],
    Sequence[Mapping[Any, Any]],
    Sequence[Mapping[Any, Any]],
    Sequence[Mapping[Any, Any]],
]
#: The child tables of ``ViewRows``, each with the column its rows are listed by.
VIEW_TABLES = (
    (order_lines, "line_no"),
    (fulfilment_groups, "id"),
    (allocations, "id"),
    (payments, "id"),
    (order_events, "id"),
    (returns, "id"),
)


def view_rows_of(conn: Connection, order_id: UUID) -> ViewRows | None:
    """The rows of the order's view, one query a table (any database); None when there is
    no such order."""
    row = conn.execute(sa.select(orders).where(orders.c.id == order_id)).first()
    if row is None:
        return None
    lines, groups, allocs, pays, events, rets = (
        [
            r._mapping
            for r in conn.execute(
                sa.select(table).where(table.c.order_id == order_id).order_by(table.c[by])
            )
        ]
        for table, by in VIEW_TABLES
    )
    return row._mapping, lines, groups, allocs, pays, events, rets


@dataclass(frozen=True, slots=True)
class Snapshot:
    existing: UUID | None  # the order already stored under (channel, external id)
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
    """Every location as read at ``version`` (their newest ``updated_at``), the policies
    by channel, each with its own ``updated_at``, and the SKUs found in the catalogue so
    far (a product is never deleted, so a SKU once found stays known)."""

    version: datetime | None = None
    loaded: bool = False
    locations: dict[str, tuple[Location, Site]] = field(default_factory=dict)
    policies: dict[str, tuple[datetime | None, Policy]] = field(default_factory=dict)
    skus: set[str] = field(default_factory=set)


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
    """What one snapshot statement returned, for one order or a batch of them. ``atp`` is
    shared by the orders of a batch: each order sourced takes its units (and its picks)
    off it, so the next one is sourced on what is left."""

    existing: dict[tuple[str, str], UUID]  # (channel, external id) -> the stored order
    expired_holds: bool
    policy_at: dict[str, datetime | None]  # channel -> its policy's updated_at (None: none)
    locations_at: datetime | None
    atp: dict[tuple[str, str], int]  # (location, SKU) -> on hand - reserved - safety, > 0
    by_sku: dict[str, list[str]]  # SKU -> the locations in ``atp``, in the order read
    loads: dict[tuple[str, date], int]  # (location, day) -> picks booked, around today

    @classmethod
    def empty(cls) -> Read:
        return cls({}, False, {}, None, {}, {}, {})

    def add_stock(self, location_id: str, sku: str, atp: int) -> None:
        self.atp[(location_id, sku)] = atp
        self.by_sku.setdefault(sku, []).append(location_id)

    def take(
        self, holds: Iterable[tuple[str, str, int]], picks: Iterable[tuple[str, date]]
    ) -> None:
        """Book an order's units and picks in the snapshot (for the next order of a batch)."""
        for loc_id, sku, qty in holds:
            self.atp[(loc_id, sku)] = self.atp.get((loc_id, sku), 0) - qty
        for key in picks:
            self.loads[key] = self.loads.get(key, 0) + 1


def assemble(
    catalog: Catalog,
    channel: str,
    external_id: str,
    skus: Sequence[str],
    read: Read,
    load_policy: Callable[[str], Policy],
    load_locations: Callable[[], Iterable[Location]],
    pickup_id: str | None,
    at: datetime,
) -> Snapshot:
    """One order's snapshot from what was read, refreshing the cache first when it is
    stale."""
    policy_at = read.policy_at.get(channel)
    cached = catalog.policies.get(channel)
    if cached is None or cached[0] != policy_at:
        cached = (policy_at, load_policy(channel) if policy_at is not None else Policy())
        catalog.policies[channel] = cached
    policy = cached[1]
    if not catalog.loaded or catalog.version != read.locations_at:
        catalog.locations = {loc.id: (loc, _site(loc, None)) for loc in load_locations()}
        catalog.version, catalog.loaded = read.locations_at, True
    entries = catalog.locations
    locs: dict[str, Location] = {}
    sites: list[Site] = []
    available: dict[tuple[str, str], int] = {}
    extra = policy.safety_stock
    loads = read.loads

    def add(loc_id: str) -> Location | None:
        entry = entries.get(loc_id)
        if entry is None:  # created after the snapshot's version: next time
            return None
        loc, site = entry
        locs[loc_id] = loc
        if loc.daily_capacity is not None:
            site = _site(loc, loads.get((loc_id, local_day(loc, at))))
        sites.append(site)
        return loc

    atp = read.atp
    for sku in skus:
        for loc_id in read.by_sku.get(sku, ()):
            if loc_id not in locs and add(loc_id) is None:
                continue
            left = atp[(loc_id, sku)]
            if left > extra:
                available[(loc_id, sku)] = left - extra
    pickup = None
    if pickup_id is not None and pickup_id in entries:
        pickup = locs.get(pickup_id) or add(pickup_id)
    return Snapshot(
        read.existing.get((channel, external_id)),
        read.expired_holds,
        policy,
        pickup,
        locs,
        sites,
        available,
    )


# --- the stores -------------------------------------------------------------------------------


class Session:
    """One pooled connection's reads and writes of order placement, and its read of an
    order's view (one per database)."""

    store: Store  # the store, with its cache

    def read(
        self,
        keys: Sequence[tuple[str, str]],
        skus: Sequence[str],
        at: datetime,
        days: Sequence[date] = (),
    ) -> Read:
        """One snapshot for the orders ``keys`` ((channel, external id)) of ``skus`` at
        ``at``: picks are read for ``days`` (default: the days around ``at``)."""
        raise NotImplementedError

    def load_policy(self, channel: str) -> Policy:
        raise NotImplementedError

    def unknown_skus(self, skus: Sequence[str]) -> list[str]:
        """Those of ``skus`` that are not in the catalogue: asked of the database only for
        those not found before."""
        known = self.store.catalog.skus
        todo = [s for s in skus if s not in known]
        if not todo:
            return []
        missing = self.missing_skus(todo)
        known.update(s for s in todo if s not in missing)
        return missing

    def missing_skus(self, skus: Sequence[str]) -> list[str]:
        """Those of ``skus`` that are not in the catalogue (a query)."""
        raise NotImplementedError

    def load_locations(self) -> Iterable[Location]:
        raise NotImplementedError

    def view_rows(self, order_id: UUID) -> ViewRows | None:
        """The rows of the order's view (``view_rows_of``); None when there is no such
        order."""
        raise NotImplementedError

    def write_many(self, batch: Sequence[OrderRows]) -> list[Shortage | Duplicate | None]:
        """Write every order of ``batch`` that fits in ONE transaction; each answer says
        what kept that order out (nothing of it is kept), or None when it is written."""
        raise NotImplementedError

    def assemble(
        self,
        read: Read,
        channel: str,
        external_id: str,
        skus: Sequence[str],
        pickup_id: str | None,
        at: datetime,
    ) -> Snapshot:
        return assemble(
            self.store.catalog,
            channel,
            external_id,
            skus,
            read,
            self.load_policy,
            self.load_locations,
            pickup_id,
            at,
        )

    def snapshot(
        self,
        channel: str,
        external_id: str,
        skus: Sequence[str],
        pickup_id: str | None,
        at: datetime,
    ) -> Snapshot:
        read = self.read([(channel, external_id)], skus, at)
        return self.assemble(read, channel, external_id, skus, pickup_id, at)


class Lease:
    """A pooled connection that a caller keeps across placements: the order desk's lane
    keeps one while orders are waiting, so a batch does not pay the pool's check-out, its
    liveness ping (a round trip) and the check-in. Taken from the pool at the first
    placement that needs it (PostgreSQL's store; the portable one checks out per session);
    ``release()`` gives it back, and the caller releases it whenever it is about to wait,
    so an idle connection is pinged again before use. A connection that fails, or that a
    statement left inside a transaction, is dropped (``forget``): the next placement
    checks out a fresh, pinged one."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.raw: PoolProxiedConnection | None = None
        #: connections taken from the pool (how often the lease was renewed)
        self.checkouts = 0

    def connection(self) -> PoolProxiedConnection:
        if self.raw is None:
            self.raw = self.engine.raw_connection()
            self.checkouts += 1
        return self.raw

    def forget(self) -> None:
        """Drop the connection (it failed): closed, never returned to the pool."""
        raw, self.raw = self.raw, None
        if raw is not None:
            raw.invalidate()
            raw.close()

    def release(self) -> None:
        raw, self.raw = self.raw, None
        if raw is not None:
            raw.close()


class Store(Protocol):
    catalog: Catalog

    def session(
        self, engine: Engine, lease: Lease | None = None
    ) -> AbstractContextManager[Session]: ...


_STORES: weakref.WeakKeyDictionary[Engine, Store] = weakref.WeakKeyDictionary()


def store_for(engine: Engine) -> Store:
    """The store of ``engine`` (PostgreSQL's fast path or the portable one) with its
    caches; one per engine, kept while the engine lives (the store holds no reference to
    it: ``session(engine)`` is given it each time)."""
    found = _STORES.get(engine)
    if found is None:
        if engine.dialect.name == "postgresql":
            from trayecto.commerce._store_pg import PgStore

            found = PgStore()
        else:
            found = _CoreStore()
        _STORES[engine] = found
    return found


@contextmanager
def session_of(engine: Engine, lease: Lease | None = None) -> Iterator[Session]:
    """A session of ``engine``'s store (placement, an order's view) on one pooled
    connection (the ``lease``'s, when one is given and the store uses it)."""
    with store_for(engine).session(engine, lease) as session:
        yield session


# --- portable: SQLAlchemy Core ----------------------------------------------------------------

_ATP = stock.c.on_hand - stock.c.reserved - stock.c.safety_stock
_STOCK = sa.select(stock.c.location_id, stock.c.sku, _ATP.label("atp")).where(
    stock.c.sku.in_(sa.bindparam("skus", expanding=True)), _ATP > 0
)
_EXPIRED = sa.exists().where(
    reservations.c.status == "active",
    reservations.c.expires_at < sa.bindparam("at"),
    reservations.c.sku.in_(sa.bindparam("skus", expanding=True)),
)
_KNOWN = sa.select(products.c.sku).where(products.c.sku.in_(sa.bindparam("skus", expanding=True)))
_LOCATIONS_AT = sa.select(sa.func.max(locations.c.updated_at)).scalar_subquery()


@functools.lru_cache(maxsize=64)
def _head(keys: int, channels: int) -> sa.Select[Any]:
    """One row: expired holds?, the locations' version, the stored order of each key
    (``c<i>``, ``e<i>``) and the policy version of each channel (``p<j>``)."""
    return sa.select(
        _EXPIRED,
        _LOCATIONS_AT,
        *(
            sa.select(orders.c.id)
            .where(
                orders.c.channel == sa.bindparam(f"c{i}"),
                orders.c.external_id == sa.bindparam(f"e{i}"),
            )
            .scalar_subquery()
            for i in range(keys)
        ),
        *(
            sa.select(channel_policies.c.updated_at)
            .where(channel_policies.c.channel == sa.bindparam(f"p{j}"))
            .scalar_subquery()
            for j in range(channels)
        ),
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


class _CoreSession(Session):
    def __init__(self, store: _CoreStore, conn: Connection) -> None:
        self.store = store
        self.conn = conn

    def read(
        self,
        keys: Sequence[tuple[str, str]],
        skus: Sequence[str],
        at: datetime,
        days: Sequence[date] = (),
    ) -> Read:
        conn = self.conn
        read = Read.empty()
        days = sorted(days or days_around(at))
        channels = sorted({c for c, _ in keys})
        params: dict[str, Any] = {"skus": list(skus), "at": at}
        for i, (channel, external_id) in enumerate(keys):
            params[f"c{i}"], params[f"e{i}"] = channel, external_id
        for j, channel in enumerate(channels):
            params[f"p{j}"] = channel
        with conn.begin():
            head = conn.execute(_head(len(keys), len(channels)), params).one()
            read.expired_holds, read.locations_at = bool(head[0]), head[1]
            for i, key in enumerate(keys):
                if head[2 + i] is not None:
                    read.existing[key] = head[2 + i]
            read.policy_at = dict(zip(channels, head[2 + len(keys) :], strict=True))
            for loc_id, sku, atp in conn.execute(_STOCK, {"skus": list(skus)}):
                read.add_stock(loc_id, sku, atp)
            for loc_id, day, picks in conn.execute(_LOADS, {"skus": list(skus), "days": days}):
                read.loads[(loc_id, day)] = picks
        return read

    def missing_skus(self, skus: Sequence[str]) -> list[str]:
        with self.conn.begin():
            known = set(self.conn.execute(_KNOWN, {"skus": list(skus)}).scalars())
        return [s for s in skus if s not in known]

    def load_policy(self, channel: str) -> Policy:
        with self.conn.begin():
            return Policy.from_config(self.conn.execute(_POLICY, {"channel": channel}).scalar())

    def load_locations(self) -> list[Location]:
        with self.conn.begin():
            rows = self.conn.execute(sa.select(locations)).all()
        return [location_from_row(r._mapping) for r in rows]

    def view_rows(self, order_id: UUID) -> ViewRows | None:
        with self.conn.begin():
            return view_rows_of(self.conn, order_id)

    def write_many(self, batch: Sequence[OrderRows]) -> list[Shortage | Duplicate | None]:
        """One write transaction (SQLite's one writer turn, one commit), each order in a
        savepoint of its own."""
        conn = self.conn.execution_options(sqlite_immediate=True)
        if len(batch) == 1:  # the transaction is the savepoint
            try:
                with conn.begin():
                    self._write(conn, batch[0])
            except (Shortage, Duplicate) as exc:
                return [exc]
            return [None]
        answers: list[Shortage | Duplicate | None] = []
        with conn.begin():
            for rows in batch:
                savepoint = conn.begin_nested()
                try:
                    self._write(conn, rows)
                except (Shortage, Duplicate) as exc:
                    savepoint.rollback()
                    answers.append(exc)
                else:
                    savepoint.commit()
                    answers.append(None)
        return answers

    @staticmethod
    def _write(conn: Connection, rows: OrderRows) -> None:
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
            new = dialect_insert(conn, location_load).values(location_id=loc_id, day=day, picks=0)
            conn.execute(new.on_conflict_do_nothing(index_elements=["location_id", "day"]))
            if conn.execute(_BOOK, {"l": loc_id, "d": day, "cap": cap}).rowcount != 1:
                raise Shortage("capacity_full", loc_id)


class _CoreStore:
    def __init__(self) -> None:
        self.catalog = Catalog()

    @contextmanager
    def session(self, engine: Engine, lease: Lease | None = None) -> Iterator[_CoreSession]:
        # the lease is not used: SQLite's connections are local, its check-out cheap
        with engine.connect() as conn:
            yield _CoreSession(self, conn)
