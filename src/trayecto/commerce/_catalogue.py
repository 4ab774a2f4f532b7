"""Locations and products: validation of incoming records, upserts, reads.

``check_*`` validate a plain mapping (a CSV row or a JSON body) and return a frozen record
or raise ``ValidationError`` naming the field; ``upsert_*`` write records in the caller's
transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from trayecto.commerce._model import Capability, Location, LocationType, Product
from trayecto.commerce._tables import locations, products
from trayecto.db import dialect_insert
from trayecto.kernel import NotFoundError, ValidationError, utcnow

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def _text(row: Mapping[str, Any], name: str, *, required: bool = True, limit: int = 300) -> str:
    value = row.get(name)
    text = "" if value is None else str(value).strip()
    if not text:
        if required:
            raise ValidationError(f"{name} is required", code="missing_field", field=name)
        return ""
    if len(text) > limit:
        raise ValidationError(f"{name} is longer than {limit} characters", field=name)
    return text


def check_code(value: Any, name: str) -> str:
    text = "" if value is None else str(value).strip()
    if not _ID.match(text):
        raise ValidationError(
            f"{name} must be 1-100 letters, digits or . _ : / - (got {text[:40]!r})",
            code="missing_field" if not text else "invalid",
            field=name,
        )
    return text


def check_money(value: Any, name: str) -> Decimal:
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationError(
            f"{name} must be a decimal string such as '19.95'", code="invalid_amount", field=name
        ) from None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise ValidationError(
            f"{name} must be a non-negative amount with at most 2 decimals",
            code="invalid_amount",
            field=name,
        )
    if amount >= Decimal("1e10"):
        raise ValidationError(f"{name} is too large", code="invalid_amount", field=name)
    return amount.quantize(Decimal("0.01"))


def check_currency(value: Any, name: str = "currency") -> str:
    text = str(value or "").strip().upper()
    if not _CURRENCY.match(text):
        raise ValidationError(
            "currency must be an ISO 4217 code such as EUR", code="invalid_currency", field=name
        )
    return text


def check_int(value: Any, name: str, *, minimum: int = 0) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValidationError(f"{name} must be a whole number", field=name) from None
    if number < minimum or number > 10**9:
        raise ValidationError(f"{name} must be between {minimum} and 10^9", field=name)
    return number


def _bool(value: Any, name: str) -> bool:
    text = str(value).strip().lower()
    if text in ("", "1", "true", "yes", "y", "si", "sí"):
        return True
    if text in ("0", "false", "no", "n"):
        return False
    raise ValidationError(f"{name} must be true or false", field=name)


def _hours(value: Any) -> dict[str, list[str]] | None:
    """``"mon-fri 09:00-21:00; sat 10:00-14:00"`` or a JSON object → ``{"mon": [...]}``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and value.strip().startswith("{"):
        value = orjson.loads(value)
    out: dict[str, list[str]] = {}
    if isinstance(value, dict):
        items = [(str(k).lower(), v) for k, v in value.items()]
    else:
        items = []
        for part in str(value).split(";"):
            days, _, span = part.strip().partition(" ")
            items.append((days.lower(), span.strip().split("-")))
    for days, span in items:
        if not isinstance(span, list) or len(span) != 2 or not all(_HHMM.match(t) for t in span):
            raise ValidationError(
                "opening_hours must look like 'mon-fri 09:00-21:00; sat 10:00-14:00'",
                field="opening_hours",
            )
        first, _, last = days.partition("-")
        if first not in _DAYS or (last and last not in _DAYS):
            raise ValidationError(f"unknown day {days!r} in opening_hours", field="opening_hours")
        lo, hi = _DAYS.index(first), _DAYS.index(last or first)
        for d in _DAYS[lo : hi + 1]:
            out[d] = [str(span[0]), str(span[1])]
    return out


def check_location(row: Mapping[str, Any]) -> Location:
    loc_id = check_code(row.get("id"), "id")
    name = _text(row, "name", limit=200)
    try:
        kind = LocationType(_text(row, "type").lower())
    except ValueError:
        allowed = ", ".join(t.value for t in LocationType)
        raise ValidationError(f"type must be one of: {allowed}", field="type") from None
    coords = []
    for axis, bound in (("latitude", 90.0), ("longitude", 180.0)):
        try:
            v = float(_text(row, axis))
        except ValueError:
            raise ValidationError(f"{axis} must be a number", field=axis) from None
        if not -bound <= v <= bound:
            raise ValidationError(f"{axis} must be within ±{bound:g}", field=axis)
        coords.append(v)
    caps_raw = row.get("capabilities")
    parts = caps_raw if isinstance(caps_raw, list) else str(caps_raw or "").split("|")
    caps: set[Capability] = set()
    for part in parts:
        p = str(part).strip().lower()
        if not p:
            continue
        try:
            caps.add(Capability(p))
        except ValueError:
            allowed = "|".join(c.value for c in Capability)
            raise ValidationError(
                f"unknown capability {p!r}; use {allowed}", field="capabilities"
            ) from None
    tz = _text(row, "timezone", required=False) or "Europe/Madrid"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {tz!r}", field="timezone") from None
    cutoff = _text(row, "cutoff", required=False) or None
    if cutoff and not _HHMM.match(cutoff):
        raise ValidationError("cutoff must be HH:MM (local time)", field="cutoff")
    cap_raw = _text(row, "daily_capacity", required=False)
    slots_raw = row.get("slots")
    slots = slots_raw if isinstance(slots_raw, list) else str(slots_raw or "").split("|")
    slots = [str(s).strip() for s in slots if str(s).strip()]
    for s in slots:
        a, _, b = s.partition("-")
        if not (_HHMM.match(a) and _HHMM.match(b)):
            raise ValidationError("slots must look like '09:00-14:00|16:00-21:00'", field="slots")
    address = row.get("address") if isinstance(row.get("address"), dict) else None
    if address is None:
        address = {
            k: str(row[k]).strip()
            for k in ("line1", "postcode", "city", "country")
            if row.get(k) not in (None, "")
        } or None
    try:
        hours = _hours(row.get("opening_hours"))
    except orjson.JSONDecodeError:
        raise ValidationError("opening_hours is not valid JSON", field="opening_hours") from None
    return Location(
        id=loc_id,
        name=name,
        type=kind,
        latitude=coords[0],
        longitude=coords[1],
        capabilities=frozenset(caps),
        address=address,
        timezone=tz,
        opening_hours=hours,
        slots=slots or None,
        daily_capacity=check_int(cap_raw, "daily_capacity") if cap_raw else None,
        cutoff=cutoff,
        active=_bool(row.get("active", ""), "active"),
    )


