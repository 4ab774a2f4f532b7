"""Stock per SKU and location, the append-only movement ledger, and reservations.

The rules that keep stock honest, on SQLite and on PostgreSQL alike:

* every change of ``on_hand`` is one conditional ``UPDATE`` plus one ledger row, in the
  caller's transaction, so ``sum(movements) == on_hand`` always;
* a reservation is ``UPDATE stock SET reserved = reserved + q WHERE … AND on_hand -
  reserved - safety_stock - extra >= q``: the database checks and writes in one step, so
  two channels can never take the same unit (no read-then-write in Python);
* a multi-row change touches rows in one fixed order, ``(location_id, sku)``, so concurrent
  transactions on PostgreSQL queue instead of deadlocking;
* a reservation is closed (released or consumed) by a conditional flip of its status,
  so it is never closed twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from trayecto.commerce._intake import check_when
from trayecto.commerce._model import Movement, MovementKind, Reservation, StockLevel
from trayecto.commerce._tables import (
    location_load,
    locations,
    products,
    reservations,
    stock,
    stock_movements,
)
from trayecto.db import dialect_insert, write_transaction
from trayecto.kernel import ConflictError, NotFoundError, ValidationError, new_id, utcnow


class InsufficientStock(ConflictError):
    """Not enough available units; ``details`` names the SKU and location."""

    default_code = "insufficient_stock"


@dataclass(frozen=True, slots=True)
class Hold:
    """A request to reserve ``quantity`` of ``sku`` at ``location_id``."""

    location_id: str
    sku: str
    quantity: int


# Statements of the hot paths (placing, moving groups on, loading history), built once:
# SQLAlchemy then skips building the expression and its cache key on every call.
_LEDGER = stock_movements.insert()
_TAKE = (
    stock.update()
    .where(stock.c.location_id == sa.bindparam("l"), stock.c.sku == sa.bindparam("s"))
    .values(
        on_hand=stock.c.on_hand - sa.bindparam("q"),
        reserved=stock.c.reserved - sa.bindparam("q"),
        updated_at=sa.bindparam("at_"),
    )
)
_UNRESERVE = (
    stock.update()
    .where(stock.c.location_id == sa.bindparam("l"), stock.c.sku == sa.bindparam("s"))
    .values(reserved=stock.c.reserved - sa.bindparam("q"), updated_at=sa.bindparam("at_"))
)
_CLOSE = (
    reservations.update()
    .where(
        reservations.c.id.in_(sa.bindparam("ids", expanding=True)),
        reservations.c.status == "active",
    )
    .values(status=sa.bindparam("st"), closed_at=sa.bindparam("at_"))
    .returning(reservations.c.location_id, reservations.c.sku, reservations.c.quantity)
)


def _ledger_row(
    location_id: str,
    sku: str,
    kind: MovementKind,
    quantity: int,
    reference: str | None,
    note: str | None,
    at: datetime,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "location_id": location_id,
        "sku": sku,
        "kind": kind.value,
        "quantity": quantity,
        "reference": reference,
        "note": note,
        "created_at": at,
    }


def _ledger(
    conn: Connection,
    location_id: str,
    sku: str,
    kind: MovementKind,
    quantity: int,
    reference: str | None,
    note: str | None = None,
    at: datetime | None = None,
) -> None:
    conn.execute(
        _LEDGER, _ledger_row(location_id, sku, kind, quantity, reference, note, at or utcnow())
    )


def _ensure_row(conn: Connection, location_id: str, sku: str) -> None:
    ins = dialect_insert(conn, stock).values(
        location_id=location_id,
        sku=sku,
        on_hand=0,
        reserved=0,
        safety_stock=0,
        updated_at=utcnow(),
    )
    conn.execute(ins.on_conflict_do_nothing(index_elements=["location_id", "sku"]))


def move(
    conn: Connection,
    location_id: str,
    sku: str,
    kind: MovementKind,
    quantity: int,
    *,
    reference: str | None = None,
    note: str | None = None,
    at: datetime | None = None,
) -> None:
    """Change on hand by ``quantity`` (signed) and record it (at ``at``, else now); refuses
    to go below the reserved units (``insufficient_stock``)."""
    now = at or utcnow()
    if quantity == 0:
        return
    if quantity > 0:
        _ensure_row(conn, location_id, sku)
    result = conn.execute(
        stock.update()
        .where(
            stock.c.location_id == location_id,
            stock.c.sku == sku,
            stock.c.on_hand + quantity >= stock.c.reserved,
        )
        .values(on_hand=stock.c.on_hand + quantity, updated_at=now)
    )
    if result.rowcount != 1:
        raise InsufficientStock(
            f"cannot take {-quantity} of {sku} at {location_id}: not enough unreserved units",
            field="quantity",
            details={"sku": sku, "location_id": location_id},
        )
    _ledger(conn, location_id, sku, kind, quantity, reference, note, at=now)


def set_count(
    conn: Connection,
    location_id: str,
    sku: str,
    on_hand: int,
    *,
    safety_stock: int | None = None,
    reference: str | None = None,
) -> int:
    """Set on hand to a counted value; the difference goes to the ledger as ``count``.

    The row is locked first (``FOR UPDATE`` on PostgreSQL; SQLite writers hold the
    database lock), so the difference is computed against a value no one else can change.
    Returns the difference."""
    _ensure_row(conn, location_id, sku)
    row = conn.execute(
        sa.select(stock.c.on_hand, stock.c.reserved)
        .where(stock.c.location_id == location_id, stock.c.sku == sku)
        .with_for_update()
    ).one()
    if on_hand < int(row.reserved):
        raise ConflictError(
            f"count of {on_hand} is below the {row.reserved} units reserved for orders",
            code="count_below_reserved",
            field="on_hand",
        )
    delta = on_hand - int(row.on_hand)
    values: dict[str, object] = {"on_hand": on_hand, "updated_at": utcnow()}
    if safety_stock is not None:
        values["safety_stock"] = safety_stock
    conn.execute(
        stock.update()
        .where(stock.c.location_id == location_id, stock.c.sku == sku)
        .values(**values)
    )
    if delta:
        _ledger(conn, location_id, sku, MovementKind.COUNT, delta, reference)
    return delta


def _release_expired_at(conn: Connection, location_id: str, sku: str, now: datetime) -> int:
    freed = conn.execute(
        reservations.update()
        .where(
            reservations.c.location_id == location_id,
            reservations.c.sku == sku,
            reservations.c.status == "active",
            reservations.c.expires_at < now,
        )
        .values(status="released", closed_at=now)
        .returning(reservations.c.quantity)
    ).all()
    total = int(sum(r.quantity for r in freed))
    if total:
        conn.execute(
            stock.update()
            .where(stock.c.location_id == location_id, stock.c.sku == sku)
            .values(reserved=stock.c.reserved - total, updated_at=now)
        )
    return total


def reserve(
    conn: Connection,
    holds: Sequence[Hold],
    *,
    kind: str = "order",
    channel: str | None = None,
    extra_safety: int = 0,
    order_id: UUID | None = None,
    expires_at: datetime | None = None,
) -> dict[tuple[str, str], UUID]:
    """Reserve every hold or raise ``InsufficientStock`` (the caller rolls back).

    Holds are merged per (location, SKU) and taken in that order. A hold that does not
    fit first frees that row's expired reservations, then tries once more."""
    merged: dict[tuple[str, str], int] = {}
    for h in holds:
        if h.quantity <= 0:
            raise ValidationError("quantity must be positive", field="quantity")
        merged[(h.location_id, h.sku)] = merged.get((h.location_id, h.sku), 0) + h.quantity
    now = utcnow()
    ids: dict[tuple[str, str], UUID] = {}
    rows = []
    for (location_id, sku), qty in sorted(merged.items()):
        stmt = (
            stock.update()
            .where(
                stock.c.location_id == location_id,
                stock.c.sku == sku,
                stock.c.on_hand - stock.c.reserved - stock.c.safety_stock - extra_safety >= qty,
            )
            .values(reserved=stock.c.reserved + qty, updated_at=now)
        )
        if conn.execute(stmt).rowcount != 1 and (
            not _release_expired_at(conn, location_id, sku, now) or conn.execute(stmt).rowcount != 1
        ):
            raise InsufficientStock(
                f"not enough stock of {sku} at {location_id} for {qty} unit(s)",
                field="lines",
                details={"sku": sku, "location_id": location_id},
            )
        rid = new_id()
        ids[(location_id, sku)] = rid
        rows.append(
            {
                "id": rid,
                "location_id": location_id,
                "sku": sku,
                "quantity": qty,
                "kind": kind,
                "channel": channel,
                "order_id": order_id,
                "group_id": None,
                "status": "active",
                "expires_at": expires_at,
                "created_at": now,
                "closed_at": None,
            }
        )
    if rows:
        conn.execute(reservations.insert(), rows)
    return ids


