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
from trayecto.commerce._optimise import search, singles_of
from trayecto.kernel import ValidationError

EARTH_KM = 6371.0088
_HALF_WAY = math.pi * EARTH_KM  # the farthest two points can be


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
    #: (latitude, longitude, cos latitude) in radians, for the distance to each order
    radians: tuple[float, float, float] = field(init=False, repr=False, compare=False)
    #: the usual case, decided once: active, open, no picking limit, holds stock and ships
    plain: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lat = math.radians(self.latitude)
        object.__setattr__(self, "radians", (lat, math.radians(self.longitude), math.cos(lat)))
        object.__setattr__(
            self,
            "plain",
            self.active
            and self.open
            and self.capacity_left is None
            and self.type is not LocationType.PICKUP_POINT
            and Capability.SHIP in self.capabilities,
        )


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


# --- the engine ------------------------------------------------------------------------------


def _exclusion(site: Site, method: Method, pickup_id: str | None) -> str | None:
    if not site.active:
        return "inactive"
    if site.type is LocationType.PICKUP_POINT:
        return "a pickup point holds no stock"
    is_pickup_shop = site.id == pickup_id
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


def _site_id(site: Site) -> str:
    return site.id


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
    (on hand - reserved - safety stock - the channel's safety stock).

    Linear in the size of the snapshot: what each location holds is gathered in one pass
    over ``available``, and only locations holding some of the order are looked at."""
    if pickup is not None:
        destination = (pickup.latitude, pickup.longitude)
    pickup_id = pickup.id if pickup is not None else None
    skus = sorted(demand)
    # what each location holds of the order's SKUs: one pass over the snapshot (in its
    # order, SKU by SKU as the stores build it)
    holds: dict[str, dict[str, int]] = {}
    for (sid, sku), q in available.items():
        if q > 0 and sku in demand:
            held = holds.get(sid)
            if held is None:
                holds[sid] = {sku: q}
            else:
                held[sku] = q
    # plain floats (not Optional) so that the compiled engine keeps them unboxed
    located = destination is not None
    dlat = dlon = dcos = 0.0
    if destination is not None:
        dlat = math.radians(destination[0])
        dlon = math.radians(destination[1])
        dcos = math.cos(dlat)
    ship = policy.shipment_cost
    per_km = policy.per_km
    pick = policy.pick_cost
    reserve, penalty = policy.walk_in_reserve, policy.walk_in_penalty
    line_costs: dict[str, dict[int, float]] = {s: {} for s in skus}
    line_opens: dict[str, list[tuple[float, int, float]]] = {s: [] for s in skus}
    candidates: list[list[Any]] = []
    eligible: list[Site] = []
    fixed: list[float] = []
    stocks: list[dict[str, int]] = []
    looked_at = [s for s in sites if s.id in holds or s.id == pickup_id]
    looked_at.sort(key=_site_id)
    delivery = method is Method.DELIVERY
    dropship, shop = LocationType.SUPPLIER_DROPSHIP, LocationType.SHOP
    for site in looked_at:
        sid = site.id
        kind = site.type
        held = holds.get(sid)
        dist = 0.0
        shown: float | None = None
        if located:  # math.* called by name: the compiled engine calls C's functions
            lat, lon, cos_lat = site.radians
            s1 = math.sin((dlat - lat) / 2)
            s2 = math.sin((dlon - lon) / 2)
            h = s1 * s1 + cos_lat * dcos * s2 * s2
            dist = 2 * EARTH_KM * math.asin(math.sqrt(h)) if h < 1.0 else _HALF_WAY
            shown = int(dist * 10 + 0.5) / 10  # to 100 m (round() costs 4x more)
        # a row of CANDIDATE_FIELDS; the type is a str (StrEnum): serialised as its value
        entry: list[Any] = [sid, kind, shown, {} if held is None else held, None, None]
        candidates.append(entry)
        # the usual case in one test; the reason otherwise
        if not (site.plain and (delivery or kind is not dropship)):
            why = _exclusion(site, method, pickup_id)
            if why is not None:
                entry[5] = why
                continue
        if held is None:
            entry[5] = "holds none of the order's SKUs"
            continue
        f = 0.0 if sid == pickup_id else ship[kind] + per_km * dist
        entry[4] = int(f * 1000 + 0.5) / 1000
        # the lines it can serve whole, with their variable cost
        j = len(eligible)
        eligible.append(site)
        fixed.append(f)
        stocks.append(held)
        unit = pick[kind]
        is_shop = kind is shop
        for sku, q in held.items():
            qty = demand[sku]
            if q >= qty:
                v = unit * qty
                if is_shop and q - reserve < qty:  # takes units kept for walk-in customers
                    v += penalty * (qty if q <= reserve else qty - q + reserve)
                line_costs[sku][j] = v
                line_opens[sku].append((v + f, j, v))

    def var_cost(j: int, sku: str, qty: int) -> float:
        cost = pick[eligible[j].type] * qty
        if eligible[j].type is shop:
            spare = stocks[j].get(sku, 0) - reserve
            cost += penalty * max(0, qty - max(0, spare))
        return cost

    lines: list[tuple[str, int]] = []
    costs: list[dict[int, float]] = []
    opens: list[list[tuple[float, int, float]]] = []
    splits: list[dict[str, Any]] = []
    short: dict[str, int] = {}
    for sku in skus:
        qty = demand[sku]
        if line_costs[sku]:
            lines.append((sku, qty))
            costs.append(line_costs[sku])
            opens.append(line_opens[sku])
            continue
        holders = sorted(
            ((stocks[j].get(sku, 0), j) for j in range(len(eligible))),
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
            v = var_cost(j, sku, take)
            lines.append((sku, take))
            costs.append({j: v})
            opens.append([(v + fixed[j], j, v)])
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
    singles = singles_of(costs, fixed)
    cost, chosen_of_line = search(
        costs, opens, fixed, policy.split_penalty, policy.max_locations, singles
    )
    if not chosen_of_line:
        raise InsufficientStock(
            "no combination of locations can fulfil the order within the policy's limits",
            field="lines",
        )
    merged: dict[tuple[str, str], int] = {}
    for (sku, qty), j in zip(lines, chosen_of_line, strict=True):
        key = (eligible[j].id, sku)
        merged[key] = merged.get(key, 0) + qty
    assignments = tuple(Assignment(loc, sku, q) for (loc, sku), q in sorted(merged.items()))
    used = set(chosen_of_line)
    chosen = sorted({eligible[j].id for j in used})
    runner = _runner_up(singles, used, eligible)
    reason = (
        f"{'one shipment' if len(chosen) == 1 else f'{len(chosen)} shipments'} from "
        f"{', '.join(chosen)} at cost {cost:.2f}"
    )
    if runner is not None:
        reason += f"; next best {', '.join(runner['locations'])} at {runner['cost']:.2f}"
    explanation = {
        "method": method.value,
        "destination": list(destination) if destination else None,
        "pickup_location_id": pickup_id,
        "policy": policy.to_dict(),
        "candidates": {"fields": CANDIDATE_FIELDS, "rows": candidates},
        "chosen": chosen,
        "cost": round(cost, 3),
        "runner_up": runner,
        "splits": splits,
        "reason": reason,
    }
    return Plan(assignments, cost, explanation)


#: The columns of each candidate row of an explanation as ``source`` makes and the orders
#: table stores it (a table: the keys are not repeated in every candidate of every order).
CANDIDATE_FIELDS = (
    "location_id", "type", "distance_km", "available", "shipment_cost", "excluded_because",
)  # fmt: skip


def expanded(explanation: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``explanation`` as the API shows it: each candidate an object, with
    ``shipment_cost`` when it was eligible and ``excluded_because`` when it was not.
    Explanations stored before candidates became a table pass through as they are."""
    if explanation is None:
        return None
    table = explanation.get("candidates")
    if not isinstance(table, Mapping):
        return dict(explanation)
    fields = table["fields"]
    listed = []
    for row in table["rows"]:
        entry = {f: v for f, v in zip(fields, row, strict=True) if v is not None}
        entry.setdefault("distance_km", None)  # unknown without a destination
        listed.append(entry)
    return {**explanation, "candidates": listed}


def _runner_up(
    singles: list[tuple[float, int]], used: set[int], eligible: list[Site]
) -> dict[str, Any] | None:
    """The best single shipment other than the chosen plan (for the explanation)."""
    skip = next(iter(used)) if len(used) == 1 else -1
    for total, j in singles:
        if j != skip:
            return {"locations": [eligible[j].id], "cost": round(total, 3)}
    return None