def check_product(row: Mapping[str, Any]) -> Product:
    sku = check_code(row.get("sku"), "sku")
    attrs_raw = row.get("attributes")
    attrs: dict[str, Any] = {}
    if isinstance(attrs_raw, dict):
        attrs = attrs_raw
    elif attrs_raw not in (None, ""):
        text = str(attrs_raw).strip()
        if text.startswith("{"):
            try:
                attrs = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise ValidationError("attributes is not valid JSON", field="attributes") from None
        else:
            for pair in text.split("|"):
                key, sep, val = pair.partition("=")
                if not sep or not key.strip():
                    raise ValidationError(
                        "attributes must be JSON or 'size=42|colour=blue'", field="attributes"
                    )
                attrs[key.strip()] = val.strip()
    return Product(
        sku=sku,
        name=_text(row, "name"),
        price=check_money(row.get("price"), "price"),
        currency=check_currency(row.get("currency")),
        product_code=_text(row, "product_code", required=False, limit=100) or None,
        category=_text(row, "category", required=False) or None,
        attributes=attrs,
        active=_bool(row.get("active", ""), "active"),
    )


def upsert_locations(conn: Connection, items: Iterable[Location]) -> int:
    now = utcnow()
    rows = [
        {
            **{k: v for k, v in loc.to_dict().items()},
            "type": loc.type.value,
            "created_at": now,
            "updated_at": now,
        }
        for loc in items
    ]
    if not rows:
        return 0
    ins = dialect_insert(conn, locations)
    conn.execute(_upsert(ins, locations, "id", rows[0]), rows)
    return len(rows)


def upsert_products(conn: Connection, items: Iterable[Product]) -> int:
    now = utcnow()
    rows = [{**p.to_dict(), "price": p.price, "created_at": now, "updated_at": now} for p in items]
    if not rows:
        return 0
    ins = dialect_insert(conn, products)
    conn.execute(_upsert(ins, products, "sku", rows[0]), rows)
    return len(rows)


def _upsert(ins: Any, table: sa.Table, key: str, sample: Mapping[str, Any]) -> Any:
    """Insert, or update only when something changed: ``updated_at`` then says when the
    content last changed (placement's location cache and listings' staleness read it)."""
    content = [c for c in sample if c not in (key, "created_at", "updated_at")]
    update = {c: ins.excluded[c] for c in [*content, "updated_at"]}
    changed = sa.or_(*(table.c[c].is_distinct_from(ins.excluded[c]) for c in content))
    return ins.on_conflict_do_update(index_elements=[key], set_=update, where=changed)


def location_from_row(m: Mapping[Any, Any]) -> Location:
    return Location(
        id=m["id"],
        name=m["name"],
        type=LocationType(m["type"]),
        latitude=m["latitude"],
        longitude=m["longitude"],
        capabilities=frozenset(Capability(c) for c in m["capabilities"]),
        address=m["address"],
        timezone=m["timezone"],
        opening_hours=m["opening_hours"],
        slots=m["slots"],
        daily_capacity=m["daily_capacity"],
        cutoff=m["cutoff"],
        active=m["active"],
    )


def product_from_row(m: Mapping[Any, Any]) -> Product:
    return Product(
        sku=m["sku"],
        name=m["name"],
        price=Decimal(m["price"]).quantize(Decimal("0.01")),
        currency=m["currency"],
        product_code=m["product_code"],
        category=m["category"],
        attributes=m["attributes"] or {},
        active=m["active"],
    )


def list_locations(engine: Engine | Connection) -> list[Location]:
    query = sa.select(locations).order_by(locations.c.id)
    if isinstance(engine, Connection):
        rows = engine.execute(query).all()
    else:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    return [location_from_row(r._mapping) for r in rows]


def get_location(engine: Engine, location_id: str) -> Location:
    with engine.connect() as conn:
        row = conn.execute(sa.select(locations).where(locations.c.id == location_id)).first()
    if row is None:
        raise NotFoundError(
            f"no location {location_id!r}", code="location_not_found", field="location_id"
        )
    return location_from_row(row._mapping)


def get_product(engine: Engine, sku: str) -> Product:
    with engine.connect() as conn:
        row = conn.execute(sa.select(products).where(products.c.sku == sku)).first()
    if row is None:
        raise NotFoundError(f"no product with sku {sku!r}", code="product_not_found", field="sku")
    return product_from_row(row._mapping)


def list_products(engine: Engine, *, limit: int = 1000) -> list[Product]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(products).order_by(products.c.sku).limit(limit)).all()
    return [product_from_row(r._mapping) for r in rows]
