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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from typing import Any, Protocol
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import PoolProxiedConnection

from trayecto.commerce._catalogue import location_from_row
from trayecto.commerce._model import Location
from trayecto.commerce._rows import OrderRows
from trayecto.commerce._snapshot import (
    Catalog,
    Read,
    Snapshot,
    assemble,
    days_around,
)
from trayecto.commerce._sourcing import Policy
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
