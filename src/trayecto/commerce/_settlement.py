"""Settling a return: inspection (condition, decision, stock through the ledger) and the
refund against the order's original payments. The rules are in ``_returns``' docstring."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from trayecto.commerce._intake import check_when
from trayecto.commerce._inventory import move
from trayecto.commerce._model import LocationType, MovementKind, PaymentMethod
from trayecto.commerce._return_requests import Inspection
from trayecto.commerce._returns import CENT, find_location, lock_return, record_step, return_view
from trayecto.commerce._tables import order_lines, orders, payments, return_lines
from trayecto.db import write_transaction
from trayecto.kernel import ConflictError, ValidationError, new_id


def inspect_return(
    engine: Engine, return_id: UUID, lines: Sequence[Inspection], *, at: datetime | None = None
) -> dict[str, Any]:
    """Condition and decision per SKU; stock moves through the ledger (module docstring).
    ``at``: when, for a historic return (not before its last step)."""
    with write_transaction(engine) as conn:
        ret = lock_return(conn, return_id, ("received",), "inspected")
        now = check_when(at, ret.updated_at)
        rows = conn.execute(
            sa.select(return_lines, order_lines.c.unit_price, order_lines.c.quantity.label("lq"),
                      order_lines.c.discount)
            .select_from(return_lines.join(order_lines, order_lines.c.id == return_lines.c.line_id))
            .where(return_lines.c.return_id == return_id)
        ).all()  # fmt: skip
        by_sku = {i.sku: i for i in lines}
        missing = sorted({r.sku for r in rows} - set(by_sku))
        extra = sorted(set(by_sku) - {r.sku for r in rows})
        if missing or extra:
            raise ValidationError(
                "inspect every returned SKU, and only those: "
                + (
                    f"missing {', '.join(missing)}"
                    if missing
                    else f"not returned {', '.join(extra)}"
                ),
                field="lines",
            )
        received = ret.location_id
        moves: list[tuple[str, str, MovementKind, int, str | None]] = []
        decided = []
        for r in rows:
            ins = by_sku[r.sku]
            target = None
            if ins.decision == "restock":
                target = ins.location_id or received
                loc = find_location(conn, target, "lines.location_id")
                if not loc.active or loc.type is LocationType.PICKUP_POINT:
                    raise ValidationError(
                        f"location {target} cannot hold stock", field="lines.location_id"
                    )
                moves.append((received, r.sku, MovementKind.RETURN, r.quantity, None))
                if target != received:
                    moves.append((received, r.sku, MovementKind.TRANSFER_OUT, -r.quantity, None))
                    moves.append((target, r.sku, MovementKind.TRANSFER_IN, r.quantity, None))
            elif ins.decision == "write_off":
                moves.append((received, r.sku, MovementKind.RETURN, r.quantity, None))
                moves.append(
                    (received, r.sku, MovementKind.ADJUSTMENT, -r.quantity,
                     f"write-off ({ins.condition})")
                )  # fmt: skip
            unit = (Decimal(r.unit_price) * r.lq - Decimal(r.discount)) / r.lq
            refund = (
                Decimal("0.00")
                if ins.decision == "reject"
                else (unit * r.quantity).quantize(CENT, ROUND_HALF_UP)
            )
            conn.execute(
                return_lines.update()
                .where(return_lines.c.id == r.id)
                .values(condition=ins.condition, decision=ins.decision,
                        restock_location_id=target, refund_amount=refund)
            )  # fmt: skip
            decided.append(
                {"sku": r.sku, "quantity": r.quantity, "condition": ins.condition,
                 "decision": ins.decision, "location_id": target, "refund_amount": str(refund)}
            )  # fmt: skip
        # stock rows in one fixed order, like every other change of stock (the sort is
        # stable: the moves of one row keep their order, the return before what follows)
        for where, sku, kind, qty, note in sorted(moves, key=lambda m: (m[0], m[1])):
            move(conn, where, sku, kind, qty, reference=f"return:{return_id}", note=note, at=now)
        record_step(conn, ret, "inspected", "return_inspected", {"lines": decided}, now)
        return return_view(conn, return_id)


def refund_return(
    engine: Engine,
    return_id: UUID,
    *,
    method: str | None = None,
    reference: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Record the refund against the order's original payments (module docstring).

    ``method`` is needed only for what no recorded payment can take back (an order whose
    payment was never recorded): the refund of that part is recorded with it. ``at``: when,
    for a historic return (not before its last step)."""
    with write_transaction(engine) as conn:
        ret = lock_return(conn, return_id, ("inspected",), "refunded")
        now = check_when(at, ret.updated_at)
        value = Decimal(
            conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(return_lines.c.refund_amount), 0)).where(
                    return_lines.c.return_id == return_id
                )
            ).scalar_one()
        )
        credit = Decimal("0")
        if ret.exchange_order_id is not None:
            credit = Decimal(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(payments.c.amount), 0)).where(
                        payments.c.order_id == ret.exchange_order_id,
                        payments.c.method == PaymentMethod.EXCHANGE.value,
                        payments.c.kind == "payment",
                    )
                ).scalar_one()
            )
        due = max(Decimal("0"), value - credit).quantize(CENT)
        order = conn.execute(sa.select(orders.c.currency).where(orders.c.id == ret.order_id)).one()
        paid = conn.execute(
            sa.select(payments)
            .where(payments.c.order_id == ret.order_id, payments.c.kind == "payment")
            .order_by(payments.c.recorded_at, payments.c.id)
        ).all()
        refunded = dict(
            conn.execute(
                sa.select(payments.c.refund_of, sa.func.sum(payments.c.amount))
                .where(payments.c.order_id == ret.order_id, payments.c.kind == "refund")
                .group_by(payments.c.refund_of)
            ).all()
        )
        rows, left = [], due
        for p in paid:
            room = Decimal(p.amount) - Decimal(refunded.get(p.id) or 0)
            take = min(room, left)
            if take > 0:
                rows.append((p.method, take, p.id))
                left -= take
        if left > 0:
            if method is None:
                raise ConflictError(
                    f"{left} of the refund exceeds what the order's recorded payments can take "
                    "back; say how it is refunded (method)",
                    code="no_payment_to_refund",
                    field="method",
                )
            try:
                PaymentMethod(method)
            except ValueError:
                allowed = ", ".join(m.value for m in PaymentMethod)
                raise ValidationError(f"method must be one of: {allowed}", field="method") from None
            rows.append((method, left, None))
        if rows:
            conn.execute(
                payments.insert(),
                [
                    {
                        "id": new_id(), "order_id": ret.order_id, "kind": "refund",
                        "method": m, "amount": amount, "currency": order.currency,
                        "reference": reference, "recorded_at": now, "refund_of": of,
                        "return_id": return_id,
                    }
                    for m, amount, of in rows
                ],
            )  # fmt: skip
        detail = {
            "amount": str(due),
            "exchange_credit": str(credit.quantize(CENT)) if credit else None,
            "refunds": [
                {"method": m, "amount": str(a), "refund_of": str(of) if of else None}
                for m, a, of in rows
            ],
        }
        record_step(conn, ret, "refunded", "refund_recorded", detail, now, refund_total=due)
        return return_view(conn, return_id)