def book_pick(conn: Connection, location_id: str, day: date, capacity: int) -> None:
    """Book one pick of ``location_id``'s daily capacity on its local ``day``, or raise
    ``capacity_full``: an insert-if-missing, then a conditional update."""
    if capacity >= 1:
        ins = dialect_insert(conn, location_load).values(location_id=location_id, day=day, picks=0)
        conn.execute(ins.on_conflict_do_nothing(index_elements=["location_id", "day"]))
        done = conn.execute(
            location_load.update()
            .where(
                location_load.c.location_id == location_id,
                location_load.c.day == day,
                location_load.c.picks + 1 <= capacity,
            )
            .values(picks=location_load.c.picks + 1)
        )
        if done.rowcount == 1:
            return
    raise InsufficientStock(
        f"location {location_id} reached its daily picking capacity",
        code="capacity_full",
        details={"location_id": location_id},
    )


def _close(
    conn: Connection, ids: Iterable[UUID], status: str, at: datetime | None = None
) -> list[tuple[str, str, int]]:
    id_list = list(ids)
    if not id_list:
        return []
    now = at or utcnow()
    closed = conn.execute(_CLOSE, {"ids": id_list, "st": status, "at_": now}).all()
    return sorted((r.location_id, r.sku, r.quantity) for r in closed)


