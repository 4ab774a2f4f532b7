"""After placement: fulfilment groups move through their state machine, with the stock
effects of each step, the history, and the order's derived status; linking orders to a
resolved customer.

Stock effects: ``shipped`` consumes the group's reservations (a sale for home delivery; a
transfer out and a transfer in, re-reserved at the shop, when the group travels to a shop
or pickup point); ``collected`` consumes the reservations at the shop (a sale);
``cancelled`` releases them.

Every step is recorded at ``at`` when given (a historic order walked through the states
it went through, e.g. the demo's simulated year), else now: the history row, the stock
ledger rows and the reservations' closing times. ``advance_steps`` walks several steps of
an order's groups in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from trayecto.commerce._intake import check_when
from trayecto.commerce._inventory import consume, receive_reserved, release
from trayecto.commerce._model import (
    GroupStatus,
    Method,
    MovementKind,
    check_transition,
    order_status,
)
from trayecto.commerce._tables import allocations, fulfilment_groups, order_events, orders
from trayecto.commerce._views import customer_conditions, load_view
from trayecto.db import write_transaction
from trayecto.kernel import NotFoundError, ValidationError, new_id, utcnow

# Statements run for every step of every order, built once (no expression nor cache key
# to build on each call).
_HOLDS_OF_GROUP = (
    sa.select(allocations.c.reservation_id)
    .where(allocations.c.group_id == sa.bindparam("g"))
    .distinct()
)
_MOVE_GROUP = (
    fulfilment_groups.update()
    .where(fulfilment_groups.c.id == sa.bindparam("g"))
    .values(status=sa.bindparam("st"), updated_at=sa.bindparam("at_"))
)
_GROUP_STATUSES = sa.select(fulfilment_groups.c.status).where(
    fulfilment_groups.c.order_id == sa.bindparam("o")
)
_ORDER_STATUS = sa.select(orders.c.status).where(orders.c.id == sa.bindparam("o"))
_SET_ORDER_STATUS = (
    orders.update()
    .where(orders.c.id == sa.bindparam("o"))
    .values(status=sa.bindparam("st"), updated_at=sa.bindparam("at_"))
)
_EVENTS = order_events.insert()


@dataclass(slots=True)
class Known:
    """An order's status and all its groups as the caller holds them, locked: moving
    several groups in one transaction then needs no query to tell the order's status."""

    status: str
    groups: dict[UUID, Any]


def reservation_ids(conn: Connection, group_id: UUID) -> list[UUID]:
    ids = conn.execute(_HOLDS_OF_GROUP, {"g": group_id}).scalars()
    return sorted(i for i in ids if i is not None)


def apply_status(
    conn: Connection,
    order_id: UUID,
    group: Any,
    target: GroupStatus,
    note: str | None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
    known: Known | None = None,
) -> None:
    """Move ``group`` to ``target`` (checked), with the stock it implies and the history
    rows; the order's status follows. With ``known``, ``group`` is one of its groups and
    both are kept current."""
    method = Method(group.method)
    transfer = (
        group.pickup_location_id is not None and group.pickup_location_id != group.location_id
    )
    current = GroupStatus(group.status)
    check_transition(current, target, method, transfer)
    ref = f"order:{order_id}"
    now = at or utcnow()
    if target is GroupStatus.CANCELLED or target is GroupStatus.REJECTED:
        release(conn, reservation_ids(conn, group.id), at=now)
    elif target is GroupStatus.SHIPPED and transfer:
        moved = consume(
            conn,
            reservation_ids(conn, group.id),
            kind=MovementKind.TRANSFER_OUT,
            reference=ref,
            at=now,
        )
        for _, sku, qty in moved:
            rid = receive_reserved(
                conn, group.pickup_location_id, sku, qty, order_id=order_id, reference=ref, at=now
            )
            conn.execute(
                allocations.update()
                .where(allocations.c.group_id == group.id, allocations.c.sku == sku)
                .values(reservation_id=rid)
            )
    elif target is GroupStatus.SHIPPED or target is GroupStatus.COLLECTED:
        consume(
            conn, reservation_ids(conn, group.id), kind=MovementKind.SALE, reference=ref, at=now
        )
    conn.execute(_MOVE_GROUP, {"g": group.id, "st": target.value, "at_": now})
    events = [
        {
            "id": new_id(),
            "order_id": order_id,
            "group_id": group.id,
            "kind": "group_status",
            "from_status": current.value,
            "to_status": target.value,
            "detail": {**({"note": note} if note else {}), **(detail or {})} or None,
            "occurred_at": now,
        }
    ]
    if known is not None:
        group.status = target.value
    change = refresh_status(conn, order_id, now, known)
    if change is not None:
        events.append(change)
    conn.execute(_EVENTS, events)


