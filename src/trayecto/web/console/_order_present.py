"""What the order pages, the stock page and the customer's orders panel show, built from
``trayecto.commerce``: labels in the reader's language, money and dates for people,
where each shipment is and when it arrives. No queries here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from trayecto import commerce
from trayecto.web.console._commerce_labels import (
    ACTION_LABELS,
    CHANNEL_ICONS,
    HISTORY_LABELS,
    LOCATION_TYPE_LABELS,
    METHOD_LABELS,
    OPEN_STATUSES,
    ORDER_CHANNEL_LABELS,
    PAYMENT_METHOD_LABELS,
    RETURN_METHOD_LABELS,
    RETURN_STATUS_LABELS,
    status_label,
    tone,
)
from trayecto.web.console._i18n import Formatter
from trayecto.web.console._present import Labels

__all__ = ["Places", "order_detail", "order_rows", "promise_text", "stock_rows"]


class Places:
    """Locations by id, for showing a name and a city instead of a code."""

    def __init__(self, locations: Iterable[commerce.Location]) -> None:
        self.by_id = {loc.id: loc for loc in locations}

    def name(self, location_id: str | None) -> str:
        if not location_id:
            return "—"
        loc = self.by_id.get(location_id)
        return loc.name if loc else location_id

    def city(self, location_id: str | None) -> str | None:
        loc = self.by_id.get(location_id or "")
        city = (loc.address or {}).get("city") if loc else None
        return str(city) if city else None

    def type(self, location_id: str | None) -> str | None:
        loc = self.by_id.get(location_id or "")
        return loc.type.value if loc else None


def _day(fmt: Formatter, iso: str | None) -> str | None:
    """A promised calendar day (``2026-11-24``) with its weekday."""
    # Noon UTC is that same day in the shop's zone (anywhere from UTC-11 to UTC+11).
    return fmt.day(f"{iso}T12:00:00+00:00") if iso else None


def promise_text(
    lb: Labels,
    fmt: Formatter,
    places: Places,
    status: str,
    method: str,
    pickup: str | None,
    earliest: str | None,
    ready_at: str | None,
) -> str:
    """Where a shipment is, or when it arrives, in one sentence."""
    _ = lb._
    if status == "delivered":
        return _("Delivered")
    if status == "collected":
        return _("Collected by the customer")
    if status in ("cancelled", "rejected"):
        return status_label(lb, status)
    if method != "delivery":
        where = places.name(pickup)
        if status == "ready_for_pickup":
            return _("Waiting for the customer at %(place)s") % {"place": where}
        if ready_at:
            return _("Ready for pickup at %(place)s from %(when)s") % {
                "place": where,
                "when": fmt.when(ready_at),
            }
        return _("To be collected at %(place)s") % {"place": where}
    if earliest:
        return _("Arrives from %(day)s") % {"day": _day(fmt, earliest)}
    return _("Delivery date not promised")


def order_rows(
    found: Sequence[commerce.OrderSummary], places: Places, lb: Labels, fmt: Formatter
) -> list[dict[str, Any]]:
    """Orders for a list: number, channel, status, total and each open shipment's promise."""
    rows = []
    for o in found:
        # Where the shipments still on their way are; finished ones say it in the status.
        live = [s for s in o.shipments if s.status in OPEN_STATUSES]
        promises = [
            promise_text(
                lb,
                fmt,
                places,
                s.status,
                s.method,
                s.pickup_location_id,
                s.earliest_date,
                s.ready_at,
            )
            for s in live
        ]
        rows.append(
            {
                "id": str(o.id),
                "href": f"/console/orders/{o.id}",
                "number": o.external_id,
                "channel": o.channel,
                "channel_icon": CHANNEL_ICONS.get(o.channel, o.channel),
                "channel_label": lb.of(ORDER_CHANNEL_LABELS, o.channel),
                "status": o.status,
                "status_label": status_label(lb, o.status),
                "tone": tone(o.status),
                "total": fmt.money(o.total, o.currency),
                "placed": fmt.when(o.placed_at),
                "placed_iso": fmt.iso(o.placed_at),
                "promises": list(dict.fromkeys(promises)),
                "email": o.customer_email,
                "customer_href": f"/console/customers/{o.customer_id}" if o.customer_id else None,
            }
        )
    return rows


