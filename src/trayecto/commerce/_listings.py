"""Per-channel listings: what each channel shows of a product (price, title, description,
images, active), the rules that flag inconsistencies, and each channel's export feed.

Rules per channel (``listing_rules``; defaults in ``ListingRules``), checked by
``listing_issues``:

* ``price_deviation``: the channel's price differs from the product's reference price by
  more than ``price_margin_pct`` per cent; ``currency_mismatch`` when the currencies differ;
* ``missing_title`` / ``missing_description`` / ``missing_images`` when required;
* ``stale_content``: the product changed after the listing was last written, or the
  listing was not touched for ``stale_after_days`` days;
* ``no_sellable_stock``: active, but fewer than ``min_available`` units are available to
  promise across the active locations (after the channel's safety stock);
* ``inactive_product``: active while the product itself is not.

The feed (``export_feed``) lists a channel's active listings (title falling back to the
product's name) with their availability and their issue codes, as JSON rows or CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from trayecto.commerce._catalogue import check_code, check_currency, check_money
from trayecto.commerce._intake import ORDER_CHANNELS
from trayecto.commerce._tables import (
    channel_policies,
    listing_rules,
    listings,
    locations,
    products,
    stock,
)
from trayecto.db import dialect_insert, write_transaction
from trayecto.kernel import NotFoundError, ValidationError, utcnow

FEED_COLUMNS = (
    "sku", "title", "description", "price", "currency", "images", "available",
    "availability", "product_code", "category", "issues",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Listing:
    channel: str
    sku: str
    price: Decimal
    currency: str | None  # None: the product's
    title: str | None = None
    description: str | None = None
    images: tuple[str, ...] = ()
    active: bool = True


@dataclass(frozen=True, slots=True)
class ListingRules:
    """A channel's consistency rules."""

    price_margin_pct: float = 10.0
    stale_after_days: int = 180
    require_title: bool = True
    require_description: bool = True
    require_images: bool = True
    min_available: int = 1

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> ListingRules:
        if not config:
            return cls()
        known = {f.name: f for f in fields(cls)}
        unknown = set(config) - set(known)
        if unknown:
            raise ValidationError(
                f"unknown listing rule(s): {', '.join(sorted(unknown))}", field="rules"
            )
        values: dict[str, Any] = {}
        for key, value in config.items():
            kind = type(getattr(cls(), key))
            if kind is bool:
                if not isinstance(value, bool):
                    raise ValidationError(f"{key} must be true or false", field=key)
                values[key] = value
            else:
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValidationError(f"{key} must be a non-negative number", field=key)
                values[key] = kind(value)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text in ("", "1", "true", "yes", "y", "si", "sí"):
        return True
    if text in ("0", "false", "no", "n"):
        return False
    raise ValidationError(f"{name} must be true or false", field=name)


def _optional(row: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = row.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string", code="invalid_type", field=name)
    text = value.strip()
    if len(text) > limit:
        raise ValidationError(f"{name} is longer than {limit} characters", field=name)
    return text or None


def check_listing(row: Mapping[str, Any]) -> Listing:
    """A listing from a CSV row or a JSON body (``images`` a list, or ``|``-separated)."""
    channel = str(row.get("channel") or "").strip()
    if channel not in ORDER_CHANNELS:
        raise ValidationError(
            f"channel must be one of: {', '.join(ORDER_CHANNELS)}", field="channel"
        )
    raw = row.get("images")
    parts = raw if isinstance(raw, list) else str(raw or "").split("|")
    images = tuple(str(p).strip() for p in parts if str(p).strip())
    for url in images:
        if not url.startswith(("https://", "http://")) or len(url) > 1000:
            raise ValidationError("images must be http(s) URLs", field="images")
    currency = row.get("currency")
    if isinstance(row.get("price"), float):
        raise ValidationError(
            "price must be a decimal string such as '19.95' (not a float)",
            code="invalid_amount",
            field="price",
        )
    return Listing(
        channel=channel,
        sku=check_code(row.get("sku"), "sku"),
        price=check_money(row.get("price"), "price"),
        currency=check_currency(currency) if currency not in (None, "") else None,
        title=_optional(row, "title", 300),
        description=_optional(row, "description", 10_000),
        images=images,
        active=_flag(row.get("active", ""), "active"),
    )


def upsert_listings(conn: Connection, items: Sequence[Listing]) -> int:
    """Write listings (the product must exist); an unchanged one keeps its ``updated_at``."""
    if not items:
        return 0
    known = dict(
        conn.execute(
            sa.select(products.c.sku, products.c.currency).where(
                products.c.sku.in_({i.sku for i in items})
            )
        ).all()
    )
    missing = sorted({i.sku for i in items} - set(known))
    if missing:
        raise ValidationError(
            f"unknown SKU(s): {', '.join(missing)}; import the products first",
            code="unknown_sku",
            field="sku",
        )
    now = utcnow()
    rows = [
        {
            "channel": i.channel,
            "sku": i.sku,
            "price": i.price,
            "currency": i.currency or known[i.sku],
            "title": i.title,
            "description": i.description,
            "images": list(i.images),
            "active": i.active,
            "updated_at": now,
        }
        for i in items
    ]
    content = ["price", "currency", "title", "description", "images", "active"]
    ins = dialect_insert(conn, listings)
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=["channel", "sku"],
            set_={c: ins.excluded[c] for c in [*content, "updated_at"]},
            where=sa.or_(*(listings.c[c].is_distinct_from(ins.excluded[c]) for c in content)),
        ),
        rows,
    )
    return len(rows)