def release(conn: Connection, ids: Iterable[UUID], *, at: datetime | None = None) -> int:
    """Release active reservations (already closed ones are skipped); units freed. ``at``:
    when it happened (a historic step), else now."""
    total = 0
    now = at or utcnow()
    closed = _close(conn, ids, "released", now)
    if closed:
        conn.execute(
            _UNRESERVE, [{"l": loc, "s": sku, "q": qty, "at_": now} for loc, sku, qty in closed]
        )
        total = sum(qty for _, _, qty in closed)
    return total


def consume(
    conn: Connection,
    ids: Iterable[UUID],
    *,
    kind: MovementKind = MovementKind.SALE,
    reference: str | None = None,
    at: datetime | None = None,
) -> list[tuple[str, str, int]]:
    """Turn active reservations into stock leaving their location (a sale or a transfer
    out): on hand and reserved both drop, and the ledger records it (at ``at``, else now)."""
    now = at or utcnow()
    closed = _close(conn, ids, "consumed", now)
    if closed:
        conn.execute(
            _TAKE, [{"l": loc, "s": sku, "q": qty, "at_": now} for loc, sku, qty in closed]
        )
        conn.execute(
            _LEDGER,
            [_ledger_row(loc, sku, kind, -qty, reference, None, now) for loc, sku, qty in closed],
        )
    return closed


def receive_reserved(
    conn: Connection,
    location_id: str,
    sku: str,
    quantity: int,
    *,
    order_id: UUID | None,
    reference: str | None,
    at: datetime | None = None,
) -> UUID:
    """Units arriving by transfer for a waiting order: on hand and reserved both rise."""
    _ensure_row(conn, location_id, sku)
    now = at or utcnow()
    conn.execute(
        stock.update()
        .where(stock.c.location_id == location_id, stock.c.sku == sku)
        .values(
            on_hand=stock.c.on_hand + quantity,
            reserved=stock.c.reserved + quantity,
            updated_at=now,
        )
    )
    _ledger(conn, location_id, sku, MovementKind.TRANSFER_IN, quantity, reference, at=now)
    rid = new_id()
    conn.execute(
        reservations.insert().values(
            id=rid,
            location_id=location_id,
            sku=sku,
            quantity=quantity,
            kind="order",
            channel=None,
            order_id=order_id,
            group_id=None,
            status="active",
            expires_at=None,
            created_at=now,
            closed_at=None,
        )
    )
    return rid


def release_expired(
    engine: Engine,
    *,
    now: datetime | None = None,
    limit: int = 1000,
    skus: Sequence[str] | None = None,
) -> int:
    """Release reservations whose hold has expired (carts, pending payments), of every
    SKU or only of ``skus``; returns the units freed."""
    now = now or utcnow()
    query = (
        sa.select(reservations.c.id)
        .where(reservations.c.status == "active", reservations.c.expires_at < now)
        .order_by(reservations.c.location_id, reservations.c.sku)
        .limit(limit)
    )
    if skus is not None:
        query = query.where(reservations.c.sku.in_(list(skus)))
    with write_transaction(engine) as conn:
        return release(conn, list(conn.execute(query).scalars()))


def hold_for(
    engine: Engine,
    location_id: str,
    sku: str,
    quantity: int,
    *,
    kind: str,
    expires_at: datetime,
    channel: str | None = None,
) -> Reservation:
    """A cart or pending-payment hold that expires by itself."""
    if kind not in ("cart", "pending_payment"):
        raise ValidationError("kind must be cart or pending_payment", field="kind")
    with write_transaction(engine) as conn:
        ids = reserve(
            conn,
            [Hold(location_id, sku, quantity)],
            kind=kind,
            channel=channel,
            expires_at=expires_at,
        )
    return Reservation(
        ids[(location_id, sku)], location_id, sku, quantity, kind, "active", expires_at
    )


