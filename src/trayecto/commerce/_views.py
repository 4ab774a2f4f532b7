"""Read models of orders: the order as the API shows it, lookups, the customer timeline."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from trayecto.commerce._rows import build_view, iso, money
from trayecto.commerce._store import ViewRows, session_of, view_rows_of
from trayecto.commerce._tables import (
    order_events,
    orders,
)
from trayecto.kernel import NotFoundError


def load_view(conn: Connection, order_id: UUID) -> dict[str, Any]:
    """The order's view inside the caller's transaction."""
    return _built(view_rows_of(conn, order_id))


def get_order(engine: Engine, order_id: UUID) -> dict[str, Any]:
    """The order's view. On PostgreSQL its seven queries go in one round trip, with no
    transaction around them (``Session.view_rows``): an agent's lookup, and the answer to
    an order sent again, cost a fraction of what they did."""
    with session_of(engine) as session:
        return _built(session.view_rows(order_id))


def _built(rows: ViewRows | None) -> dict[str, Any]:
    if rows is None:
        raise NotFoundError("no such order", code="order_not_found", field="id")
    return build_view(*rows)


def find_orders(
    engine: Engine,
    *,
    channel: str | None = None,
    external_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    customer_id: UUID | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Order-status lookup for agents: newest first, a summary per order."""
    query = sa.select(orders).order_by(orders.c.id.desc()).limit(limit)
    if channel:
        query = query.where(orders.c.channel == channel)
    if external_id:
        query = query.where(orders.c.external_id == external_id)
    if email:
        query = query.where(orders.c.customer_email == email)
    if phone:
        query = query.where(orders.c.customer_phone == phone)
    if customer_id:
        query = query.where(orders.c.customer_id == customer_id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "id": str(r.id),
            "channel": r.channel,
            "external_id": r.external_id,
            "status": r.status,
            "total": money(r.total),
            "currency": r.currency,
            "placed_at": iso(r.placed_at),
            "customer_email": r.customer_email,
        }
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One order event as the customer timeline shows it."""

    id: UUID
    occurred_at: datetime
    order_id: UUID
    channel: str
    external_id: str
    kind: str
    from_status: str | None
    to_status: str | None
    total: Decimal
    currency: str
    detail: dict[str, Any] | None


def customer_conditions(
    customer_id: UUID | None,
    emails: Sequence[str],
    phones: Sequence[str],
    customer_numbers: Sequence[str],
    loyalty_cards: Sequence[str],
) -> list[sa.ColumnElement[bool]]:
    """What finds a customer's orders (any of them): linked to ``customer_id``, or carrying
    one of the customer's normalised identifiers (e-mail lower-cased, phone E.164)."""
    conds: list[sa.ColumnElement[bool]] = []
    if customer_id is not None:
        conds.append(orders.c.customer_id == customer_id)
    for col, values in (
        (orders.c.customer_email, emails),
        (orders.c.customer_phone, phones),
        (orders.c.customer_number, customer_numbers),
        (orders.c.loyalty_card, loyalty_cards),
    ):
        if values:
            conds.append(col.in_(list(values)))
    return conds


def order_history(
    engine: Engine,
    *,
    customer_id: UUID | None = None,
    emails: Sequence[str] = (),
    phones: Sequence[str] = (),
    customer_numbers: Sequence[str] = (),
    loyalty_cards: Sequence[str] = (),
) -> Iterator[TimelineEntry]:
    """Every order event of a customer, oldest first: the orders linked to
    ``customer_id`` plus those carrying any of the given (normalised) identifiers."""
    conds = customer_conditions(customer_id, emails, phones, customer_numbers, loyalty_cards)
    if not conds:
        return
    query = (
        sa.select(
            order_events.c.id,
            order_events.c.occurred_at,
            order_events.c.order_id,
            orders.c.channel,
            orders.c.external_id,
            order_events.c.kind,
            order_events.c.from_status,
            order_events.c.to_status,
            orders.c.total,
            orders.c.currency,
            order_events.c.detail,
        )
        .select_from(order_events.join(orders, orders.c.id == order_events.c.order_id))
        .where(sa.or_(*conds))
        .order_by(order_events.c.occurred_at, order_events.c.id)
    )
    with engine.connect() as conn:
        for r in conn.execute(query):
            m = r._mapping
            yield TimelineEntry(
                id=m["id"],
                occurred_at=m["occurred_at"],
                order_id=m["order_id"],
                channel=m["channel"],
                external_id=m["external_id"],
                kind=m["kind"],
                from_status=m["from_status"],
                to_status=m["to_status"],
                total=m["total"],
                currency=m["currency"],
                detail=m["detail"],
            )
