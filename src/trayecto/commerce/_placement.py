"""Placing orders: source them, reserve the units and record them, atomically, in batches.

``place_orders`` makes at most ``TRIES`` rounds, each of two steps on one pooled
connection (``_store``), for every order still waiting:

1. **read** one snapshot (no locks) for the whole batch: the units available for its SKUs
   per location, the locations' and the channel policies' versions (both cached in the
   process), the orders already stored; the sourcing engine chooses for each order in
   turn (pure Python), each taking its units off the snapshot for the next;
2. **write** every order in one transaction: each order's rows, and its holds, conditional
   on what is really there (and a conditional booking of each location's daily picking
   capacity). On PostgreSQL that is one round trip and the row locks are held only from
   the holds to the commit.

If a concurrent order took an order's units between the read and the write, its holds do
not fit: nothing of that order is kept, the others are written, and it goes round again.
The unique (channel, external id) of ``orders`` makes a duplicate answer the stored order,
also when both copies arrive at once. When the engine finds too few units, expired cart
and payment holds on those SKUs are released and it tries once more. ``place_order`` is
a batch of one; the order desk (``_desk``) makes batches of the orders that arrive
together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from trayecto.commerce._geo import locate
from trayecto.commerce._intake import OrderRequest
from trayecto.commerce._inventory import InsufficientStock, release_expired
from trayecto.commerce._model import Capability, Location, LocationType, Method
from trayecto.commerce._promise import promise
from trayecto.commerce._rows import OrderRows, build_rows, distance_km
from trayecto.commerce._snapshot import Snapshot, days_around
from trayecto.commerce._sourcing import Plan, Policy, expanded, source
from trayecto.commerce._store import (
    Duplicate,
    Lease,
    Session,
    Shortage,
    session_of,
)
from trayecto.commerce._tables import channel_policies, orders
from trayecto.db import dialect_insert, write_transaction
from trayecto.kernel import (
    ConflictError,
    NotFoundError,
    TrayectoError,
    ValidationError,
    new_id,
    utcnow,
)

TRIES = 3


def policy_config(engine: Engine, channel: str) -> dict[str, Any] | None:
    """The sourcing settings stored for ``channel`` (None: it follows the defaults)."""
    with engine.connect() as conn:
        config = conn.execute(
            sa.select(channel_policies.c.config).where(channel_policies.c.channel == channel)
        ).scalar()
    return dict(config) if config is not None else None


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


def _pickup(req: OrderRequest, snap: Snapshot) -> Location | None:
    method = req.fulfilment.method
    if method is Method.DELIVERY:
        return None
    loc = snap.pickup
    if loc is None:
        raise NotFoundError(
            f"no location {req.fulfilment.location_id!r}",
            code="location_not_found",
            field="fulfilment.location_id",
        )
    ok = loc.active and (
        loc.type is LocationType.PICKUP_POINT
        if method is Method.PICKUP_POINT
        else (
            Capability.CLICK_AND_COLLECT
            if method is Method.CLICK_AND_COLLECT
            else Capability.SHIP_TO_STORE
        )
        in loc.capabilities
    )
    if not ok:
        raise ValidationError(
            f"location {loc.id} does not offer {method.value}",
            code="location_cannot_serve",
            field="fulfilment.location_id",
        )
    return loc


def _source(
    req: OrderRequest,
    snap: Snapshot,
    demand: dict[str, int],
    pickup: Location | None,
    destination: tuple[float, float] | None,
) -> Plan:
    pickup_site = next((s for s in snap.sites if pickup and s.id == pickup.id), None)
    return source(
        demand,
        snap.sites,
        snap.available,
        method=req.fulfilment.method,
        policy=snap.policy,
        destination=destination,
        pickup=pickup_site,
    )


def _existing(engine: Engine, channel: str, external_id: str) -> UUID | None:
    with engine.connect() as conn:
        found: UUID | None = conn.execute(
            sa.select(orders.c.id).where(
                orders.c.channel == channel, orders.c.external_id == external_id
            )
        ).scalar()
        return found


def _unknown_skus(session: Session, skus: list[str]) -> ValidationError | None:
    """The error naming the SKUs not in the catalogue, if any (asked only when sourcing
    found too few units: a SKU with stock is known)."""
    missing = session.unknown_skus(skus)
    if not missing:
        return None
    return ValidationError(
        f"unknown SKU(s): {', '.join(missing)}", code="unknown_sku", field="lines"
    )


#: What placing one order answered: (order id, created, view of the new order or None
#: when the (channel, external id) was already stored), or the error that refused it.
Placed = tuple[UUID, bool, dict[str, Any] | None]


def _refusal(exc: Shortage) -> TrayectoError:
    if exc.kind == "busy":
        return InsufficientStock(
            "the stock rows stayed busy with other orders; send the order again",
            code="busy",
            field="lines",
        )
    return InsufficientStock(
        f"location {exc.location_id} reached its daily picking capacity"
        if exc.kind == "capacity_full"
        else f"not enough stock of {exc.sku} at {exc.location_id}",
        code=exc.kind,
        field="lines",
        details={"sku": exc.sku, "location_id": exc.location_id},
    )


def place_order(engine: Engine, req: OrderRequest) -> Placed:
    """Place ``req``; returns (order id, created, view of the new order or None when the
    (channel, external id) was already stored)."""
    answer = place_orders(engine, [req])[0]
    if isinstance(answer, TrayectoError):
        raise answer
    return answer


def place_orders(
    engine: Engine,
    reqs: Sequence[OrderRequest],
    *,
    candidates: bool = True,
    lease: Lease | None = None,
) -> list[Placed | TrayectoError]:
    """Place a batch of orders: ONE snapshot, each order sourced in turn on what the ones
    before it left, and ONE write transaction for all of them. Each answer is the order's
    own: an order that does not fit (its units were taken since the snapshot) takes
    nothing and is tried again in the next round, with the others still waiting; an order
    that cannot be placed gets its error. The same order twice in a batch (a retry) is
    placed once and the copy answers as the first; another order under a key already in
    the batch is placed after the batch, so it answers the stored order if the first was
    placed. ``candidates=False``: the views leave the explanation's candidates as stored (a
    table), for callers that show only its summary (the order desk). ``lease``: the
    rounds run on the caller's connection (``_store.Lease``) instead of checking one out."""
    answers: list[Placed | TrayectoError | None] = [None] * len(reqs)
    first: dict[tuple[str, str], int] = {}
    copies: list[tuple[int, int]] = []
    later: list[int] = []
    for i, req in enumerate(reqs):
        key = (req.channel, req.external_id)
        if key not in first:
            first[key] = i
        elif req == reqs[first[key]]:  # a retry: it answers what the first one gets
            copies.append((i, first[key]))
        else:  # another order under the same key: it comes after the first one
            later.append(i)
    pending = sorted(first.values())
    ids = {i: new_id() for i in pending}
    refused: dict[int, TrayectoError] = {}
    freed = False
    for _ in range(TRIES):
        if not pending:
            break
        pending, release, since = _round(
            engine, reqs, pending, ids, answers, refused, freed, candidates, lease
        )
        if release and not freed:  # expired cart and payment holds: free them, look again
            freed = True
            release_expired(engine, now=since, skus=release)
    for i in pending:
        answers[i] = refused[i]
    for i, j in copies:
        done = answers[j]
        answers[i] = (done[0], False, None) if isinstance(done, tuple) else done
    if later:
        again = place_orders(engine, [reqs[i] for i in later], candidates=candidates, lease=lease)
        for i, answer in zip(later, again, strict=True):
            answers[i] = answer
    assert all(a is not None for a in answers)
    return answers  # type: ignore[return-value]


