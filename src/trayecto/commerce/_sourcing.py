"""The sourcing engine: which location(s) fulfil an order, and why.

Pure functions over a snapshot (sites, available units); no database. Two stages:

1. **Hard filters** per location: active, the capability the method needs, daily picking
   capacity left, open at all, and for each line enough available units (after the
   channel's safety stock) to ship it whole. A line no single location can cover is split
   across the locations holding most of it (said so in the explanation).
2. **Cost**, minimised exactly by branch and bound over the order's lines:
   ``Σ lines pick_cost[type] * qty + walk-in penalty for units taken from a shop's
   walk-in reserve`` ``+ Σ used locations (shipment_cost[type] + per_km * haversine km)``
   ``+ split_penalty * (locations used - 1)``. For click & collect the chosen shop
   ships nothing (its shipment cost is zero), so it wins whenever it holds the goods.

Weights are scoring units (EUR-equivalents), floats on purpose: they rank options, they
are never charged to anyone. Every decision carries an explanation: each candidate with
why it was kept or dropped, the chosen plan and the runner-up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trayecto.commerce._inventory import InsufficientStock
from trayecto.commerce._model import Capability, LocationType, Method
from trayecto.kernel import ValidationError

EARTH_KM = 6371.0088
INF = float("inf")


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(h)))


_SHIP = {
    "central_warehouse": 4.5,
    "ecommerce_warehouse": 3.9,
    "dark_store": 3.2,
    "shop": 5.5,
    "supplier_dropship": 6.5,
    "pickup_point": 99.0,
}
_PICK = {
    "central_warehouse": 0.35,
    "ecommerce_warehouse": 0.30,
    "dark_store": 0.45,
    "shop": 1.10,
    "supplier_dropship": 0.60,
    "pickup_point": 99.0,
}


@dataclass(frozen=True, slots=True)
class Policy:
    """Sourcing rules of one channel. Defaults favour e-commerce warehouses, then nearby
    stock, keep two units of each SKU in every shop for walk-in customers, and split an
    order only when it saves more than a second parcel costs."""

    shipment_cost: Mapping[str, float] = field(default_factory=lambda: dict(_SHIP))
    pick_cost: Mapping[str, float] = field(default_factory=lambda: dict(_PICK))
    per_km: float = 0.004
    split_penalty: float = 5.0
    walk_in_reserve: int = 2
    walk_in_penalty: float = 3.0
    safety_stock: int = 0
    allow_split: bool = True
    max_locations: int = 4

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> Policy:
        if not config:
            return cls()
        known = set(cls.__dataclass_fields__)
        unknown = set(config) - known
        if unknown:
            raise ValidationError(
                f"unknown policy setting(s): {', '.join(sorted(unknown))}", field="policy"
            )
        values: dict[str, Any] = {}
        for key, value in config.items():
            if key in ("shipment_cost", "pick_cost"):
                base = dict(_SHIP if key == "shipment_cost" else _PICK)
                if not isinstance(value, dict):
                    raise ValidationError(f"{key} must map location types to costs", field=key)
                for t, c in value.items():
                    LocationType(t)
                    base[t] = float(c)
                values[key] = base
            elif key == "allow_split":
                values[key] = bool(value)
            elif key in ("walk_in_reserve", "safety_stock", "max_locations"):
                values[key] = int(value)
            else:
                values[key] = float(value)
            if not isinstance(values[key], dict | bool) and values[key] < 0:
                raise ValidationError(f"{key} must not be negative", field=key)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "shipment_cost": dict(self.shipment_cost),
            "pick_cost": dict(self.pick_cost),
            "per_km": self.per_km,
            "split_penalty": self.split_penalty,
            "walk_in_reserve": self.walk_in_reserve,
            "walk_in_penalty": self.walk_in_penalty,
            "safety_stock": self.safety_stock,
            "allow_split": self.allow_split,
            "max_locations": self.max_locations,
        }


@dataclass(frozen=True, slots=True)
class Site:
    """A location as the engine sees it."""

    id: str
    type: LocationType
    latitude: float
    longitude: float
    capabilities: frozenset[Capability]
    capacity_left: int | None = None  # picks left today; None = unbounded
    open: bool = True
    active: bool = True


@dataclass(frozen=True, slots=True)
class Assignment:
    location_id: str
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Plan:
    assignments: tuple[Assignment, ...]
    cost: float
    explanation: dict[str, Any]

    @property
    def locations(self) -> list[str]:
        return sorted({a.location_id for a in self.assignments})


# --- the exact optimiser -------------------------------------------------------------------


def optimise(
    options: Sequence[Sequence[tuple[int, float]]],
    fixed: Sequence[float],
    split_penalty: float,
    max_locations: int = 99,
) -> tuple[float, list[int]]:
    """Minimise ``Σ_l v[l, j_l] + Σ_{j used} fixed[j] + split_penalty * (|used| - 1)``.

    ``options[l]`` lists ``(location index, variable cost)`` of the locations that can
    serve line ``l`` whole. Exact: depth-first branch and bound over lines (fewest options
    first), seeded by the best single location; returns ``(cost, location per line)`` or
    ``(inf, [])`` when no assignment exists."""
    n = len(options)
    if n == 0:
        return 0.0, []
    order = sorted(range(n), key=lambda i: len(options[i]))
    opts = [sorted(options[i], key=lambda o: o[1] + fixed[o[0]]) for i in order]
    min_v = [min((v for _, v in o), default=INF) for o in opts]
    if INF in min_v:
        return INF, []
    # tail[k] = Σ_{l ≥ k} min_v[l]: a lower bound for the lines still to place
    tail = [0.0] * (n + 1)
    for k in range(n - 1, -1, -1):
        tail[k] = tail[k + 1] + min_v[k]

    best = INF
    best_pick: list[int] = []
    # seed: the best single location that serves every line
    per_loc = [dict(o) for o in opts]
    common = set(per_loc[0])
    for d in per_loc[1:]:
        common &= set(d)
    for j in common:
        cost = fixed[j] + sum(d[j] for d in per_loc)
        if cost < best:
            best, best_pick = cost, [j] * n

    pick = [0] * n
    used = [0] * len(fixed)  # lines assigned to each location
    n_used = 0
    # per line: (location, variable cost, cost if it opens the location)
    opened = [[(j, v, v + fixed[j]) for j, v in o] for o in opts]

    def dfs(k: int, cost: float) -> None:
        nonlocal best, best_pick, n_used
        if k == n:
            if cost < best - 1e-12:
                best, best_pick = cost, pick.copy()
            return
        rest = tail[k + 1]
        limit = best - 1e-12 - rest
        if cost + min_v[k] >= limit:
            return
        pen = split_penalty if n_used else 0.0
        can_open = n_used < max_locations
        for j, v, vf in opened[k]:
            if used[j]:
                c = cost + v
            elif can_open:
                c = cost + vf + pen
            else:
                continue
            if c >= limit:
                continue
            pick[k] = j
            if not used[j]:
                n_used += 1
            used[j] += 1
            dfs(k + 1, c)
            used[j] -= 1
            if not used[j]:
                n_used -= 1
            limit = best - 1e-12 - rest

    dfs(0, 0.0)
    if not best_pick:
        return INF, []
    out = [0] * n
    for pos, i in enumerate(order):
        out[i] = best_pick[pos]
    return best, out


# --- the engine ------------------------------------------------------------------------------

_NEEDS_SOURCE_SHIP = "ship"


def _exclusion(site: Site, method: Method, pickup: Site | None, ship_ok: bool) -> str | None:
    if not site.active:
        return "inactive"
    if site.type is LocationType.PICKUP_POINT:
        return "a pickup point holds no stock"
    is_pickup_shop = pickup is not None and site.id == pickup.id
    if not is_pickup_shop and Capability.SHIP not in site.capabilities:
        return "cannot ship (no 'ship' capability)"
    if (
        not is_pickup_shop
        and method is not Method.DELIVERY
        and site.type is LocationType.SUPPLIER_DROPSHIP
    ):
        return "a drop-ship supplier ships to customers only, not to a shop"
    if site.capacity_left is not None and site.capacity_left <= 0:
        return "daily picking capacity used up"
    if not site.open:
        return "closed all week"
    return None


def source(
    demand: Mapping[str, int],
    sites: Sequence[Site],
    available: Mapping[tuple[str, str], int],
    *,
    method: Method,
    policy: Policy,
    destination: tuple[float, float] | None = None,
    pickup: Site | None = None,
) -> Plan:
    """Choose locations for ``demand`` (SKU → units); see the module docstring.

    ``available`` maps (location, SKU) to units available to promise for this channel
    (on hand - reserved - safety stock - the channel's safety stock)."""
    if pickup is not None:
        destination = (pickup.latitude, pickup.longitude)
    skus = sorted(demand)
    candidates: list[dict[str, Any]] = []
    eligible: list[Site] = []
    fixed: list[float] = []
    ship = {t: policy.shipment_cost[t.value] for t in LocationType}
    pick_of = {t: policy.pick_cost[t.value] for t in LocationType}
    pickup_id = pickup.id if pickup is not None else None
    for site in sorted(sites, key=lambda s: s.id):
        sid = site.id
        holds = {s: q for s in skus if (q := available.get((sid, s), 0))}
        if not holds and sid != pickup_id:
            continue  # holds none of the order's SKUs: not a candidate
        why = _exclusion(site, method, pickup, True)
        dist = haversine_km((site.latitude, site.longitude), destination) if destination else None
        entry: dict[str, Any] = {
            "location_id": sid,
            "type": site.type.value,
            "distance_km": round(dist, 1) if dist is not None else None,
            "available": holds,
        }
        if why is None and not holds:
            why = "holds none of the order's SKUs"
        if why is not None:
            entry["excluded_because"] = why
            candidates.append(entry)
            continue
        f = 0.0 if sid == pickup_id else ship[site.type] + policy.per_km * (dist or 0)
        entry["shipment_cost"] = round(f, 3)
        candidates.append(entry)
        eligible.append(site)
        fixed.append(f)

    def var_cost(site: Site, sku: str, qty: int) -> float:
        cost = pick_of[site.type] * qty
        if site.type is LocationType.SHOP:
            spare = available.get((site.id, sku), 0) - policy.walk_in_reserve
            cost += policy.walk_in_penalty * max(0, qty - max(0, spare))
        return cost

    lines: list[tuple[str, int]] = []
    options: list[list[tuple[int, float]]] = []
    splits: list[dict[str, Any]] = []
    short: dict[str, int] = {}
    for sku in skus:
        qty = demand[sku]
        opts = [
            (j, var_cost(site, sku, qty))
            for j, site in enumerate(eligible)
            if available.get((site.id, sku), 0) >= qty
        ]
        if opts:
            lines.append((sku, qty))
            options.append(opts)
            continue
        holders = sorted(
            ((available.get((s.id, sku), 0), j) for j, s in enumerate(eligible)),
            key=lambda x: (-x[0], fixed[x[1]]),
        )
        total = sum(q for q, _ in holders)
        if total < qty or not policy.allow_split:
            short[sku] = total
            continue
        remaining, pieces = qty, []
        for q, j in holders:
            if remaining <= 0 or q <= 0:
                break
            take = min(q, remaining)
            lines.append((sku, take))
            options.append([(j, var_cost(eligible[j], sku, take))])
            pieces.append({"location_id": eligible[j].id, "quantity": take})
            remaining -= take
        splits.append({"sku": sku, "quantity": qty, "pieces": pieces})
    if short:
        detail = ", ".join(f"{s}: {demand[s]} wanted, {q} available" for s, q in short.items())
        raise InsufficientStock(
            f"not enough stock to fulfil the order ({detail})",
            field="lines",
            details={
                "short": [{"sku": s, "wanted": demand[s], "available": q} for s, q in short.items()]
            },
        )
    cost, pick = optimise(options, fixed, policy.split_penalty, policy.max_locations)
    if not pick:
        raise InsufficientStock(
            "no combination of locations can fulfil the order within the policy's limits",
            field="lines",
        )
    merged: dict[tuple[str, str], int] = {}
    for (sku, qty), j in zip(lines, pick, strict=True):
        key = (eligible[j].id, sku)
        merged[key] = merged.get(key, 0) + qty
    assignments = tuple(Assignment(loc, sku, q) for (loc, sku), q in sorted(merged.items()))
    chosen = sorted({eligible[j].id for j in pick})
    runner = _runner_up(options, fixed, policy, set(pick), eligible)
    reason = (
        f"{'one shipment' if len(chosen) == 1 else f'{len(chosen)} shipments'} from "
        f"{', '.join(chosen)} at cost {cost:.2f}"
    )
    if runner is not None:
        reason += f"; next best {', '.join(runner['locations'])} at {runner['cost']:.2f}"
    explanation = {
        "method": method.value,
        "destination": list(destination) if destination else None,
        "pickup_location_id": pickup.id if pickup else None,
        "policy": policy.to_dict(),
        "candidates": candidates,
        "chosen": chosen,
        "cost": round(cost, 3),
        "runner_up": runner,
        "splits": splits,
        "reason": reason,
    }
    return Plan(assignments, cost, explanation)


def _runner_up(
    options: list[list[tuple[int, float]]],
    fixed: list[float],
    policy: Policy,
    used: set[int],
    eligible: list[Site],
) -> dict[str, Any] | None:
    """The best single shipment other than the chosen plan (for the explanation)."""
    per_loc = [dict(o) for o in options]
    common = set(per_loc[0]) if per_loc else set()
    for d in per_loc[1:]:
        common &= set(d)
    common -= used if len(used) == 1 else set()
    if not common:
        return None
    j = min(common, key=lambda x: fixed[x] + sum(d[x] for d in per_loc))
    cost = fixed[j] + sum(d[j] for d in per_loc)
    return {"locations": [eligible[j].id], "cost": round(cost, 3)}
