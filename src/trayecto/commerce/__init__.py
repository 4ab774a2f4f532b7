"""Commerce: catalogue, locations, stock, orders with sourcing, fulfilment and returns.

One domain because one transaction must cover them: placing an order sources it, reserves
the units and records it atomically. Public face; other packages import only from here.
"""

from trayecto.kernel import native

native.check(__name__)  # a compiled module older than its source is refused (kernel.native)

# ruff: noqa: E402
from trayecto.commerce._catalogue import (
    check_location,
    check_product,
    get_location,
    get_product,
    list_locations,
    list_products,
)
from trayecto.commerce._desk import OrderDesk
from trayecto.commerce._importer import KINDS, CatalogueImportReport, import_catalogue
from trayecto.commerce._intake import (
    ORDER_CHANNELS,
    OrderRequest,
    check_order,
    check_when,
    normalise_email,
    normalise_phone,
)
from trayecto.commerce._inventory import (
    InsufficientStock,
    cancel_hold,
    check_ledger,
    hold_for,
    movements,
    receive_stock,
    release_expired,
    stock_levels,
)
from trayecto.commerce._lifecycle import (
    advance_group,
    advance_steps,
    cancel_order,
    link_customer,
)
from trayecto.commerce._listings import (
    FEED_COLUMNS,
    Listing,
    ListingRules,
    check_listing,
    export_feed,
    list_listings,
    listing_issues,
    put_listing,
    set_listing_rules,
)
from trayecto.commerce._lookups import (
    OrderSummary,
    ShipmentBrief,
    customer_orders,
    find_products,
    list_orders,
)
from trayecto.commerce._model import (
    Capability,
    GroupStatus,
    Location,
    LocationType,
    Method,
    Movement,
    MovementKind,
    Product,
    Reservation,
    StockLevel,
    next_statuses,
    order_status,
)
from trayecto.commerce._optimise import optimise
from trayecto.commerce._placement import (
    Placed,
    place_order,
    place_orders,
    policy_config,
    quote,
    set_policy,
)
from trayecto.commerce._privacy import anonymise_orders
from trayecto.commerce._resourcing import reject_group, resource_group
from trayecto.commerce._return_requests import (
    Inspection,
    ReturnRequest,
    check_inspection,
    check_return,
)
from trayecto.commerce._returns import (
    cancel_return,
    get_return,
    list_returns,
    receive_return,
    request_return,
)
from trayecto.commerce._settlement import inspect_return, refund_return
from trayecto.commerce._sourcing import Policy, Site, haversine_km, source
from trayecto.commerce._views import TimelineEntry, find_orders, get_order, order_history

__all__ = [
    "FEED_COLUMNS",
    "KINDS",
    "ORDER_CHANNELS",
    "Capability",
    "CatalogueImportReport",
    "GroupStatus",
    "Inspection",
    "InsufficientStock",
    "Listing",
    "ListingRules",
    "Location",
    "LocationType",
    "Method",
    "Movement",
    "MovementKind",
    "OrderDesk",
    "OrderRequest",
    "OrderSummary",
    "Placed",
    "Policy",
    "Product",
    "Reservation",
    "ReturnRequest",
    "ShipmentBrief",
    "Site",
    "StockLevel",
    "TimelineEntry",
    "advance_group",
    "advance_steps",
    "anonymise_orders",
    "cancel_hold",
    "cancel_order",
    "cancel_return",
    "check_inspection",
    "check_ledger",
    "check_listing",
    "check_location",
    "check_order",
    "check_product",
    "check_return",
    "check_when",
    "customer_orders",
    "export_feed",
    "find_orders",
    "find_products",
    "get_location",
    "get_order",
    "get_product",
    "get_return",
    "haversine_km",
    "hold_for",
    "import_catalogue",
    "inspect_return",
    "link_customer",
    "list_listings",
    "list_locations",
    "list_orders",
    "list_products",
    "list_returns",
    "listing_issues",
    "movements",
    "next_statuses",
    "normalise_email",
    "normalise_phone",
    "optimise",
    "order_history",
    "order_status",
    "place_order",
    "place_orders",
    "policy_config",
    "put_listing",
    "quote",
    "receive_return",
    "receive_stock",
    "refund_return",
    "reject_group",
    "release_expired",
    "request_return",
    "resource_group",
    "set_listing_rules",
    "set_policy",
    "source",
    "stock_levels",
]
