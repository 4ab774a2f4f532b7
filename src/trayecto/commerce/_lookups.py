"""Read models for people looking things up (the console): orders filtered and paged,
a customer's orders with where each shipment is and when it arrives, products by SKU or
name. Newest orders first: order ids are UUIDv7, so the id orders them by placement and
is the cursor."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from trayecto.commerce._catalogue import product_from_row
from trayecto.commerce._model import Product
from trayecto.commerce._tables import fulfilment_groups, orders, products
from trayecto.commerce._views import customer_conditions

__all__ = ["OrderSummary", "ShipmentBrief", "customer_orders", "find_products", "list_orders"]

#: ``status`` filter that matches every ``partially_<status>`` order.
PARTIAL = "partially"


@dataclass(frozen=True, slots=True)
class ShipmentBrief:
    """One fulfilment group: where it is picked, where it goes, and its promise."""

    id: UUID
    method: str
    status: str
    location_id: str
    pickup_location_id: str | None
    #: the promise: earliest delivery (ISO date), ready for pickup (ISO datetime)
    earliest_date: str | None
    ready_at: str | None


@dataclass(frozen=True, slots=True)
class OrderSummary:
    id: UUID
    channel: str
    external_id: str
    status: str
    total: Decimal
    currency: str
    placed_at: datetime
    customer_id: UUID | None
    customer_email: str | None
    shipments: tuple[ShipmentBrief, ...]


def _shipments(conn: Connection, order_ids: Sequence[UUID]) -> dict[UUID, list[ShipmentBrief]]:
    out: dict[UUID, list[ShipmentBrief]] = {oid: [] for oid in order_ids}
    if not order_ids:
        return out
    query = (
        sa.select(fulfilment_groups)
        .where(fulfilment_groups.c.order_id.in_(list(order_ids)))
        .order_by(fulfilment_groups.c.id)
    )
    for r in conn.execute(query):
        promise: dict[str, Any] = r.promise or {}
        out[r.order_id].append(
            ShipmentBrief(
                id=r.id,
                method=r.method,
                status=r.status,
                location_id=r.location_id,
                pickup_location_id=r.pickup_location_id,
                earliest_date=promise.get("earliest_date"),
                ready_at=promise.get("ready_at"),
            )
        )
    return out


def _summaries(conn: Connection, rows: Sequence[Any]) -> list[OrderSummary]:
    groups = _shipments(conn, [r.id for r in rows])
    return [
        OrderSummary(
            id=r.id,
            channel=r.channel,
            external_id=r.external_id,
            status=r.status,
            total=Decimal(r.total).quantize(Decimal("0.01")),
            currency=r.currency,
            placed_at=r.placed_at,
            customer_id=r.customer_id,
            customer_email=r.customer_email,
            shipments=tuple(groups[r.id]),
        )
        for r in rows
    ]


def list_orders(
    engine: Engine,
    *,
    channel: str | None = None,
    status: str | None = None,
    placed_from: datetime | None = None,
    placed_before: datetime | None = None,
    search: str | None = None,
    email: str | None = None,
    after: UUID | None = None,
    limit: int = 25,
) -> tuple[list[OrderSummary], UUID | None]:
    """Orders newest first, filtered, with the cursor of the next page (``after``).

    ``status`` is an order status, or ``"partially"`` for any partly advanced one;
    ``search`` is a channel's external order id or the order's own id; ``email`` a
    normalised customer e-mail."""
    query = sa.select(orders).order_by(orders.c.id.desc()).limit(limit + 1)
    if channel:
        query = query.where(orders.c.channel == channel)
    if status == PARTIAL:
        query = query.where(orders.c.status.like(f"{PARTIAL}\\_%", escape="\\"))
    elif status:
        query = query.where(orders.c.status == status)
    if placed_from is not None:
        query = query.where(orders.c.placed_at >= placed_from)
    if placed_before is not None:
        query = query.where(orders.c.placed_at < placed_before)
    if search:
        conds = [orders.c.external_id == search]
        with contextlib.suppress(ValueError):
            conds.append(orders.c.id == UUID(search))
        query = query.where(sa.or_(*conds))
    if email:
        query = query.where(orders.c.customer_email == email)
    if after is not None:
        query = query.where(orders.c.id < after)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        more = len(rows) > limit
        page = _summaries(conn, rows[:limit])
    return page, (page[-1].id if more and page else None)


def customer_orders(
    engine: Engine,
    *,
    customer_id: UUID | None = None,
    emails: Sequence[str] = (),
    phones: Sequence[str] = (),
    customer_numbers: Sequence[str] = (),
    loyalty_cards: Sequence[str] = (),
    limit: int = 20,
) -> tuple[list[OrderSummary], bool]:
    """A customer's orders, newest first, found as ``order_history`` finds them (linked to
    ``customer_id`` or carrying one of the normalised identifiers), and whether there are
    more than ``limit``."""
    conds = customer_conditions(customer_id, emails, phones, customer_numbers, loyalty_cards)
    if not conds:
        return [], False
    query = sa.select(orders).where(sa.or_(*conds)).order_by(orders.c.id.desc()).limit(limit + 1)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        return _summaries(conn, rows[:limit]), len(rows) > limit


def find_products(engine: Engine, text: str, *, limit: int = 20) -> list[Product]:
    """Products whose SKU starts with ``text`` or whose name contains it (any case),
    exact SKU first."""
    text = text.strip()
    if not text:
        return []
    pattern = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    exact = sa.case((products.c.sku == text, 0), else_=1)
    query = (
        sa.select(products)
        .where(
            sa.or_(
                sa.func.lower(products.c.sku).like(f"{pattern}%", escape="\\"),
                sa.func.lower(products.c.name).like(f"%{pattern}%", escape="\\"),
            )
        )
        .order_by(exact, products.c.sku)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [product_from_row(r._mapping) for r in conn.execute(query)]
