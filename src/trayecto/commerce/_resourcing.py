"""Re-sourcing: a location rejects a fulfilment group, or is short at picking.

``reject_group`` records the rejection in one transaction: the group goes to ``rejected``
(only from ``allocated`` or ``picking``), its reservations at the location are released,
and for the SKUs the location was short of, its on hand is corrected down through the
ledger (an ``adjustment``, "short at picking": the units were never there; never below
what other orders hold there). Then ``resource_group`` sources the group's units again,
excluding every location that rejected a group of this order, and in a second
transaction holds them (conditional updates in (location, SKU) order, daily capacity
booked) and records the new group(s) with their promise. Two transactions, each touching
stock rows in one order, so they never deadlock with placements.

Everything is explained in the order's history: ``group_status`` (to ``rejected``, with
the reason and the shortages), ``group_allocated`` (``resourced_from``), then
``order_resourced`` with the sourcing explanation (the rejecting locations listed as
candidates excluded for that reason), or ``resourcing_failed`` when no other location can
serve the units. The order's ``sourcing`` keeps a ``resourced`` list too.
``resource_group`` may be called again for a rejected group (after a crash between the
two transactions); it does nothing if the group was already re-sourced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from trayecto.commerce._geo import locate
from trayecto.commerce._inventory import Hold, InsufficientStock, book_pick, move, reserve
from trayecto.commerce._lifecycle import apply_status, lock_groups, refresh_status
from trayecto.commerce._model import GroupStatus, Location, Method, MovementKind
from trayecto.commerce._placement import TRIES
from trayecto.commerce._promise import promise
from trayecto.commerce._rows import event_row
from trayecto.commerce._snapshot import Snapshot, local_day
from trayecto.commerce._sourcing import Plan, expanded, haversine_km, source
from trayecto.commerce._store import session_of
from trayecto.commerce._tables import (
    allocations,
    fulfilment_groups,
    order_events,
    orders,
    reservations,
    stock,
)
from trayecto.commerce._views import load_view
from trayecto.db import write_transaction
from trayecto.kernel import ConflictError, NotFoundError, ValidationError, new_id, utcnow


def _group(groups: list[Any], group_id: UUID) -> Any:
    group = next((g for g in groups if g.id == group_id), None)
    if group is None:
        raise NotFoundError(
            "no such fulfilment group in this order", code="group_not_found", field="group_id"
        )
    return group


def reject_group(
    engine: Engine,
    order_id: UUID,
    group_id: UUID,
    *,
    reason: str,
    short: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The location of ``group_id`` will not (or cannot fully) pick it: release it there,
    correct its stock for ``short`` (SKU -> units missing), and source the units again."""
    short = dict(short or {})
    if not reason.strip():
        raise ValidationError("say why the location rejects it (reason)", field="reason")
    with write_transaction(engine) as conn:
        group = _group(lock_groups(conn, order_id), group_id)
        skus = set(
            conn.execute(
                sa.select(allocations.c.sku).where(allocations.c.group_id == group_id)
            ).scalars()
        )
        for sku, missing in short.items():
            if sku not in skus or missing < 1:
                raise ValidationError(
                    f"short must name SKUs of this group with the units missing ({sku})",
                    field="short",
                )
        apply_status(
            conn, order_id, group, GroupStatus.REJECTED, None,
            {"reason": reason.strip(), "location_id": group.location_id,
             **({"short": short} if short else {})},
        )  # fmt: skip
        for sku, missing in sorted(short.items()):  # after the release: one fixed order
            level = conn.execute(
                sa.select(stock.c.on_hand, stock.c.reserved).where(
                    stock.c.location_id == group.location_id, stock.c.sku == sku
                )
            ).one()
            take = min(missing, int(level.on_hand) - int(level.reserved))
            if take > 0:
                move(
                    conn, group.location_id, sku, MovementKind.ADJUSTMENT, -take,
                    reference=f"order:{order_id}", note="short at picking",
                )  # fmt: skip
    return resource_group(engine, order_id, group_id)


