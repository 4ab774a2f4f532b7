"""The commerce vocabulary: enums, frozen records, and the fulfilment state machine.

Pure: no database here. The state machine is the one place that says which status may
follow which; ``_orders`` applies it under a row lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from trayecto.kernel import ConflictError


class LocationType(StrEnum):
    CENTRAL_WAREHOUSE = "central_warehouse"
    ECOMMERCE_WAREHOUSE = "ecommerce_warehouse"
    SHOP = "shop"
    DARK_STORE = "dark_store"
    SUPPLIER_DROPSHIP = "supplier_dropship"
    PICKUP_POINT = "pickup_point"


class Capability(StrEnum):
    SHIP = "ship"
    CLICK_AND_COLLECT = "click_and_collect"
    SHIP_TO_STORE = "ship_to_store"
    RETURNS = "returns"


class Method(StrEnum):
    DELIVERY = "delivery"
    CLICK_AND_COLLECT = "click_and_collect"
    SHIP_TO_STORE = "ship_to_store"
    PICKUP_POINT = "pickup_point"


class MovementKind(StrEnum):
    RECEIPT = "receipt"
    SALE = "sale"
    TRANSFER_IN = "transfer_in"
    TRANSFER_OUT = "transfer_out"
    RETURN = "return"
    ADJUSTMENT = "adjustment"
    COUNT = "count"


class PaymentMethod(StrEnum):
    ONLINE = "online"
    CARD_IN_SHOP = "card_in_shop"
    CASH = "cash"
    CASH_ON_DELIVERY = "cash_on_delivery"
    EXCHANGE = "exchange"  # the value of returned goods, paying for their replacement


class GroupStatus(StrEnum):
    ALLOCATED = "allocated"
    PICKING = "picking"
    PACKED = "packed"
    SHIPPED = "shipped"
    READY_FOR_PICKUP = "ready_for_pickup"
    DELIVERED = "delivered"
    COLLECTED = "collected"
    CANCELLED = "cancelled"
    REJECTED = "rejected"  # the location refused it or was short at picking: re-sourced


FINAL = frozenset(
    {GroupStatus.DELIVERED, GroupStatus.COLLECTED, GroupStatus.CANCELLED, GroupStatus.REJECTED}
)
#: Groups that no longer count for the order's status (their units went elsewhere or nowhere).
DROPPED = frozenset({GroupStatus.CANCELLED, GroupStatus.REJECTED})
_REJECTABLE = frozenset({GroupStatus.ALLOCATED, GroupStatus.PICKING})
_CANCELLABLE = frozenset(
    {
        GroupStatus.ALLOCATED,
        GroupStatus.PICKING,
        GroupStatus.PACKED,
        GroupStatus.READY_FOR_PICKUP,
    }
)
#: How far along each status is; the order's status is built from its groups' ranks.
RANK = {
    GroupStatus.ALLOCATED: 1,
    GroupStatus.PICKING: 2,
    GroupStatus.PACKED: 3,
    GroupStatus.SHIPPED: 4,
    GroupStatus.READY_FOR_PICKUP: 5,
    GroupStatus.DELIVERED: 6,
    GroupStatus.COLLECTED: 6,
}


def next_statuses(status: GroupStatus, method: Method, transfer: bool) -> frozenset[GroupStatus]:
    """The statuses a group may move to from ``status``.

    ``transfer`` says the units travel to another place before the customer gets them
    (a pickup group picked away from its shop, or any ship-to-store / pickup-point group).
    """
    s = GroupStatus
    allowed: set[GroupStatus] = set()
    if status is s.ALLOCATED:
        allowed.add(s.PICKING)
    elif status is s.PICKING:
        allowed.add(s.PACKED)
    elif status is s.PACKED:
        if method is Method.DELIVERY or transfer:
            allowed.add(s.SHIPPED)
        else:
            allowed.add(s.READY_FOR_PICKUP)
    elif status is s.SHIPPED:
        allowed.add(s.DELIVERED if method is Method.DELIVERY else s.READY_FOR_PICKUP)
    elif status is s.READY_FOR_PICKUP:
        allowed.add(s.COLLECTED)
    if status in _CANCELLABLE:
        allowed.add(s.CANCELLED)
    if status in _REJECTABLE:
        allowed.add(s.REJECTED)
    return frozenset(allowed)


def check_transition(
    current: GroupStatus, target: GroupStatus, method: Method, transfer: bool
) -> None:
    if target not in next_statuses(current, method, transfer):
        options = sorted(x.value for x in next_statuses(current, method, transfer))
        raise ConflictError(
            f"a {method.value} group cannot go from {current.value} to {target.value}; "
            f"next may be: {', '.join(options) or 'nothing (final)'}",
            code="illegal_transition",
            field="status",
        )


def order_status(groups: Iterable[GroupStatus]) -> str:
    """The order's status from its groups': one status when all agree, ``partially_X``
    (X the most advanced) when they differ, ``completed`` when every live group is done."""
    groups = list(groups)
    live = [g for g in groups if g not in DROPPED]
    if not live:  # nothing left to fulfil: rejected ones that found no other source
        return "rejected" if GroupStatus.REJECTED in groups else "cancelled"
    distinct = set(live)
    if len(distinct) == 1:
        return live[0].value
    if all(g in FINAL for g in live):
        return "completed"
    top = max(live, key=lambda g: RANK[g])
    return f"partially_{top.value}"


# --- records -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Location:
    id: str
    name: str
    type: LocationType
    latitude: float
    longitude: float
    capabilities: frozenset[Capability]
    address: dict[str, Any] | None = None
    timezone: str = "Europe/Madrid"
    opening_hours: dict[str, list[str]] | None = None
    slots: list[str] | None = None
    daily_capacity: int | None = None
    cutoff: str | None = None
    active: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type.value,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "capabilities": sorted(c.value for c in self.capabilities),
            "address": self.address,
            "timezone": self.timezone,
            "opening_hours": self.opening_hours,
            "slots": self.slots,
            "daily_capacity": self.daily_capacity,
            "cutoff": self.cutoff,
            "active": self.active,
        }


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    price: Decimal
    currency: str
    product_code: str | None = None
    category: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    active: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "name": self.name,
            "price": str(self.price),
            "currency": self.currency,
            "product_code": self.product_code,
            "category": self.category,
            "attributes": self.attributes,
            "active": self.active,
        }


@dataclass(frozen=True, slots=True)
class StockLevel:
    location_id: str
    sku: str
    on_hand: int
    reserved: int
    safety_stock: int

    @property
    def available(self) -> int:
        """Available to promise: on hand less reservations less the safety stock."""
        return max(0, self.on_hand - self.reserved - self.safety_stock)

    def to_dict(self) -> dict[str, Any]:
        return {
            "location_id": self.location_id,
            "sku": self.sku,
            "on_hand": self.on_hand,
            "reserved": self.reserved,
            "safety_stock": self.safety_stock,
            "available": self.available,
        }


@dataclass(frozen=True, slots=True)
class Movement:
    id: UUID
    location_id: str
    sku: str
    kind: MovementKind
    quantity: int
    reference: str | None
    note: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Reservation:
    id: UUID
    location_id: str
    sku: str
    quantity: int
    kind: str
    status: str
    expires_at: datetime | None
    order_id: UUID | None = None
