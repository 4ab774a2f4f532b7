"""Words for commerce values in the console (order channels, statuses, fulfilment methods,
location types, payments, history, returns), marked for translation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trayecto.web.console._i18n import N_

if TYPE_CHECKING:  # _present uses status_label for the timeline
    from trayecto.web.console._present import Labels

__all__ = [
    "ACTION_LABELS",
    "CHANNEL_ICONS",
    "HISTORY_LABELS",
    "LOCATION_TYPE_LABELS",
    "METHOD_LABELS",
    "OPEN_STATUSES",
    "ORDER_CHANNEL_LABELS",
    "PAYMENT_METHOD_LABELS",
    "RETURN_METHOD_LABELS",
    "RETURN_STATUS_LABELS",
    "STATUS_FILTERS",
    "status_label",
    "tone",
]

ORDER_CHANNEL_LABELS = {
    "web": N_("Web"),
    "app": N_("App"),
    "marketplace": N_("Marketplace"),
    "pos": N_("Shop till"),
    "mobile_pos": N_("Mobile till in shop"),
    "call_center": N_("Call centre"),
    "whatsapp": N_("WhatsApp"),
    "social": N_("Social media"),
}
#: The console's channel icons (``_macros.html``) for order channels.
CHANNEL_ICONS = {"pos": "store", "mobile_pos": "store"}

GROUP_STATUS_LABELS = {
    "placed": N_("placed"),
    "allocated": N_("allocated"),
    "picking": N_("picking"),
    "packed": N_("packed"),
    "shipped": N_("shipped"),
    "ready_for_pickup": N_("ready for pickup"),
    "delivered": N_("delivered"),
    "collected": N_("collected"),
    "cancelled": N_("cancelled"),
    "rejected": N_("rejected by the location"),
    "completed": N_("completed"),
    "returned": N_("returned"),
}
PARTIAL_LABEL = N_("partly %(status)s")
#: The console's buttons that move a shipment on, by the status they move it to.
ACTION_LABELS = {
    "picking": N_("Start picking"),
    "packed": N_("Packed"),
    "shipped": N_("Shipped"),
    "ready_for_pickup": N_("Ready for pickup"),
    "delivered": N_("Delivered"),
    "collected": N_("Collected by the customer"),
}
#: The status filter of the orders list: every order status, "partly" ones together.
STATUS_FILTERS = [
    "allocated",
    "picking",
    "packed",
    "shipped",
    "ready_for_pickup",
    "partially",
    "completed",
    "delivered",
    "collected",
    "cancelled",
    "rejected",
]
STATUS_TONES = {
    "completed": "ok",
    "delivered": "ok",
    "collected": "ok",
    "ready_for_pickup": "ok",
    "cancelled": "no",
    "rejected": "no",
}

METHOD_LABELS = {
    "delivery": N_("Home delivery"),
    "click_and_collect": N_("Click & collect"),
    "ship_to_store": N_("Ship to shop"),
    "pickup_point": N_("Pickup point"),
}

LOCATION_TYPE_LABELS = {
    "central_warehouse": N_("Central warehouse"),
    "ecommerce_warehouse": N_("E-commerce warehouse"),
    "shop": N_("Shop"),
    "dark_store": N_("Dark store"),
    "supplier_dropship": N_("Supplier (drop-ship)"),
    "pickup_point": N_("Pickup point"),
}

PAYMENT_METHOD_LABELS = {
    "online": N_("Online payment"),
    "card_in_shop": N_("Card in shop"),
    "cash": N_("Cash"),
    "cash_on_delivery": N_("Cash on delivery"),
    "exchange": N_("Value of returned goods"),
}

HISTORY_LABELS = {
    "order_placed": N_("Order placed"),
    "order_status": N_("Order status"),
    "group_allocated": N_("Shipment assigned to a location"),
    "group_status": N_("Shipment status"),
    "order_resourced": N_("Sourced again"),
    "resourcing_failed": N_("No other location could serve it"),
    "return_requested": N_("Return requested"),
    "exchange_placed": N_("Exchange order placed"),
    "exchange_of": N_("Placed as an exchange"),
    "return_received": N_("Return received"),
    "return_inspected": N_("Return inspected"),
    "refund_recorded": N_("Refund recorded"),
    "return_cancelled": N_("Return cancelled"),
}

RETURN_STATUS_LABELS = {
    "requested": N_("requested"),
    "received": N_("received"),
    "inspected": N_("inspected"),
    "refunded": N_("refunded"),
    "cancelled": N_("cancelled"),
}
RETURN_METHOD_LABELS = {"in_store": N_("in a shop"), "by_post": N_("by post")}

#: Shipments that still have somewhere to go.
OPEN_STATUSES = {"allocated", "picking", "packed", "shipped", "ready_for_pickup"}


def status_label(lb: Labels, status: str) -> str:
    if status.startswith("partially_"):
        inner = lb.of(GROUP_STATUS_LABELS, status.removeprefix("partially_"))
        return lb._(PARTIAL_LABEL) % {"status": inner}
    if status == "partially":
        return lb._(PARTIAL_LABEL) % {"status": "…"}
    return lb.of(GROUP_STATUS_LABELS, status)


def tone(status: str) -> str:
    return STATUS_TONES.get(status, "warn" if status.startswith("partially_") else "")