def cancel_hold(engine: Engine, reservation_id: UUID) -> int:
    with write_transaction(engine) as conn:
        exists = conn.execute(
            sa.select(reservations.c.id).where(reservations.c.id == reservation_id)
        ).first()
        if exists is None:
            raise NotFoundError("no such reservation", code="reservation_not_found", field="id")
        return release(conn, [reservation_id])


#: Most units one receipt may bring (a typo of a few zeros is refused, not stored).
MAX_RECEIPT = 1_000_000


def receive_stock(
    engine: Engine,
    location_id: str,
    sku: str,
    quantity: int,
    *,
    reference: str | None = None,
    note: str | None = None,
    at: datetime | None = None,
) -> StockLevel:
    """Goods arrived at a location (a supplier's delivery, a replenishment from the
    warehouse outside trayecto): on hand rises and the ledger records a ``receipt`` (at
    ``at``, else now: a historic receipt may not lie in the future). Returns the new level."""
    if (
        not isinstance(quantity, int)
        or isinstance(quantity, bool)
        or not 1 <= quantity <= MAX_RECEIPT
    ):
        raise ValidationError(
            f"quantity must be a whole number from 1 to {MAX_RECEIPT:,}", field="quantity"
        )
    when = check_when(at)
    with write_transaction(engine) as conn:
        loc = conn.execute(
            sa.select(locations.c.type, locations.c.active).where(locations.c.id == location_id)
        ).first()
        if loc is None:
            raise NotFoundError(
                f"no location {location_id!r}", code="location_not_found", field="location_id"
            )
        if loc.type == "pickup_point" or not loc.active:
            raise ValidationError(
                f"location {location_id} holds no stock (a pickup point, or inactive)",
                code="location_cannot_serve",
                field="location_id",
            )
        if conn.execute(sa.select(products.c.sku).where(products.c.sku == sku)).first() is None:
            raise NotFoundError(f"no product {sku!r}", code="product_not_found", field="sku")
        move(
            conn, location_id, sku, MovementKind.RECEIPT, quantity,
            reference=reference, note=note, at=when,
        )  # fmt: skip
        (level,) = stock_levels(conn, [sku], location_id)
        return level


def stock_levels(
    engine: Engine | Connection, skus: Sequence[str] | None = None, location_id: str | None = None
) -> list[StockLevel]:
    query = sa.select(stock).order_by(stock.c.sku, stock.c.location_id)
    if skus is not None:
        query = query.where(stock.c.sku.in_(list(skus)))
    if location_id is not None:
        query = query.where(stock.c.location_id == location_id)
    if isinstance(engine, Connection):
        rows = engine.execute(query).all()
    else:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    return [StockLevel(r.location_id, r.sku, r.on_hand, r.reserved, r.safety_stock) for r in rows]


def movements(engine: Engine, sku: str, location_id: str | None = None) -> list[Movement]:
    query = sa.select(stock_movements).where(stock_movements.c.sku == sku)
    if location_id:
        query = query.where(stock_movements.c.location_id == location_id)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(stock_movements.c.id)).all()
    return [
        Movement(
            r.id,
            r.location_id,
            r.sku,
            MovementKind(r.kind),
            r.quantity,
            r.reference,
            r.note,
            r.created_at,
        )
        for r in rows
    ]


def check_ledger(engine: Engine) -> list[dict[str, object]]:
    """Every (location, SKU) whose on hand differs from its ledger or whose reserved
    differs from its active reservations; empty when all is consistent."""
    moved = (
        sa.select(
            stock_movements.c.location_id,
            stock_movements.c.sku,
            sa.func.sum(stock_movements.c.quantity).label("moved"),
        )
        .group_by(stock_movements.c.location_id, stock_movements.c.sku)
        .subquery()
    )
    held = (
        sa.select(
            reservations.c.location_id,
            reservations.c.sku,
            sa.func.sum(reservations.c.quantity).label("held"),
        )
        .where(reservations.c.status == "active")
        .group_by(reservations.c.location_id, reservations.c.sku)
        .subquery()
    )
    query = (
        sa.select(
            stock.c.location_id,
            stock.c.sku,
            stock.c.on_hand,
            stock.c.reserved,
            sa.func.coalesce(moved.c.moved, 0).label("moved"),
            sa.func.coalesce(held.c.held, 0).label("held"),
        )
        .select_from(
            stock.outerjoin(
                moved,
                sa.and_(moved.c.location_id == stock.c.location_id, moved.c.sku == stock.c.sku),
            ).outerjoin(
                held,
                sa.and_(held.c.location_id == stock.c.location_id, held.c.sku == stock.c.sku),
            )
        )
        .where(
            sa.or_(
                stock.c.on_hand != sa.func.coalesce(moved.c.moved, 0),
                stock.c.reserved != sa.func.coalesce(held.c.held, 0),
            )
        )
    )
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