def put_listing(engine: Engine, listing: Listing) -> dict[str, Any]:
    with write_transaction(engine) as conn:
        upsert_listings(conn, [listing])
    found = list_listings(engine, channel=listing.channel, sku=listing.sku)
    return found[0]


def rules_for(conn: Connection, channel: str) -> ListingRules:
    config = conn.execute(
        sa.select(listing_rules.c.config).where(listing_rules.c.channel == channel)
    ).scalar()
    return ListingRules.from_config(config)


def set_listing_rules(engine: Engine, channel: str, config: Mapping[str, Any]) -> ListingRules:
    if channel not in ORDER_CHANNELS:
        raise ValidationError(
            f"channel must be one of: {', '.join(ORDER_CHANNELS)}", field="channel"
        )
    rules = ListingRules.from_config(config)
    with write_transaction(engine) as conn:
        ins = dialect_insert(conn, listing_rules).values(
            channel=channel, config=rules.to_dict(), updated_at=utcnow()
        )
        conn.execute(
            ins.on_conflict_do_update(
                index_elements=["channel"],
                set_={"config": ins.excluded.config, "updated_at": ins.excluded.updated_at},
            )
        )
    return rules


def _channel_safety(conn: Connection, channel: str) -> int:
    config = conn.execute(
        sa.select(channel_policies.c.config).where(channel_policies.c.channel == channel)
    ).scalar()
    return int((config or {}).get("safety_stock", 0))


def _rows(conn: Connection, channel: str | None, sku: str | None) -> list[Any]:
    query = (
        sa.select(
            listings,
            products.c.name.label("product_name"),
            products.c.price.label("reference_price"),
            products.c.currency.label("reference_currency"),
            products.c.active.label("product_active"),
            products.c.updated_at.label("product_updated_at"),
            products.c.product_code,
            products.c.category,
        )
        .select_from(listings.join(products, products.c.sku == listings.c.sku))
        .order_by(listings.c.channel, listings.c.sku)
    )
    if channel is not None:
        query = query.where(listings.c.channel == channel)
    if sku is not None:
        query = query.where(listings.c.sku == sku)
    return list(conn.execute(query))


def _available(conn: Connection, skus: Sequence[str], extra: int) -> dict[str, int]:
    """Units available to promise per SKU over the active locations, less ``extra`` (the
    channel's safety stock) at each."""
    if not skus:
        return {}
    atp = stock.c.on_hand - stock.c.reserved - stock.c.safety_stock - extra
    return {
        sku: int(n or 0)
        for sku, n in conn.execute(
            sa.select(stock.c.sku, sa.func.sum(sa.case((atp > 0, atp), else_=0)))
            .select_from(stock.join(locations, locations.c.id == stock.c.location_id))
            .where(stock.c.sku.in_(list(skus)), locations.c.active.is_(True))
            .group_by(stock.c.sku)
        )
    }


