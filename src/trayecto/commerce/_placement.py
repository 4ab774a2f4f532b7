"""Placing an order: one unit of work that sources, reserves and records it.

``place_order`` runs in one write transaction:

1. an order already stored under (channel, external id) is answered as it is;
2. a snapshot of available units and candidate locations is read, the sourcing engine
   chooses, and the chosen units are reserved with conditional updates in a savepoint
   (``_inventory.reserve``: rows in a fixed order, the database checks availability);
   if a concurrent order took the units in between, the savepoint is rolled back and the
   order is sourced again on a fresh snapshot (three tries), else ``insufficient_stock``;
3. picks are booked against each location's daily capacity the same way;
4. the order, lines, groups, allocations, payments and history are inserted; the order
   row's unique (channel, external_id) makes a concurrent duplicate roll back and return
   the stored order instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from trayecto.commerce._catalogue import location_from_row
from trayecto.commerce._geo import locate
from trayecto.commerce._intake import OrderRequest
from trayecto.commerce._inventory import Hold, InsufficientStock, reserve
from trayecto.commerce._model import Capability, GroupStatus, Location, LocationType, Method
from trayecto.commerce._promise import promise
from trayecto.commerce._sourcing import Plan, Policy, Site, haversine_km, source
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
from trayecto.commerce._views import build_view
from trayecto.db import dialect_insert, write_transaction
from trayecto.kernel import ConflictError, NotFoundError, ValidationError, new_id, utcnow

TRIES = 3


class _Duplicate(Exception):
    """Raised inside the transaction to roll it back when the order already exists."""


def load_policy(conn: Connection, channel: str) -> Policy:
    row = conn.execute(
        sa.select(channel_policies.c.config).where(channel_policies.c.channel == channel)
    ).first()
    return Policy.from_config(row.config if row else None)


def set_policy(engine: Engine, channel: str, config: Mapping[str, Any]) -> Policy:
    policy = Policy.from_config(config)
    with write_transaction(engine) as conn:
        ins = dialect_insert(conn, channel_policies).values(
            channel=channel, config=dict(config), updated_at=utcnow()
        )
        conn.execute(
            ins.on_conflict_do_update(
                index_elements=["channel"],
                set_={"config": ins.excluded.config, "updated_at": ins.excluded.updated_at},
            )
        )
    return policy


def _pickup(conn: Connection, req: OrderRequest) -> Location | None:
    method = req.fulfilment.method
    if method is Method.DELIVERY:
        return None
    row = conn.execute(
        sa.select(locations).where(locations.c.id == req.fulfilment.location_id)
    ).first()
    if row is None:
        raise NotFoundError(
            f"no location {req.fulfilment.location_id!r}",
            code="location_not_found",
            field="fulfilment.location_id",
        )
    loc = location_from_row(row._mapping)
    need = {
        Method.CLICK_AND_COLLECT: Capability.CLICK_AND_COLLECT,
        Method.SHIP_TO_STORE: Capability.SHIP_TO_STORE,
        Method.PICKUP_POINT: None,
    }[method]
    ok = loc.active and (
        loc.type is LocationType.PICKUP_POINT
        if method is Method.PICKUP_POINT
        else need in loc.capabilities
    )
    if not ok:
        raise ValidationError(
            f"location {loc.id} does not offer {method.value}",
            code="location_cannot_serve",
            field="fulfilment.location_id",
        )
    return loc


def _snapshot(
    conn: Connection, skus: list[str], extra_safety: int, day: date, pickup: Location | None
) -> tuple[dict[str, Location], list[Site], dict[tuple[str, str], int]]:
    atp = stock.c.on_hand - stock.c.reserved - stock.c.safety_stock - extra_safety
    rows = conn.execute(
        sa.select(
            stock.c.location_id.label("loc"),
            stock.c.sku.label("sku_"),
            atp.label("atp"),
            location_load.c.picks,
            locations,
        )
        .select_from(
            stock.join(locations, locations.c.id == stock.c.location_id).outerjoin(
                location_load,
                sa.and_(location_load.c.location_id == locations.c.id, location_load.c.day == day),
            )
        )
        .where(stock.c.sku.in_(skus), atp > 0)
    ).all()
    locs: dict[str, Location] = {}
    picks: dict[str, int] = {}
    available: dict[tuple[str, str], int] = {}
    for r in rows:
        m = r._mapping
        if m["loc"] not in locs:
            locs[m["loc"]] = location_from_row(m)
            picks[m["loc"]] = m["picks"] or 0
        available[(m["loc"], m["sku_"])] = m["atp"]
    if pickup is not None and pickup.id not in locs:
        locs[pickup.id] = pickup
    sites = [
        Site(
            id=loc.id,
            type=loc.type,
            latitude=loc.latitude,
            longitude=loc.longitude,
            capabilities=loc.capabilities,
            capacity_left=None
            if loc.daily_capacity is None
            else loc.daily_capacity - picks.get(loc.id, 0),
            open=loc.opening_hours != {},
            active=loc.active,
        )
        for loc in locs.values()
    ]
    return locs, sites, available


def _book_capacity(conn: Connection, plan: Plan, locs: dict[str, Location], day: date) -> None:
    for loc_id in plan.locations:
        cap = locs[loc_id].daily_capacity
        if cap is None:
            continue
        ins = dialect_insert(conn, location_load).values(location_id=loc_id, day=day, picks=0)
        conn.execute(ins.on_conflict_do_nothing(index_elements=["location_id", "day"]))
        done = conn.execute(
            location_load.update()
            .where(
                location_load.c.location_id == loc_id,
                location_load.c.day == day,
                location_load.c.picks + 1 <= cap,
            )
            .values(picks=location_load.c.picks + 1)
        )
        if done.rowcount != 1:
            raise InsufficientStock(
                f"location {loc_id} reached its daily picking capacity",
                code="capacity_full",
                details={"location_id": loc_id},
            )


def _unknown_skus(conn: Connection, skus: list[str]) -> None:
    known = set(conn.execute(sa.select(products.c.sku).where(products.c.sku.in_(skus))).scalars())
    missing = [s for s in skus if s not in known]
    if missing:
        raise ValidationError(
            f"unknown SKU(s): {', '.join(missing)}", code="unknown_sku", field="lines"
        )


def _existing(conn: Connection, channel: str, external_id: str) -> UUID | None:
    return conn.execute(
        sa.select(orders.c.id).where(
            orders.c.channel == channel, orders.c.external_id == external_id
        )
    ).scalar()


def _plan_and_reserve(
    conn: Connection, req: OrderRequest, order_id: UUID, now: datetime
) -> tuple[Plan, dict[str, Location], dict[tuple[str, str], UUID], Location | None, Any]:
    pickup = _pickup(conn, req)
    policy = load_policy(conn, req.channel)
    demand = req.demand()
    skus = sorted(demand)
    destination = locate(req.fulfilment.address) if req.fulfilment.address else None
    day = now.date()
    last: ConflictError | None = None
    for _ in range(TRIES):
        locs, sites, available = _snapshot(conn, skus, policy.safety_stock, day, pickup)
        pickup_site = next((s for s in sites if pickup and s.id == pickup.id), None)
        try:
            plan = source(
                demand,
                sites,
                available,
                method=req.fulfilment.method,
                policy=policy,
                destination=destination,
                pickup=pickup_site,
            )
        except ConflictError:
            _unknown_skus(conn, skus)
            raise
        savepoint = conn.begin_nested()
        try:
            held = reserve(
                conn,
                [Hold(a.location_id, a.sku, a.quantity) for a in plan.assignments],
                kind="order",
                channel=req.channel,
                extra_safety=policy.safety_stock,
                order_id=order_id,
            )
            _book_capacity(conn, plan, locs, day)
        except InsufficientStock as exc:
            savepoint.rollback()
            last = exc
            continue
        savepoint.commit()
        return plan, locs, held, pickup, destination
    assert last is not None
    raise InsufficientStock(last.message, code=last.code, field="lines", details=last.details)


def place_order(engine: Engine, req: OrderRequest) -> tuple[UUID, bool, dict[str, Any] | None]:
    """Place ``req``; returns (order id, created, view of the new order or None)."""
    try:
        with write_transaction(engine) as conn:
            found = _existing(conn, req.channel, req.external_id)
            if found is not None:
                return found, False, None
            order_id = new_id()
            now = utcnow()
            plan, locs, held, pickup, destination = _plan_and_reserve(conn, req, order_id, now)
            view = _record(conn, req, order_id, now, plan, locs, held, pickup, destination)
            return order_id, True, view
    except _Duplicate:
        with engine.connect() as conn:
            found = _existing(conn, req.channel, req.external_id)
        assert found is not None
        return found, False, None


def quote(engine: Engine, req: OrderRequest) -> dict[str, Any]:
    """What placing ``req`` now would choose and promise, without reserving anything."""
    with engine.connect() as conn:
        pickup = _pickup(conn, req)
        policy = load_policy(conn, req.channel)
        demand = req.demand()
        destination = locate(req.fulfilment.address) if req.fulfilment.address else None
        now = utcnow()
        locs, sites, available = _snapshot(
            conn, sorted(demand), policy.safety_stock, now.date(), pickup
        )
        pickup_site = next((s for s in sites if pickup and s.id == pickup.id), None)
        try:
            plan = source(
                demand,
                sites,
                available,
                method=req.fulfilment.method,
                policy=policy,
                destination=destination,
                pickup=pickup_site,
            )
        except ConflictError:
            _unknown_skus(conn, sorted(demand))
            raise
    groups = []
    for loc_id in plan.locations:
        dist = _distance(locs[loc_id], pickup, destination)
        groups.append(
            {
                "location_id": loc_id,
                "lines": [
                    {"sku": a.sku, "quantity": a.quantity}
                    for a in plan.assignments
                    if a.location_id == loc_id
                ],
                "promise": promise(
                    now, locs[loc_id], req.fulfilment.method, distance_km=dist, pickup=pickup
                ),
            }
        )
    return {"fulfilment_groups": groups, "sourcing": plan.explanation}


def _distance(
    loc: Location, pickup: Location | None, destination: tuple[float, float] | None
) -> float | None:
    to = (pickup.latitude, pickup.longitude) if pickup else destination
    return haversine_km((loc.latitude, loc.longitude), to) if to else None


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _record(
    conn: Connection,
    req: OrderRequest,
    order_id: UUID,
    now: datetime,
    plan: Plan,
    locs: dict[str, Location],
    held: dict[tuple[str, str], UUID],
    pickup: Location | None,
    destination: tuple[float, float] | None,
) -> dict[str, Any]:
    subtotal = sum((ln.unit_price * ln.quantity for ln in req.lines), Decimal("0.00"))
    discount = sum((ln.discount for ln in req.lines), Decimal("0.00"))
    tax = sum((ln.tax for ln in req.lines), Decimal("0.00"))
    total = subtotal - discount
    method = req.fulfilment.method
    groups: list[dict[str, Any]] = []
    group_of: dict[str, UUID] = {}
    for loc_id in plan.locations:
        gid = new_id()
        group_of[loc_id] = gid
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
                    locs[loc_id],
                    method,
                    distance_km=_distance(locs[loc_id], pickup, destination),
                    pickup=pickup,
                ),
                "created_at": now,
                "updated_at": now,
            }
        )
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
        "total": total,
        "fulfilment": req.fulfilment.to_dict(),
        "sourcing": plan.explanation,
        "placed_at": now,
        "updated_at": now,
    }
    ins = dialect_insert(conn, orders).values(**order_row)
    inserted = conn.execute(
        ins.on_conflict_do_nothing(index_elements=["channel", "external_id"]).returning(orders.c.id)
    ).first()
    if inserted is None:
        raise _Duplicate
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
        _event(order_id, None, "order_placed", None, "placed", now, {"channel": req.channel}),
        *(
            _event(
                order_id, g["id"], "group_allocated", None, "allocated", now,
                {"location_id": g["location_id"]},
            )
            for g in groups
        ),
        _event(order_id, None, "order_status", "placed", "allocated", now, None),
    ]  # fmt: skip
    conn.execute(order_lines.insert(), line_rows)
    conn.execute(fulfilment_groups.insert(), groups)
    conn.execute(allocations.insert(), alloc_rows)
    for loc_id, gid in group_of.items():
        ids = [rid for (loc, _), rid in held.items() if loc == loc_id]
        conn.execute(reservations.update().where(reservations.c.id.in_(ids)).values(group_id=gid))
    if req.payments:
        conn.execute(
            payments.insert(),
            [
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
            ],
        )
    conn.execute(order_events.insert(), event_rows)
    return build_view(order_row, line_rows, groups, alloc_rows, [
        {"kind": "payment", "method": p.method.value, "amount": p.amount,
         "currency": req.currency, "reference": p.reference, "recorded_at": now}
        for p in req.payments
    ], event_rows)  # fmt: skip


def _event(
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