def _round(
    engine: Engine,
    reqs: Sequence[OrderRequest],
    pending: list[int],
    ids: dict[int, UUID],
    answers: list[Placed | TrayectoError | None],
    refused: dict[int, TrayectoError],
    freed: bool,
    candidates: bool,
    lease: Lease | None,
) -> tuple[list[int], list[str], datetime]:
    """One attempt at the ``pending`` orders; returns those to try again, the SKUs whose
    holds expired by the time of the earliest order that found too few should be released
    first, and that time (a historic order frees only what had expired by its time)."""
    now = utcnow()
    ats = {i: reqs[i].placed_at or now for i in pending}  # a historic order keeps its time
    demands = {i: reqs[i].demand() for i in pending}
    skus = sorted({s for i in pending for s in demands[i]})
    days = sorted({d for at in ats.values() for d in days_around(at)})
    again: list[int] = []
    release: set[str] = set()
    since = now
    batch: list[tuple[int, OrderRows, dict[str, Any]]] = []
    with session_of(engine, lease) as session:
        keys = [(reqs[i].channel, reqs[i].external_id) for i in pending]
        read = session.read(keys, skus, max(ats.values()), days)
        for i in pending:
            req, at, demand = reqs[i], ats[i], demands[i]
            order_skus = sorted(demand)
            try:
                pickup_id = (
                    None if req.fulfilment.method is Method.DELIVERY else req.fulfilment.location_id
                )
                snap = session.assemble(
                    read, req.channel, req.external_id, order_skus, pickup_id, at
                )
                if snap.existing is not None:
                    answers[i] = (snap.existing, False, None)
                    continue
                pickup = _pickup(req, snap)
                destination = locate(req.fulfilment.address) if req.fulfilment.address else None
                try:
                    plan = _source(req, snap, demand, pickup, destination)
                except ConflictError as exc:
                    unknown = _unknown_skus(session, order_skus)
                    if unknown is not None:
                        raise unknown from None
                    if snap.expired_holds and not freed:
                        refused[i] = exc.with_traceback(None)
                        release.update(order_skus)
                        since = min(since, at)
                        again.append(i)
                        continue
                    raise
                rows, view = build_rows(
                    req, ids[i], at, plan, snap, pickup, destination, candidates=candidates
                )
            except TrayectoError as exc:
                # kept without its traceback: that would hold this frame, and the batch
                # with it, in a cycle only the garbage collector frees
                answers[i] = exc.with_traceback(None)
                continue
            read.take(rows.holds, [(x[0], x[1]) for x in rows.loads])
            batch.append((i, rows, view))
        outcomes = session.write_many([rows for _, rows, _ in batch]) if batch else []
    for (i, _, view), outcome in zip(batch, outcomes, strict=True):
        if outcome is None:
            answers[i] = (ids[i], True, view)
        elif isinstance(outcome, Duplicate):  # placed concurrently, committed first
            found = _existing(engine, reqs[i].channel, reqs[i].external_id)
            if found is not None:
                answers[i] = (found, False, None)
            else:  # that copy was refused meanwhile: this one may still be placed
                refused.setdefault(i, ConflictError("the order was busy; send it again"))
                again.append(i)
        else:  # a concurrent order took the units (or the picks) since the snapshot
            refused[i] = _refusal(outcome)
            again.append(i)
    return sorted(again), sorted(release), since