def _lines(view: Mapping[str, Any], fmt: Formatter) -> list[dict[str, Any]]:
    cur = view["currency"]
    out = []
    for ln in view["lines"]:
        qty = int(ln["quantity"])
        net = Decimal(ln["unit_price"]) * qty - Decimal(ln["discount"])
        out.append(
            {
                "sku": ln["sku"],
                "stock_href": f"/console/stock?sku={ln['sku']}",
                "quantity": qty,
                "unit_price": fmt.money(ln["unit_price"], cur),
                "discount": fmt.money(ln["discount"], cur) if Decimal(ln["discount"]) else None,
                "tax": fmt.money(ln["tax"], cur),
                "amount": fmt.money(net, cur),
            }
        )
    return out


def _payments(view: Mapping[str, Any], lb: Labels, fmt: Formatter) -> list[dict[str, Any]]:
    return [
        {
            "refund": p["kind"] == "refund",
            "method": lb.of(PAYMENT_METHOD_LABELS, p["method"]),
            "amount": fmt.money(p["amount"], p["currency"]),
            "reference": p.get("reference"),
            "when": fmt.when(p.get("recorded_at")),
        }
        for p in view["payments"]
    ]


def _groups(view: Mapping[str, Any], places: Places, lb: Labels, fmt: Formatter) -> list[Any]:
    out = []
    for n, g in enumerate(view["fulfilment_groups"], start=1):
        promise = g.get("promise") or {}
        loc, pickup = g["location_id"], g.get("pickup_location_id")
        out.append(
            {
                "n": n,
                "id": g["id"],
                "method": lb.of(METHOD_LABELS, g["method"]),
                "status": g["status"],
                "status_label": status_label(lb, g["status"]),
                "tone": tone(g["status"]),
                "location": places.name(loc),
                "location_id": loc,
                "location_type": lb.of(LOCATION_TYPE_LABELS, places.type(loc)),
                "city": places.city(loc),
                "pickup": places.name(pickup) if pickup else None,
                "transfer": bool(g.get("transfer")),
                "lines": g["lines"],
                "promise": promise_text(
                    lb,
                    fmt,
                    places,
                    g["status"],
                    g["method"],
                    pickup,
                    promise.get("earliest_date"),
                    promise.get("ready_at"),
                ),
                "dispatch": _day(fmt, promise.get("dispatch_date")),
                "slots": promise.get("slots") or [],
            }
        )
    return out


def _state(lb: Labels, status: str, of_return: bool) -> str:
    return lb.of(RETURN_STATUS_LABELS, status) if of_return else status_label(lb, status)


def _history(
    view: Mapping[str, Any], groups: Sequence[Mapping[str, Any]], lb: Labels, fmt: Formatter
) -> list[dict[str, Any]]:
    number = {g["id"]: g["n"] for g in groups}
    rows = []
    for e in view["history"]:
        detail = e.get("detail") or {}
        returning = e["kind"].startswith(("return_", "refund_"))
        facts = []
        if e.get("group_id") in number:
            facts.append(lb._("shipment %(n)d") % {"n": number[e["group_id"]]})
        if detail.get("location_id"):
            facts.append(str(detail["location_id"]))
        if detail.get("reason"):
            facts.append(str(detail["reason"])[:200])
        if detail.get("note"):  # who moved it, or what the API's caller wrote
            facts.append(str(detail["note"])[:200])
        rows.append(
            {
                "label": lb.of(HISTORY_LABELS, e["kind"]),
                "from": _state(lb, e["from"], returning) if e.get("from") else None,
                "to": _state(lb, e["to"], returning) if e.get("to") else None,
                "when": fmt.when(e["at"]),
                "iso": fmt.iso(e["at"]),
                "facts": facts,
            }
        )
    return rows