def _already(conn: Connection, order_id: UUID, group_id: UUID) -> bool:
    details = conn.execute(
        sa.select(order_events.c.detail).where(
            order_events.c.order_id == order_id, order_events.c.kind == "order_resourced"
        )
    ).scalars()
    return any((d or {}).get("group_id") == str(group_id) for d in details)


def _plan(
    demand: dict[str, int],
    snap: Snapshot,
    excluded: Mapping[str, str],
    method: Method,
    destination: tuple[float, float] | None,
    pickup_id: str | None,
) -> Plan:
    available = {k: v for k, v in snap.available.items() if k[0] not in excluded}
    pickup = next((s for s in snap.sites if s.id == pickup_id), None)
    plan = source(
        demand, snap.sites, available, method=method, policy=snap.policy,
        destination=destination, pickup=pickup,
    )  # fmt: skip
    # this rare path lists its candidates as objects, as the API shows them
    plan = replace(plan, explanation=expanded(plan.explanation) or {})
    listed = set()
    for entry in plan.explanation["candidates"]:
        listed.add(entry["location_id"])
        why = excluded.get(entry["location_id"])
        if why is not None:
            entry.pop("shipment_cost", None)
            entry["excluded_because"] = f"rejected a group of this order: {why}"
    for loc_id, why in sorted(excluded.items()):  # the engine never saw their units
        if loc_id not in listed:
            loc = snap.locations.get(loc_id)
            plan.explanation["candidates"].append(
                {
                    "location_id": loc_id,
                    "type": loc.type.value if loc else None,
                    "excluded_because": f"rejected a group of this order: {why}",
                }
            )
    return plan


def resource_group(engine: Engine, order_id: UUID, group_id: UUID) -> dict[str, Any]:
    """Source a rejected group's units again (see the module docstring)."""
    with engine.connect() as conn:
        order = conn.execute(sa.select(orders).where(orders.c.id == order_id)).first()
        if order is None:
            raise NotFoundError("no such order", code="order_not_found", field="id")
        groups = list(
            conn.execute(
                sa.select(fulfilment_groups).where(fulfilment_groups.c.order_id == order_id)
            )
        )
        group = _group(groups, group_id)
        if group.status != GroupStatus.REJECTED.value:
            raise ConflictError(
                "only a rejected group is re-sourced", code="illegal_transition", field="status"
            )
        if _already(conn, order_id, group_id):
            return load_view(conn, order_id)
        pieces = conn.execute(
            sa.select(allocations.c.line_id, allocations.c.sku, allocations.c.quantity)
            .where(allocations.c.group_id == group_id)
            .order_by(allocations.c.id)
        ).all()
        rejected = conn.execute(
            sa.select(order_events.c.detail).where(
                order_events.c.order_id == order_id,
                order_events.c.kind == "group_status",
                order_events.c.to_status == GroupStatus.REJECTED.value,
            )
        ).scalars()
        excluded = {
            d["location_id"]: d.get("reason", "") for d in rejected if d and "location_id" in d
        }
    demand: dict[str, int] = {}
    for _, sku, qty in pieces:
        demand[sku] = demand.get(sku, 0) + qty
    method = Method(group.method)
    pickup_id = group.pickup_location_id
    address = (order.fulfilment or {}).get("address")
    destination = locate(address) if method is Method.DELIVERY and address else None
    failure: ConflictError | None = None
    for _ in range(TRIES):
        now = utcnow()
        with session_of(engine) as session:
            snap = session.snapshot(
                order.channel, order.external_id, sorted(demand), pickup_id, now
            )
        try:
            plan = _plan(demand, snap, excluded, method, destination, pickup_id)
        except ConflictError as exc:
            failure = exc
            break
        try:
            with write_transaction(engine) as conn:
                lock_groups(conn, order_id)
                if _already(conn, order_id, group_id):
                    return load_view(conn, order_id)
                _record(conn, order, group, plan, snap, pieces, now, destination)
                return load_view(conn, order_id)
        except InsufficientStock as exc:  # taken since the snapshot: look again
            failure = exc
    assert failure is not None
    with write_transaction(engine) as conn:
        lock_groups(conn, order_id)
        if _already(conn, order_id, group_id):
            return load_view(conn, order_id)
        conn.execute(
            order_events.insert().values(
                event_row(
                    order_id, group_id, "resourcing_failed", None, None, utcnow(),
                    {"group_id": str(group_id), "code": failure.code, "reason": failure.message,
                     "excluded": sorted(excluded)},
                )
            )
        )  # fmt: skip
        return load_view(conn, order_id)


