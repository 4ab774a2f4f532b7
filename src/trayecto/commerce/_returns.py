"""Returns anywhere: an online order brought back to a shop, a shop order sent back by post.

A return (an RMA; its id is the RMA number) goes ``requested → received → inspected →
refunded``, or ``requested → cancelled``:

* **requested** (``request_return``): which units of which lines, why, how (``in_store``
  at a location with the ``returns`` capability, or ``by_post`` to one: by default the
  first active warehouse that takes returns). Only units the customer has (their group
  delivered or collected) and not already returned may be returned. An **exchange** is
  this return plus a new order for the replacement, paid by the returned goods' value
  (a payment of method ``exchange``);
* **received** (``receive_return``): the parcel arrived or the customer handed it over;
* **inspected** (``inspect_return``): per SKU a condition and a decision, applied to stock
  through the ledger: ``restock`` (a ``return`` movement into a location's sellable
  stock; when that is not where it was received, a ``transfer_out``/``transfer_in``
  follows), ``write_off`` (``return`` then an ``adjustment`` out, so the ledger shows
  both), or ``reject`` (sent back to the customer: no stock change, nothing refunded);
* **refunded** (``refund_return``): the refund, less any exchange credit, is recorded
  against the order's original payments (``kind = refund``, ``refund_of`` the payment),
  never more than each payment was.

Every step is a row of the order's history (``order_events``), so the customer timeline
shows it. Steps lock the return (and requests the order) so concurrent steps queue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from trayecto.commerce._catalogue import location_from_row
from trayecto.commerce._intake import (
    Customer,
    OrderRequest,
    PaymentRequest,
    check_order,
    check_when,
)
from trayecto.commerce._lifecycle import cancel_order
from trayecto.commerce._model import (
    Capability,
    GroupStatus,
    Location,
    LocationType,
    PaymentMethod,
)
from trayecto.commerce._placement import place_order
from trayecto.commerce._return_requests import ReturnLine, ReturnRequest
from trayecto.commerce._rows import event_row
from trayecto.commerce._tables import (
    allocations,
    fulfilment_groups,
    locations,
    order_events,
    order_lines,
    orders,
    payments,
    return_lines,
    returns,
)
from trayecto.db import write_transaction
from trayecto.kernel import (
    ConflictError,
    NotFoundError,
    TrayectoError,
    ValidationError,
    new_id,
    utcnow,
)

CENT = Decimal("0.01")
_WITH_CUSTOMER = (GroupStatus.DELIVERED.value, GroupStatus.COLLECTED.value)
_OPEN = ("requested", "received", "inspected", "refunded")  # not cancelled


# --- reading ---------------------------------------------------------------------------------


def _money(value: Any) -> str | None:
    return None if value is None else str(Decimal(value).quantize(CENT))


def return_view(conn: Connection, return_id: UUID) -> dict[str, Any]:
    ret = conn.execute(sa.select(returns).where(returns.c.id == return_id)).first()
    if ret is None:
        raise NotFoundError("no such return", code="return_not_found", field="return_id")
    lines = conn.execute(
        sa.select(return_lines)
        .where(return_lines.c.return_id == return_id)
        .order_by(return_lines.c.sku, return_lines.c.id)
    ).all()
    refunds = conn.execute(
        sa.select(payments).where(payments.c.return_id == return_id).order_by(payments.c.id)
    ).all()
    return {
        "id": str(ret.id),
        "rma": f"RMA-{str(ret.id)[-12:].upper()}",
        "order_id": str(ret.order_id),
        "status": ret.status,
        "method": ret.method,
        "channel": ret.channel,
        "location_id": ret.location_id,
        "reason": ret.reason,
        "created_at": ret.created_at.isoformat(),
        "updated_at": ret.updated_at.isoformat(),
        "lines": [
            {
                "sku": ln.sku,
                "quantity": ln.quantity,
                "reason": ln.reason,
                "condition": ln.condition,
                "decision": ln.decision,
                "restock_location_id": ln.restock_location_id,
                "refund_amount": _money(ln.refund_amount),
            }
            for ln in lines
        ],
        "exchange_order_id": str(ret.exchange_order_id) if ret.exchange_order_id else None,
        "refund_total": _money(ret.refund_total),
        "refunds": [
            {
                "method": p.method,
                "amount": _money(p.amount),
                "currency": p.currency,
                "refund_of": str(p.refund_of) if p.refund_of else None,
                "reference": p.reference,
                "recorded_at": p.recorded_at.isoformat(),
            }
            for p in refunds
        ],
    }


def get_return(engine: Engine, return_id: UUID) -> dict[str, Any]:
    with engine.connect() as conn:
        return return_view(conn, return_id)


def list_returns(engine: Engine, order_id: UUID) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        if conn.execute(sa.select(orders.c.id).where(orders.c.id == order_id)).first() is None:
            raise NotFoundError("no such order", code="order_not_found", field="id")
        ids = conn.execute(
            sa.select(returns.c.id).where(returns.c.order_id == order_id).order_by(returns.c.id)
        ).scalars()
        return [return_view(conn, rid) for rid in list(ids)]


def _returnable(conn: Connection, order_id: UUID) -> dict[str, list[tuple[Any, int, Decimal]]]:
    """Per SKU, in line order: (line id, units the customer has and has not returned, the
    value of one unit after the line's discount)."""
    lines = conn.execute(
        sa.select(order_lines)
        .where(order_lines.c.order_id == order_id)
        .order_by(order_lines.c.line_no)
    ).all()
    held = dict(
        conn.execute(
            sa.select(allocations.c.line_id, sa.func.sum(allocations.c.quantity))
            .select_from(
                allocations.join(
                    fulfilment_groups, fulfilment_groups.c.id == allocations.c.group_id
                )
            )
            .where(
                allocations.c.order_id == order_id,
                fulfilment_groups.c.status.in_(_WITH_CUSTOMER),
            )
            .group_by(allocations.c.line_id)
        ).all()
    )
    back = dict(
        conn.execute(
            sa.select(return_lines.c.line_id, sa.func.sum(return_lines.c.quantity))
            .select_from(return_lines.join(returns, returns.c.id == return_lines.c.return_id))
            .where(returns.c.order_id == order_id, returns.c.status.in_(_OPEN))
            .group_by(return_lines.c.line_id)
        ).all()
    )
    out: dict[str, list[tuple[Any, int, Decimal]]] = {}
    for ln in lines:
        left = int(held.get(ln.id) or 0) - int(back.get(ln.id) or 0)
        value = (Decimal(ln.unit_price) * ln.quantity - Decimal(ln.discount)) / ln.quantity
        out.setdefault(ln.sku, []).append((ln.id, max(0, left), value))
    return out


def find_location(conn: Connection, location_id: str, field: str) -> Location:
    row = conn.execute(sa.select(locations).where(locations.c.id == location_id)).first()
    if row is None:
        raise NotFoundError(f"no location {location_id!r}", code="location_not_found", field=field)
    return location_from_row(row._mapping)


def _receiving(conn: Connection, req: ReturnRequest) -> Location:
    if req.location_id is not None:
        loc = find_location(conn, req.location_id, "location_id")
        if not loc.active or Capability.RETURNS not in loc.capabilities:
            raise ValidationError(
                f"location {loc.id} does not take returns", code="location_cannot_serve",
                field="location_id",
            )  # fmt: skip
        return loc
    for row in conn.execute(sa.select(locations).order_by(locations.c.id)):
        loc = location_from_row(row._mapping)
        if (
            loc.active
            and Capability.RETURNS in loc.capabilities
            and loc.type in (LocationType.CENTRAL_WAREHOUSE, LocationType.ECOMMERCE_WAREHOUSE)
        ):
            return loc
    raise ConflictError(
        "no active warehouse takes returns by post; name one with location_id",
        code="no_returns_location",
        field="location_id",
    )


def _plan_lines(
    returnable: Mapping[str, list[tuple[Any, int, Decimal]]], req: ReturnRequest
) -> list[tuple[Any, ReturnLine, int, Decimal]]:
    """(order line, requested line, units from that order line, unit value) for each piece."""
    out = []
    for i, line in enumerate(req.lines):
        options = returnable.get(line.sku)
        if not options:
            raise ValidationError(
                f"the order has no line with SKU {line.sku}", code="not_in_order",
                field=f"lines.{i}.sku",
            )  # fmt: skip
        left = line.quantity
        for line_id, free, value in options:
            take = min(free, left)
            if take:
                out.append((line_id, line, take, value))
                left -= take
        if left:
            have = sum(f for _, f, _ in options)
            raise ConflictError(
                f"only {have} unit(s) of {line.sku} can be returned (the customer has them "
                "and they are not in another return)",
                code="not_returnable",
                field=f"lines.{i}.quantity",
                details={"sku": line.sku, "returnable": have},
            )
    return out


# --- steps -----------------------------------------------------------------------------------


def _lock_order(conn: Connection, order_id: UUID) -> Any:
    row = conn.execute(sa.select(orders).where(orders.c.id == order_id).with_for_update()).first()
    if row is None:
        raise NotFoundError("no such order", code="order_not_found", field="id")
    return row


def _exchange_request(
    order: Any, req: ReturnRequest, rid: UUID, receiving: Location
) -> OrderRequest:
    assert req.exchange is not None
    spec = dict(req.exchange)
    fulfilment = spec.get("fulfilment")
    if fulfilment is None:
        if req.method == "in_store" and Capability.CLICK_AND_COLLECT in receiving.capabilities:
            fulfilment = {"method": "click_and_collect", "location_id": receiving.id}
        elif (order.fulfilment or {}).get("address"):
            fulfilment = {"method": "delivery", "address": order.fulfilment["address"]}
        else:
            raise ValidationError(
                "exchange.fulfilment is required (where the replacement goes)",
                code="missing_field",
                field="exchange.fulfilment",
            )
    body = {
        "channel": req.channel,
        "external_id": f"exchange:{rid}",
        "currency": order.currency,
        "lines": spec.get("lines"),
        "fulfilment": fulfilment,
        "payments": spec.get("payments") or [],
    }
    try:
        new = check_order(body)
    except ValidationError as exc:
        exc.field = f"exchange.{exc.field}" if exc.field else "exchange"
        raise
    customer = Customer(
        order.customer_email, order.customer_phone, order.customer_number, order.loyalty_card
    )
    return replace(new, customer=customer)


def request_return(
    engine: Engine, order_id: UUID, req: ReturnRequest, *, at: datetime | None = None
) -> dict[str, Any]:
    """Open a return (and place the exchange order when asked); see the module docstring.
    ``at``: when it was opened, for a historic return (not before the order was placed)."""
    rid = new_id()
    with engine.connect() as conn:  # check first: an exchange must not be placed for nothing
        order = conn.execute(sa.select(orders).where(orders.c.id == order_id)).first()
        if order is None:
            raise NotFoundError("no such order", code="order_not_found", field="id")
        receiving = _receiving(conn, req)
        pieces = _plan_lines(_returnable(conn, order_id), req)
    exchange_id: UUID | None = None
    if req.exchange is not None:
        value = sum((v * q for _, _, q, v in pieces), Decimal("0")).quantize(CENT, ROUND_HALF_UP)
        new = _exchange_request(order, req, rid, receiving)
        total = sum((ln.unit_price * ln.quantity - ln.discount for ln in new.lines), Decimal("0"))
        credit = min(value, total)
        if credit > 0:
            paid = (PaymentRequest(PaymentMethod.EXCHANGE, credit, f"return:{rid}"),)
            new = replace(new, payments=paid + new.payments)
        exchange_id, _, _ = place_order(engine, new)
    try:
        with write_transaction(engine) as conn:
            locked = _lock_order(conn, order_id)
            pieces = _plan_lines(_returnable(conn, order_id), req)  # again, under the lock
            now = check_when(at, locked.placed_at)
            conn.execute(
                returns.insert().values(
                    id=rid, order_id=order_id, status="requested", channel=req.channel,
                    location_id=receiving.id, reason=req.reason, created_at=now,
                    updated_at=now, method=req.method, exchange_order_id=exchange_id,
                    refund_total=None,
                )
            )  # fmt: skip
            conn.execute(
                return_lines.insert(),
                [
                    {
                        "id": new_id(), "return_id": rid, "line_id": line_id, "sku": line.sku,
                        "quantity": q, "reason": line.reason or req.reason, "condition": None,
                        "decision": None, "restock_location_id": None, "refund_amount": None,
                    }
                    for line_id, line, q, _ in pieces
                ],
            )  # fmt: skip
            detail = {
                "return_id": str(rid),
                "method": req.method,
                "channel": req.channel,
                "location_id": receiving.id,
                "reason": req.reason,
                "lines": [
                    {"sku": ln.sku, "quantity": ln.quantity, "reason": ln.reason}
                    for ln in req.lines
                ],
            }
            events = [event_row(order_id, None, "return_requested", None, "requested", now, detail)]
            if exchange_id is not None:
                events.append(
                    event_row(
                        order_id, None, "exchange_placed", None, None, now,
                        {"return_id": str(rid), "exchange_order_id": str(exchange_id)},
                    )
                )  # fmt: skip
                events.append(
                    event_row(
                        exchange_id, None, "exchange_of", None, None, now,
                        {"return_id": str(rid), "order_id": str(order_id)},
                    )
                )  # fmt: skip
            conn.execute(order_events.insert(), events)
            return return_view(conn, rid)
    except TrayectoError:
        if exchange_id is not None:  # the return failed: its replacement goes too
            cancel_order(engine, exchange_id, note=f"return {rid} was not opened")
        raise


def lock_return(conn: Connection, return_id: UUID, allowed: Sequence[str], step: str) -> Any:
    ret = conn.execute(
        sa.select(returns).where(returns.c.id == return_id).with_for_update()
    ).first()
    if ret is None:
        raise NotFoundError("no such return", code="return_not_found", field="return_id")
    if ret.status not in allowed:
        raise ConflictError(
            f"a {ret.status} return cannot be {step}; it must be {' or '.join(allowed)}",
            code="illegal_transition",
            field="status",
        )
    return ret


def record_step(
    conn: Connection,
    ret: Any,
    to: str,
    kind: str,
    detail: dict[str, Any],
    at: datetime | None = None,
    **values: Any,
) -> None:
    now = at or utcnow()
    conn.execute(
        returns.update().where(returns.c.id == ret.id).values(status=to, updated_at=now, **values)
    )
    conn.execute(
        order_events.insert().values(
            event_row(
                ret.order_id, None, kind, ret.status, to, now, {"return_id": str(ret.id), **detail}
            )
        )
    )


def receive_return(
    engine: Engine, return_id: UUID, *, location_id: str | None = None, at: datetime | None = None
) -> dict[str, Any]:
    """The goods arrived (by post) or were handed over (in a shop); ``at``: when, for a
    historic return (not before its last step)."""
    with write_transaction(engine) as conn:
        ret = lock_return(conn, return_id, ("requested",), "received")
        now = check_when(at, ret.updated_at)
        where = ret.location_id
        if location_id is not None and location_id != where:
            loc = find_location(conn, location_id, "location_id")
            if not loc.active or Capability.RETURNS not in loc.capabilities:
                raise ValidationError(
                    f"location {loc.id} does not take returns", code="location_cannot_serve",
                    field="location_id",
                )  # fmt: skip
            where = loc.id
        record_step(
            conn, ret, "received", "return_received", {"location_id": where}, now, location_id=where
        )
        return return_view(conn, return_id)


def cancel_return(engine: Engine, return_id: UUID) -> dict[str, Any]:
    """Withdraw a return not yet received; its exchange order is cancelled too."""
    with write_transaction(engine) as conn:
        ret = lock_return(conn, return_id, ("requested",), "cancelled")
        record_step(conn, ret, "cancelled", "return_cancelled", {})
        exchange = ret.exchange_order_id
    if exchange is not None:
        cancel_order(engine, exchange, note=f"return {return_id} was cancelled")
    return get_return(engine, return_id)