def refresh_status(
    conn: Connection, order_id: UUID, now: Any, known: Known | None = None
) -> dict[str, Any] | None:
    """Set the order's status from its groups'; the history row of the change, if any
    (for the caller to insert). ``known``: the statuses as the caller holds them."""
    if known is None:
        statuses = list(conn.execute(_GROUP_STATUSES, {"o": order_id}).scalars())
        old = conn.execute(_ORDER_STATUS, {"o": order_id}).scalar_one()
    else:
        statuses, old = [g.status for g in known.groups.values()], known.status
    new_status = order_status(GroupStatus(s) for s in statuses)
    if new_status == old:
        return None
    conn.execute(_SET_ORDER_STATUS, {"o": order_id, "st": new_status, "at_": now})
    if known is not None:
        known.status = new_status
    return {
        "id": new_id(),
        "order_id": order_id,
        "group_id": None,
        "kind": "order_status",
        "from_status": old,
        "to_status": new_status,
        "detail": None,
        "occurred_at": now,
    }


def lock_groups(conn: Connection, order_id: UUID) -> list[Any]:
    """The order's groups, locked (``FOR UPDATE``, in id order) against concurrent moves."""
    exists = conn.execute(
        sa.select(orders.c.id).where(orders.c.id == order_id).with_for_update()
    ).first()
    if exists is None:
        raise NotFoundError("no such order", code="order_not_found", field="id")
    return list(
        conn.execute(
            sa.select(fulfilment_groups)
            .where(fulfilment_groups.c.order_id == order_id)
            .order_by(fulfilment_groups.c.id)
            .with_for_update()
        )
    )


def _target(status: str) -> GroupStatus:
    try:
        target = GroupStatus(status)
    except ValueError:
        allowed = ", ".join(s.value for s in GroupStatus)
        raise ValidationError(f"status must be one of: {allowed}", field="status") from None
    if target is GroupStatus.REJECTED:
        raise ValidationError(
            "a location rejects a group with POST …/groups/{id}/reject (it is re-sourced)",
            field="status",
        )
    return target


def advance_group(
    engine: Engine,
    order_id: UUID,
    group_id: UUID,
    status: str,
    *,
    note: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Move one fulfilment group to ``status`` (``illegal_transition`` if it may not),
    recorded at ``at`` (a past time, not before the group's last change) or now."""
    view = advance_steps(engine, order_id, [(group_id, status, at)], note=note)
    assert view is not None
    return view


def advance_steps(
    engine: Engine,
    order_id: UUID,
    steps: Sequence[tuple[UUID, str, datetime | None]],
    *,
    note: str | None = None,
    answer: bool = True,
) -> dict[str, Any] | None:
    """Walk ``steps`` (group id, status, time or None for now), in order, in one
    transaction: each must be a legal move of its group at a time not before the group's
    last change nor in the future; the first that is not rolls back all of them. Returns
    the order's view, or None with ``answer=False`` (a bulk loader that does not read it)."""
    targets = [(group_id, _target(status), at) for group_id, status, at in steps]
    with write_transaction(engine) as conn:
        groups = {g.id: SimpleNamespace(**g._mapping) for g in lock_groups(conn, order_id)}
        known = Known(conn.execute(_ORDER_STATUS, {"o": order_id}).scalar_one(), groups)
        for i, (group_id, target, at) in enumerate(targets):
            group = groups.get(group_id)
            if group is None:
                raise NotFoundError(
                    "no such fulfilment group in this order",
                    code="group_not_found",
                    field="group_id",
                )
            field = f"steps.{i}.at" if len(targets) > 1 else "at"
            when = check_when(at, group.updated_at, field)
            apply_status(conn, order_id, group, target, note, at=when, known=known)
            group.updated_at = when
        return load_view(conn, order_id) if answer else None


def cancel_order(engine: Engine, order_id: UUID, *, note: str | None = None) -> dict[str, Any]:
    """Cancel every group that may still be cancelled; others keep their course."""
    with write_transaction(engine) as conn:
        for group in lock_groups(conn, order_id):
            current = GroupStatus(group.status)
            if current in (
                GroupStatus.SHIPPED,
                GroupStatus.DELIVERED,
                GroupStatus.COLLECTED,
                GroupStatus.CANCELLED,
                GroupStatus.REJECTED,
            ):
                continue
            apply_status(conn, order_id, group, GroupStatus.CANCELLED, note)
        return load_view(conn, order_id)


def link_customer(
    engine: Engine,
    customer_id: UUID,
    *,
    emails: Sequence[str] = (),
    phones: Sequence[str] = (),
    customer_numbers: Sequence[str] = (),
    loyalty_cards: Sequence[str] = (),
) -> int:
    """The identity hook: set ``customer_id`` on every order carrying any of the given
    normalised identifiers (e-mail lower-cased, phone E.164). Returns the orders changed.
    Re-linking after a merge or unmerge is the same call with the new id."""
    conds = customer_conditions(None, emails, phones, customer_numbers, loyalty_cards)
    if not conds:
        return 0
    with write_transaction(engine) as conn:
        result = conn.execute(
            orders.update()
            .where(sa.or_(*conds))
            .where(sa.or_(orders.c.customer_id.is_(None), orders.c.customer_id != customer_id))
            .values(customer_id=customer_id)
        )
        return int(result.rowcount)