def _record(
    conn: Connection,
    order: Any,
    old: Any,
    plan: Plan,
    snap: Snapshot,
    pieces: Sequence[Any],
    now: Any,
    destination: tuple[float, float] | None,
) -> None:
    order_id = order.id
    held = reserve(
        conn,
        [Hold(a.location_id, a.sku, a.quantity) for a in plan.assignments],
        kind="order",
        channel=order.channel,
        extra_safety=snap.policy.safety_stock,
        order_id=order_id,
    )
    method = Method(old.method)
    pickup: Location | None = snap.locations.get(old.pickup_location_id or "")
    group_of: dict[str, UUID] = {}
    rows = []
    for loc_id in plan.locations:
        loc = snap.locations[loc_id]
        if loc.daily_capacity is not None:
            book_pick(conn, loc_id, local_day(loc, now), loc.daily_capacity)
        to = (pickup.latitude, pickup.longitude) if pickup else destination
        km = haversine_km((loc.latitude, loc.longitude), to) if to else None
        gid = group_of[loc_id] = new_id()
        rows.append(
            {
                "id": gid, "order_id": order_id, "method": method.value, "location_id": loc_id,
                "pickup_location_id": old.pickup_location_id, "status": "allocated",
                "promise": promise(now, loc, method, distance_km=km, pickup=pickup),
                "created_at": now, "updated_at": now,
            }
        )  # fmt: skip
    conn.execute(fulfilment_groups.insert(), rows)
    for loc_id, gid in group_of.items():
        ids = [rid for (loc, _), rid in held.items() if loc == loc_id]
        conn.execute(reservations.update().where(reservations.c.id.in_(ids)).values(group_id=gid))
    # the old group's line pieces, spread over the new groups in line order
    left = {(a.location_id, a.sku): a.quantity for a in plan.assignments}
    allocs = []
    for line_id, sku, qty in pieces:
        need = qty
        for (loc_id, s), q in left.items():
            if s != sku or q == 0 or need == 0:
                continue
            take = min(q, need)
            left[(loc_id, s)] -= take
            need -= take
            allocs.append(
                {"id": new_id(), "order_id": order_id, "group_id": group_of[loc_id],
                 "line_id": line_id, "location_id": loc_id, "sku": sku, "quantity": take,
                 "reservation_id": held[(loc_id, sku)]}
            )  # fmt: skip
    conn.execute(allocations.insert(), allocs)
    events = [
        event_row(
            order_id, gid, "group_allocated", None, "allocated", now,
            {"location_id": loc_id, "resourced_from": str(old.id)},
        )
        for loc_id, gid in group_of.items()
    ]  # fmt: skip
    explanation = {**plan.explanation, "reason": f"re-sourced: {plan.explanation['reason']}"}
    events.append(
        event_row(
            order_id, None, "order_resourced", None, None, now,
            {"group_id": str(old.id), "new_groups": [str(g) for g in group_of.values()],
             "sourcing": explanation},
        )
    )  # fmt: skip
    change = refresh_status(conn, order_id, now)
    if change is not None:
        events.append(change)
    conn.execute(order_events.insert(), events)
    sourcing = dict(order.sourcing or {})
    sourcing["resourced"] = [
        *sourcing.get("resourced", []),
        {"group_id": str(old.id), "chosen": plan.explanation["chosen"],
         "reason": explanation["reason"]},
    ]  # fmt: skip
    conn.execute(orders.update().where(orders.c.id == order_id).values(sourcing=sourcing))
