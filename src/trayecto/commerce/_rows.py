"""What placing one order writes and answers: its rows (``build_rows`` -> ``OrderRows``),
its history rows (``event_row``) and its view as the API shows it (``build_view``).

Pure Python over plain values, no database: compiled with mypyc (``kernel.native``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from trayecto.commerce._intake import OrderRequest
from trayecto.commerce._model import GroupStatus, Location
from trayecto.commerce._promise import promise
from trayecto.commerce._snapshot import Snapshot, local_day
from trayecto.commerce._sourcing import Plan, expanded, haversine_km
from trayecto.kernel import new_id


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


_CENT = Decimal("0.01")


def money(value: Any) -> str:
    return str((value if isinstance(value, Decimal) else Decimal(value)).quantize(_CENT))


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _id(value: UUID | None) -> str | None:
    return str(value) if value else None


def build_view(
    order: Mapping[Any, Any],
    lines: Sequence[Mapping[str, Any]],
    groups: Sequence[Mapping[str, Any]],
    allocs: Sequence[Mapping[str, Any]],
    pays: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    returns_: Sequence[Mapping[str, Any]] = (),
    *,
    candidates: bool = True,
) -> dict[str, Any]:
    """The order as ``POST`` and ``GET /api/orders`` answer it. ``candidates=False``
    leaves the sourcing explanation as stored (its candidates a table), for an answer
    that shows only its summary."""
    group_views = []
    for g in groups:
        mine = [a for a in allocs if a["group_id"] == g["id"]]
        pickup = g["pickup_location_id"]
        group_views.append(
            {
                "id": str(g["id"]),
                "method": g["method"],
                "status": g["status"],
                "location_id": g["location_id"],
                "pickup_location_id": pickup,
                "transfer": pickup is not None and pickup != g["location_id"],
                "promise": g["promise"],
                "lines": [{"sku": a["sku"], "quantity": a["quantity"]} for a in mine],
            }
        )
    return {
        "id": str(order["id"]),
        "channel": order["channel"],
        "external_id": order["external_id"],
        "status": order["status"],
        "customer": {
            "customer_id": str(order["customer_id"]) if order["customer_id"] else None,
            "email": order["customer_email"],
            "phone": order["customer_phone"],
            "customer_number": order["customer_number"],
            "loyalty_card": order["loyalty_card"],
        },
        "currency": order["currency"],
        "subtotal": money(order["subtotal"]),
        "discount_total": money(order["discount_total"]),
        "tax_total": money(order["tax_total"]),
        "total": money(order["total"]),
        "lines": [
            {
                "line_no": ln["line_no"],
                "sku": ln["sku"],
                "quantity": ln["quantity"],
                "unit_price": money(ln["unit_price"]),
                "discount": money(ln["discount"]),
                "tax": money(ln["tax"]),
            }
            for ln in sorted(lines, key=lambda x: x["line_no"])
        ],
        "payments": [
            {
                "kind": p["kind"],
                "method": p["method"],
                "amount": money(p["amount"]),
                "currency": p["currency"],
                "reference": p["reference"],
                "recorded_at": iso(p["recorded_at"]),
                **(
                    {"refund_of": _id(p.get("refund_of")), "return_id": _id(p.get("return_id"))}
                    if p["kind"] == "refund"
                    else {}
                ),
            }
            for p in pays
        ],
        "fulfilment": order["fulfilment"],
        "fulfilment_groups": group_views,
        "locations": sorted({g["location_id"] for g in groups}),
        "history": [
            {
                "at": iso(e["occurred_at"]),
                "kind": e["kind"],
                "group_id": str(e["group_id"]) if e["group_id"] else None,
                "from": e["from_status"],
                "to": e["to_status"],
                "detail": e["detail"],
            }
            for e in events
        ],
        "sourcing": expanded(order["sourcing"]) if candidates else order["sourcing"],
        "placed_at": iso(order["placed_at"]),
        "returns": [
            {
                "id": str(r["id"]),
                "status": r["status"],
                "method": r["method"],
                "created_at": iso(r["created_at"]),
            }
            for r in returns_
        ],
    }


def distance_km(
    loc: Location, pickup: Location | None, destination: tuple[float, float] | None
) -> float | None:
    to = (pickup.latitude, pickup.longitude) if pickup else destination
    return haversine_km((loc.latitude, loc.longitude), to) if to else None


def event_row(
    order_id: UUID,
    group_id: UUID | None,
    kind: str,
    from_status: str | None,
    to_status: str | None,
    when: datetime,
    detail: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "order_id": order_id,
        "group_id": group_id,
        "kind": kind,
        "from_status": from_status,
        "to_status": to_status,
        "detail": detail,
        "occurred_at": when,
    }


def build_rows(
    req: OrderRequest,
    order_id: UUID,
    now: datetime,
    plan: Plan,
    snap: Snapshot,
    pickup: Location | None,
    destination: tuple[float, float] | None,
    *,
    candidates: bool = True,
) -> tuple[OrderRows, dict[str, Any]]:
    """Every row the order writes, its holds, and the order as the API shows it (see
    ``build_view`` for ``candidates``)."""
    zero = Decimal("0.00")
    subtotal = sum((ln.unit_price * ln.quantity for ln in req.lines), zero)
    discount = sum((ln.discount for ln in req.lines), zero)
    tax = sum((ln.tax for ln in req.lines), zero)
    method = req.fulfilment.method
    locs = snap.locations
    groups: list[dict[str, Any]] = []
    group_of: dict[str, UUID] = {}
    loads = []
    for loc_id in plan.locations:
        gid = new_id()
        group_of[loc_id] = gid
        loc = locs[loc_id]
        groups.append(
            {
                "id": gid,
                "order_id": order_id,
                "method": method.value,
                "location_id": loc_id,
                "pickup_location_id": pickup.id if pickup else None,
                "status": GroupStatus.ALLOCATED.value,
                "promise": promise(
                    now,
                    loc,
                    method,
                    distance_km=distance_km(loc, pickup, destination),
                    pickup=pickup,
                ),
                "created_at": now,
                "updated_at": now,
            }
        )
        if loc.daily_capacity is not None:
            loads.append((loc_id, local_day(loc, now), loc.daily_capacity))
    order_row = {
        "id": order_id,
        "channel": req.channel,
        "external_id": req.external_id,
        "status": GroupStatus.ALLOCATED.value,
        "customer_id": None,
        "customer_email": req.customer.email,
        "customer_phone": req.customer.phone,
        "customer_number": req.customer.customer_number,
        "loyalty_card": req.customer.loyalty_card,
        "currency": req.currency,
        "subtotal": subtotal,
        "discount_total": discount,
        "tax_total": tax,
        "total": subtotal - discount,
        "fulfilment": req.fulfilment.to_dict(),
        "sourcing": plan.explanation,
        "placed_at": now,
        "updated_at": now,
    }
    holds = [(a.location_id, a.sku, a.quantity) for a in plan.assignments]  # sorted
    held: dict[tuple[str, str], UUID] = {}
    reservation_rows = []
    for loc_id, sku, qty in holds:
        rid = held[(loc_id, sku)] = new_id()
        reservation_rows.append(
            {
                "id": rid,
                "location_id": loc_id,
                "sku": sku,
                "quantity": qty,
                "kind": "order",
                "channel": req.channel,
                "order_id": order_id,
                "group_id": group_of[loc_id],
                "status": "active",
                "expires_at": None,
                "created_at": now,
                "closed_at": None,
            }
        )
    line_rows: list[dict[str, Any]] = [
        {
            "id": new_id(),
            "order_id": order_id,
            "line_no": i + 1,
            "sku": ln.sku,
            "quantity": ln.quantity,
            "unit_price": ln.unit_price,
            "discount": ln.discount,
            "tax": ln.tax,
        }
        for i, ln in enumerate(req.lines)
    ]
    # spread each SKU's assigned units over its lines, in line order
    left = {(a.location_id, a.sku): a.quantity for a in plan.assignments}
    alloc_rows = []
    for line in line_rows:
        need = int(line["quantity"])
        for (loc_id, sku), q in left.items():
            if sku != line["sku"] or q == 0 or need == 0:
                continue
            take = min(q, need)
            left[(loc_id, sku)] -= take
            need -= take
            alloc_rows.append(
                {
                    "id": new_id(),
                    "order_id": order_id,
                    "group_id": group_of[loc_id],
                    "line_id": line["id"],
                    "location_id": loc_id,
                    "sku": sku,
                    "quantity": take,
                    "reservation_id": held[(loc_id, sku)],
                }
            )
    event_rows = [
        event_row(order_id, None, "order_placed", None, "placed", now, {"channel": req.channel}),
        *(
            event_row(
                order_id, g["id"], "group_allocated", None, "allocated", now,
                {"location_id": g["location_id"]},
            )
            for g in groups
        ),
        event_row(order_id, None, "order_status", "placed", "allocated", now, None),
    ]  # fmt: skip
    payment_rows = [
        {
            "id": new_id(),
            "order_id": order_id,
            "kind": "payment",
            "method": p.method.value,
            "amount": p.amount,
            "currency": req.currency,
            "reference": p.reference,
            "recorded_at": now,
        }
        for p in req.payments
    ]
    rows = OrderRows(
        order=order_row,
        lines=line_rows,
        groups=groups,
        allocations=alloc_rows,
        reservations=reservation_rows,
        payments=payment_rows,
        events=event_rows,
        holds=holds,
        loads=sorted(loads),
        extra_safety=snap.policy.safety_stock,
        at=now,
    )
    view = build_view(
        order_row, line_rows, groups, alloc_rows, payment_rows, event_rows, candidates=candidates
    )
    return rows, view