def quote(engine: Engine, req: OrderRequest) -> dict[str, Any]:
    """What placing ``req`` now would choose and promise, without reserving anything."""
    demand = req.demand()
    destination = locate(req.fulfilment.address) if req.fulfilment.address else None
    pickup_id = None if req.fulfilment.method is Method.DELIVERY else req.fulfilment.location_id
    now = utcnow()
    with session_of(engine) as session:
        read = session.read([(req.channel, req.external_id)], sorted(demand), now)
        snap = session.assemble(read, req.channel, req.external_id, sorted(demand), pickup_id, now)
        pickup = _pickup(req, snap)
        try:
            plan = _source(req, snap, demand, pickup, destination)
        except ConflictError:
            unknown = _unknown_skus(session, sorted(demand))
            if unknown is not None:
                raise unknown from None
            raise
    groups = []
    for loc_id in plan.locations:
        loc = snap.locations[loc_id]
        groups.append(
            {
                "location_id": loc_id,
                "lines": [
                    {"sku": a.sku, "quantity": a.quantity}
                    for a in plan.assignments
                    if a.location_id == loc_id
                ],
                "promise": promise(
                    now,
                    loc,
                    req.fulfilment.method,
                    distance_km=distance_km(loc, pickup, destination),
                    pickup=pickup,
                ),
            }
        )
    return {"fulfilment_groups": groups, "sourcing": expanded(plan.explanation)}
