"""Tables of the commerce domain: catalogue, locations, stock with its ledger and
reservations, orders with fulfilment groups and history, returns.

Quantities are integers (units); money is ``Numeric(12, 2)`` with a currency code.
"""

from __future__ import annotations

import sqlalchemy as sa

from trayecto.db import JSONDoc, UTCDateTime, metadata

MONEY = sa.Numeric(12, 2)

# --- catalogue -------------------------------------------------------------------------

products = sa.Table(
    "products",
    metadata,
    sa.Column("sku", sa.String(100), primary_key=True),
    sa.Column("product_code", sa.String(100), nullable=True),  # groups variants of one product
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("price", MONEY, nullable=False),  # the reference price
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("category", sa.String(300), nullable=True),
    sa.Column("attributes", JSONDoc, nullable=True),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_products_product_code", "product_code"),
)

listings = sa.Table(
    "listings",
    metadata,
    sa.Column("channel", sa.String(20), primary_key=True),
    sa.Column("sku", sa.String(100), sa.ForeignKey("products.sku"), primary_key=True),
    sa.Column("price", MONEY, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("title", sa.String(300), nullable=True),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("images", JSONDoc, nullable=True),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# Consistency rules of a channel's listings (price margin, staleness, required content);
# a missing row means the defaults.
listing_rules = sa.Table(
    "listing_rules",
    metadata,
    sa.Column("channel", sa.String(20), primary_key=True),
    sa.Column("config", JSONDoc, nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# --- locations ---------------------------------------------------------------------------

locations = sa.Table(
    "locations",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("type", sa.String(30), nullable=False),
    sa.Column("latitude", sa.Float(), nullable=False),
    sa.Column("longitude", sa.Float(), nullable=False),
    sa.Column("capabilities", JSONDoc, nullable=False),  # list of capability names
    sa.Column("address", JSONDoc, nullable=True),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("opening_hours", JSONDoc, nullable=True),  # {"mon": ["10:00", "21:00"], …}
    sa.Column("slots", JSONDoc, nullable=True),  # delivery slots, e.g. ["09:00-14:00"]
    sa.Column("daily_capacity", sa.Integer(), nullable=True),  # picks a day; NULL = unbounded
    sa.Column("cutoff", sa.String(5), nullable=True),  # "HH:MM" local time
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # max(updated_at) is the version order placement checks its cached locations against
    sa.Index("ix_locations_updated_at", "updated_at"),
)

# Picks booked per location and local day, against ``locations.daily_capacity``.
location_load = sa.Table(
    "location_load",
    metadata,
    sa.Column("location_id", sa.String(100), sa.ForeignKey("locations.id"), primary_key=True),
    sa.Column("day", sa.Date(), primary_key=True),
    sa.Column("picks", sa.Integer(), nullable=False),
)

# Sourcing rules per channel (weights, safety stock); a missing row means the defaults.
channel_policies = sa.Table(
    "channel_policies",
    metadata,
    sa.Column("channel", sa.String(20), primary_key=True),
    sa.Column("config", JSONDoc, nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# --- inventory ---------------------------------------------------------------------------

stock = sa.Table(
    "stock",
    metadata,
    sa.Column("location_id", sa.String(100), sa.ForeignKey("locations.id"), primary_key=True),
    sa.Column("sku", sa.String(100), sa.ForeignKey("products.sku"), primary_key=True),
    sa.Column("on_hand", sa.Integer(), nullable=False),
    sa.Column("reserved", sa.Integer(), nullable=False),
    sa.Column("safety_stock", sa.Integer(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
    sa.CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="reserved_within_on_hand"),
    sa.CheckConstraint("safety_stock >= 0", name="safety_not_negative"),
    sa.Index("ix_stock_sku", "sku"),
)

# Append-only: every change of on_hand, signed. sum(quantity) == stock.on_hand.
stock_movements = sa.Table(
    "stock_movements",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("location_id", sa.String(100), nullable=False),
    sa.Column("sku", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("quantity", sa.Integer(), nullable=False),
    sa.Column("reference", sa.String(200), nullable=True),
    sa.Column("note", sa.String(500), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_stock_movements_sku_location_id", "sku", "location_id"),
)

# A hold on units at one location: for an order line, a cart or a pending payment.
# sum(quantity of active reservations) == stock.reserved.
reservations = sa.Table(
    "reservations",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("location_id", sa.String(100), nullable=False),
    sa.Column("sku", sa.String(100), nullable=False),
    sa.Column("quantity", sa.Integer(), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # order | cart | pending_payment
    sa.Column("channel", sa.String(20), nullable=True),
    sa.Column("order_id", sa.Uuid(), nullable=True),
    sa.Column("group_id", sa.Uuid(), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),  # active | released | consumed
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("closed_at", UTCDateTime(), nullable=True),
    sa.CheckConstraint("quantity > 0", name="quantity_positive"),
    sa.Index("ix_reservations_order_id", "order_id"),
    # only the holds that can expire (carts, pending payments; migration 0009)
    sa.Index(
        "ix_reservations_expiring",
        "status",
        "expires_at",
        postgresql_where=sa.text("expires_at IS NOT NULL"),
        sqlite_where=sa.text("expires_at IS NOT NULL"),
    ),
)

# --- orders ------------------------------------------------------------------------------

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("external_id", sa.String(200), nullable=False),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("customer_id", sa.Uuid(), nullable=True),
    sa.Column("customer_email", sa.String(320), nullable=True),
    sa.Column("customer_phone", sa.String(20), nullable=True),
    sa.Column("customer_number", sa.String(100), nullable=True),
    sa.Column("loyalty_card", sa.String(100), nullable=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("subtotal", MONEY, nullable=False),
    sa.Column("discount_total", MONEY, nullable=False),
    sa.Column("tax_total", MONEY, nullable=False),
    sa.Column("total", MONEY, nullable=False),
    sa.Column("fulfilment", JSONDoc, nullable=False),  # method, location_id, address
    sa.Column("sourcing", JSONDoc, nullable=True),  # the explained decision
    sa.Column("placed_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("channel", "external_id", name="uq_orders_channel_external_id"),
    sa.Index("ix_orders_customer_id", "customer_id"),
    sa.Index("ix_orders_customer_email", "customer_email"),
    sa.Index("ix_orders_customer_phone", "customer_phone"),
)

fulfilment_groups = sa.Table(
    "fulfilment_groups",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("order_id", sa.Uuid(), sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("method", sa.String(30), nullable=False),
    sa.Column("location_id", sa.String(100), nullable=False),  # where the units are picked
    sa.Column("pickup_location_id", sa.String(100), nullable=True),  # shop or pickup point
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("promise", JSONDoc, nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_fulfilment_groups_order_id", "order_id"),
)

order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("order_id", sa.Uuid(), sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("line_no", sa.Integer(), nullable=False),
    sa.Column("sku", sa.String(100), nullable=False),
    sa.Column("quantity", sa.Integer(), nullable=False),
    sa.Column("unit_price", MONEY, nullable=False),
    sa.Column("discount", MONEY, nullable=False),
    sa.Column("tax", MONEY, nullable=False),
    sa.Index("ix_order_lines_order_id", "order_id"),
)

# Which units of which line each group ships (a line may be split across groups).
allocations = sa.Table(
    "allocations",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("order_id", sa.Uuid(), nullable=False),
    sa.Column("group_id", sa.Uuid(), sa.ForeignKey("fulfilment_groups.id"), nullable=False),
    sa.Column("line_id", sa.Uuid(), sa.ForeignKey("order_lines.id"), nullable=False),
    sa.Column("location_id", sa.String(100), nullable=False),
    sa.Column("sku", sa.String(100), nullable=False),
    sa.Column("quantity", sa.Integer(), nullable=False),
    sa.Column("reservation_id", sa.Uuid(), nullable=True),
    sa.Index("ix_allocations_order_id", "order_id"),
)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("order_id", sa.Uuid(), sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # payment | refund
    sa.Column("method", sa.String(30), nullable=False),
    sa.Column("amount", MONEY, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("reference", sa.String(200), nullable=True),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    sa.Column("refund_of", sa.Uuid(), nullable=True),  # a refund: the payment it returns
    sa.Column("return_id", sa.Uuid(), nullable=True),  # a refund: the return it settles
    sa.Index("ix_payments_order_id", "order_id"),
)

# Append-only history of the order and its groups: the customer timeline reads it.
order_events = sa.Table(
    "order_events",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("order_id", sa.Uuid(), sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("group_id", sa.Uuid(), nullable=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("from_status", sa.String(40), nullable=True),
    sa.Column("to_status", sa.String(40), nullable=True),
    sa.Column("detail", JSONDoc, nullable=True),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Index("ix_order_events_order_id", "order_id"),
)

# --- returns -----------------------------------------------------------------------------

returns = sa.Table(
    "returns",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("order_id", sa.Uuid(), sa.ForeignKey("orders.id"), nullable=False),
    # requested | received | inspected | refunded, or cancelled (from requested)
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),  # where the return was made
    sa.Column("location_id", sa.String(100), nullable=True),  # shop or warehouse receiving
    sa.Column("reason", sa.String(200), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("method", sa.String(20), nullable=True),  # in_store | by_post
    sa.Column("exchange_order_id", sa.Uuid(), nullable=True),  # the replacement order
    sa.Column("refund_total", MONEY, nullable=True),  # set when the refund is recorded
    sa.Index("ix_returns_order_id", "order_id"),
)

return_lines = sa.Table(
    "return_lines",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("return_id", sa.Uuid(), sa.ForeignKey("returns.id"), nullable=False),
    sa.Column("line_id", sa.Uuid(), sa.ForeignKey("order_lines.id"), nullable=False),
    sa.Column("sku", sa.String(100), nullable=False),
    sa.Column("quantity", sa.Integer(), nullable=False),
    sa.Column("reason", sa.String(200), nullable=True),
    sa.Column("condition", sa.String(30), nullable=True),  # set at inspection
    sa.Column("decision", sa.String(20), nullable=True),  # restock | write_off | reject
    sa.Column("restock_location_id", sa.String(100), nullable=True),
    sa.Column("refund_amount", MONEY, nullable=True),  # what the customer gets back for it
    sa.Index("ix_return_lines_return_id", "return_id"),
)