def _issues(row: Any, rules: ListingRules, available: int, now: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(code: str, message: str, field: str | None = None, **details: Any) -> None:
        out.append({"code": code, "message": message, "field": field, **details})

    ref = Decimal(row.reference_price)
    price = Decimal(row.price)
    if row.currency != row.reference_currency:
        add("currency_mismatch", f"priced in {row.currency}, the product in "
            f"{row.reference_currency}", "currency")  # fmt: skip
    elif ref > 0 and abs(price - ref) / ref * 100 > Decimal(str(rules.price_margin_pct)):
        pct = float((price - ref) / ref * 100)
        add(
            "price_deviation",
            f"{price} is {pct:+.1f}% from the reference price {ref} "
            f"(allowed ±{rules.price_margin_pct:g}%)",
            "price", deviation_pct=round(pct, 2),
        )  # fmt: skip
    for name, required in (
        ("title", rules.require_title),
        ("description", rules.require_description),
        ("images", rules.require_images),
    ):
        if required and not getattr(row, name):
            add(f"missing_{name}", f"no {name} for this channel", name)
    if row.product_updated_at > row.updated_at:
        add("stale_content", "the product changed after this listing was last written")
    elif now - row.updated_at > timedelta(days=rules.stale_after_days):
        add("stale_content", f"not updated for more than {rules.stale_after_days} days")
    if row.active and not row.product_active:
        add("inactive_product", "listed as active but the product is inactive", "active")
    if row.active and available < rules.min_available:
        add(
            "no_sellable_stock",
            f"active with {available} unit(s) available to sell (at least "
            f"{rules.min_available} wanted)",
            "active", available=available,
        )  # fmt: skip
    return out


def _view(row: Any, available: int, issues: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "channel": row.channel,
        "sku": row.sku,
        "price": str(Decimal(row.price).quantize(Decimal("0.01"))),
        "currency": row.currency,
        "title": row.title,
        "description": row.description,
        "images": list(row.images or []),
        "active": row.active,
        "updated_at": row.updated_at.isoformat(),
        "reference_price": str(Decimal(row.reference_price).quantize(Decimal("0.01"))),
        "product_name": row.product_name,
        "product_code": row.product_code,
        "category": row.category,
        "available": available,
        "issues": issues,
    }


def list_listings(
    engine: Engine, *, channel: str | None = None, sku: str | None = None
) -> list[dict[str, Any]]:
    """Listings with their availability and issues (by channel, then SKU)."""
    now = utcnow()
    out = []
    with engine.connect() as conn:
        rows = _rows(conn, channel, sku)
        for ch in sorted({r.channel for r in rows}):
            rules = rules_for(conn, ch)
            mine = [r for r in rows if r.channel == ch]
            avail = _available(conn, sorted({r.sku for r in mine}), _channel_safety(conn, ch))
            for r in mine:
                n = avail.get(r.sku, 0)
                out.append(_view(r, n, _issues(r, rules, n, now)))
    return out


def listing_issues(engine: Engine, *, channel: str | None = None) -> list[dict[str, Any]]:
    """Every issue of every listing (of ``channel``): ``channel``, ``sku`` and the issue."""
    return [
        {"channel": v["channel"], "sku": v["sku"], **issue}
        for v in list_listings(engine, channel=channel)
        for issue in v["issues"]
    ]


def export_feed(
    engine: Engine, channel: str, *, fmt: str = "json", include_inactive: bool = False
) -> list[dict[str, Any]] | str:
    """The channel's feed: JSON rows, or CSV text with ``FEED_COLUMNS``."""
    if channel not in ORDER_CHANNELS:
        raise NotFoundError(f"no channel {channel!r}", code="channel_not_found", field="channel")
    if fmt not in ("json", "csv"):
        raise ValidationError("format must be json or csv", field="format")
    feed = []
    for v in list_listings(engine, channel=channel):
        if not v["active"] and not include_inactive:
            continue
        feed.append(
            {
                "sku": v["sku"],
                "title": v["title"] or v["product_name"],
                "description": v["description"],
                "price": v["price"],
                "currency": v["currency"],
                "images": v["images"],
                "available": v["available"],
                "availability": "in_stock" if v["available"] > 0 else "out_of_stock",
                "product_code": v["product_code"],
                "category": v["category"],
                "issues": [i["code"] for i in v["issues"]],
                **({"active": v["active"]} if include_inactive else {}),
            }
        )
    if fmt == "json":
        return feed
    buf = io.StringIO()
    columns = [*FEED_COLUMNS, *(["active"] if include_inactive else [])]
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in feed:
        writer.writerow(
            {
                **row,
                "images": "|".join(row["images"]),
                "issues": "|".join(row["issues"]),
                "description": row["description"] or "",
            }
        )
    return buf.getvalue()