def order_detail(
    view: Mapping[str, Any], places: Places, lb: Labels, fmt: Formatter
) -> dict[str, Any]:
    """The order page, but for its sourcing explanation (``_sourcing_present``)."""
    cur = view["currency"]
    groups = _groups(view, places, lb, fmt)
    customer = view.get("customer") or {}
    paid = sum(
        (Decimal(p["amount"]) for p in view["payments"] if p["kind"] != "refund"), Decimal(0)
    )
    refunded = sum(
        (Decimal(p["amount"]) for p in view["payments"] if p["kind"] == "refund"), Decimal(0)
    )
    fulfilment = view.get("fulfilment") or {}
    address = fulfilment.get("address") or {}
    return {
        "id": view["id"],
        "number": view["external_id"],
        "channel": view["channel"],
        "channel_icon": CHANNEL_ICONS.get(view["channel"], view["channel"]),
        "channel_label": lb.of(ORDER_CHANNEL_LABELS, view["channel"]),
        "status_label": status_label(lb, view["status"]),
        "tone": tone(view["status"]),
        "placed": fmt.when(view.get("placed_at")),
        "placed_iso": fmt.iso(view.get("placed_at")),
        "method": lb.of(METHOD_LABELS, fulfilment.get("method")),
        "address": ", ".join(
            str(address[k]) for k in ("line1", "postcode", "city") if address.get(k)
        ),
        "email": customer.get("email"),
        "phone": fmt.phone(customer["phone"]) if customer.get("phone") else None,
        "customer_href": (
            f"/console/customers/{customer['customer_id']}" if customer.get("customer_id") else None
        ),
        "lines": _lines(view, fmt),
        "subtotal": fmt.money(view["subtotal"], cur),
        "discount": fmt.money(view["discount_total"], cur)
        if Decimal(view["discount_total"])
        else None,
        "tax": fmt.money(view["tax_total"], cur),
        "total": fmt.money(view["total"], cur),
        "payments": _payments(view, lb, fmt),
        "paid": fmt.money(paid, cur),
        "refunded": fmt.money(refunded, cur) if refunded else None,
        "groups": groups,
        "history": _history(view, groups, lb, fmt),
        "returns": [
            {
                "rma": r["id"][-8:].upper(),
                "status": lb.of(RETURN_STATUS_LABELS, r["status"]),
                "method": lb.of(RETURN_METHOD_LABELS, r.get("method")),
                "when": fmt.when(r.get("created_at")),
            }
            for r in view.get("returns") or []
        ],
    }


_FORWARD = ("picking", "packed", "shipped", "ready_for_pickup", "delivered", "collected")


def add_actions(order: dict[str, Any], view: Mapping[str, Any], lb: Labels) -> None:
    """What shop staff may do next with each shipment (``order_detail``'s groups gain
    ``actions`` and ``may_reject``; the order ``may_cancel``), by the lifecycle's rules."""
    for g, raw in zip(order["groups"], view["fulfilment_groups"], strict=True):
        nxt = {
            s.value
            for s in commerce.next_statuses(
                commerce.GroupStatus(raw["status"]), commerce.Method(raw["method"]), raw["transfer"]
            )
        }
        g["actions"] = [
            {"status": s, "label": lb.of(ACTION_LABELS, s)} for s in _FORWARD if s in nxt
        ]
        g["may_reject"] = "rejected" in nxt
    order["may_cancel"] = cancellable(view)


def cancellable(view: Mapping[str, Any]) -> bool:
    """Whether cancelling the order would cancel any of its shipments."""
    return any(
        commerce.GroupStatus.CANCELLED
        in commerce.next_statuses(
            commerce.GroupStatus(g["status"]), commerce.Method(g["method"]), g["transfer"]
        )
        for g in view["fulfilment_groups"]
    )


def stock_rows(
    levels: Sequence[commerce.StockLevel], places: Places, lb: Labels, fmt: Formatter
) -> list[dict[str, Any]]:
    """Stock of one SKU per location, the locations holding most available first."""
    rows = []
    for lv in sorted(levels, key=lambda x: (-x.available, x.location_id)):
        loc = places.by_id.get(lv.location_id)
        rows.append(
            {
                "location_id": lv.location_id,
                "name": places.name(lv.location_id),
                "type": lb.of(LOCATION_TYPE_LABELS, places.type(lv.location_id)),
                "city": places.city(lv.location_id),
                "active": loc.active if loc else False,
                "on_hand": fmt.number(lv.on_hand),
                "reserved": fmt.number(lv.reserved),
                "safety": fmt.number(lv.safety_stock),
                "available": fmt.number(lv.available),
                "none": lv.available == 0,
            }
        )
    return rows
