"""The order intake contract: ``check_order`` turns a JSON body into an ``OrderRequest``
or raises ``ValidationError`` naming the field (``lines.2.unit_price``).

Identifiers are normalised on the way in: e-mail trimmed and lower-cased, phone to E.164
with ``phonenumbers`` and the configured default region.

``placed_at`` (optional, ISO 8601) records a historic order at the time it was placed in
its channel (an import of past sales, the demo's simulated year); it may not lie in the
future by more than ``MAX_SKEW`` (a client's clock running ahead).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import phonenumbers

from trayecto.commerce._catalogue import check_code, check_currency, check_money
from trayecto.commerce._model import Method, PaymentMethod
from trayecto.kernel import ValidationError, parse_timestamp, utcnow

ORDER_CHANNELS = (
    "web",
    "app",
    "marketplace",
    "pos",
    "mobile_pos",
    "call_center",
    "whatsapp",
    "social",
)
_EXTERNAL = re.compile(r"^[^\x00-\x1f]{1,200}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_LINES = 200
#: How far in the future ``placed_at`` may be (clocks of channels differ a little).
MAX_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Customer:
    email: str | None = None
    phone: str | None = None
    customer_number: str | None = None
    loyalty_card: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "phone": self.phone,
            "customer_number": self.customer_number,
            "loyalty_card": self.loyalty_card,
        }


@dataclass(frozen=True, slots=True)
class LineRequest:
    sku: str
    quantity: int
    unit_price: Decimal
    discount: Decimal = Decimal("0.00")
    tax: Decimal = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    method: PaymentMethod
    amount: Decimal
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class Fulfilment:
    method: Method
    location_id: str | None = None
    address: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method.value,
            "location_id": self.location_id,
            "address": self.address,
        }


@dataclass(frozen=True, slots=True)
class OrderRequest:
    channel: str
    external_id: str
    customer: Customer
    lines: tuple[LineRequest, ...]
    fulfilment: Fulfilment
    currency: str = "EUR"
    payments: tuple[PaymentRequest, ...] = field(default_factory=tuple)
    #: When the channel took the order (a historic order); None: now.
    placed_at: datetime | None = None

    def demand(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for line in self.lines:
            out[line.sku] = out.get(line.sku, 0) + line.quantity
        return out


def normalise_email(value: str) -> str:
    return value.strip().lower()


def normalise_phone(value: str, region: str) -> str:
    """E.164 (``+34600111222``) or ``ValidationError``."""
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_possible_number(parsed):
        raise ValidationError(
            f"{value!r} is not a phone number", code="invalid_phone", field="customer.phone"
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _obj(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(f"{name} must be an object", code="invalid_type", field=name)
    return value


def _str(value: Any, name: str, limit: int = 100) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValidationError(f"{name} must be a string", code="invalid_type", field=name)
    text = str(value).strip()
    if len(text) > limit:
        raise ValidationError(f"{name} is longer than {limit} characters", field=name)
    return text or None


def _amount(value: Any, name: str, default: str | None = None) -> Decimal:
    if value is None and default is not None:
        return Decimal(default)
    if isinstance(value, float):
        raise ValidationError(
            f"{name} must be a decimal string such as '19.95' (not a float)",
            code="invalid_amount",
            field=name,
        )
    try:
        return check_money(value, name)
    except ValidationError as exc:
        exc.field = name
        raise


def _customer(raw: Any, region: str) -> Customer:
    if raw is None:
        return Customer()
    c = _obj(raw, "customer")
    email = _str(c.get("email"), "customer.email", 320)
    if email is not None:
        email = normalise_email(email)
        if not _EMAIL.match(email):
            raise ValidationError(
                f"{email!r} is not an e-mail address", code="invalid_email", field="customer.email"
            )
    phone = _str(c.get("phone"), "customer.phone", 40)
    return Customer(
        email=email,
        phone=normalise_phone(phone, region) if phone else None,
        customer_number=_str(c.get("customer_number"), "customer.customer_number"),
        loyalty_card=_str(c.get("loyalty_card"), "customer.loyalty_card"),
    )


def _lines(raw: Any) -> tuple[LineRequest, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValidationError("lines must be a non-empty list", code="missing_field", field="lines")
    if len(raw) > MAX_LINES:
        raise ValidationError(f"an order has at most {MAX_LINES} lines", field="lines")
    out = []
    for i, item in enumerate(raw):
        at = f"lines.{i}"
        line = _obj(item, at)
        qty = line.get("quantity")
        if not isinstance(qty, int) or isinstance(qty, bool) or not 1 <= qty <= 10_000:
            raise ValidationError(
                "quantity must be a whole number from 1 to 10000", field=f"{at}.quantity"
            )
        try:
            sku = check_code(line.get("sku"), "sku")
        except ValidationError as exc:
            exc.field = f"{at}.sku"
            raise
        if line.get("unit_price") is None:
            raise ValidationError(
                "unit_price is required", code="missing_field", field=f"{at}.unit_price"
            )
        out.append(
            LineRequest(
                sku=sku,
                quantity=qty,
                unit_price=_amount(line.get("unit_price"), f"{at}.unit_price"),
                discount=_amount(line.get("discount"), f"{at}.discount", "0.00"),
                tax=_amount(line.get("tax"), f"{at}.tax", "0.00"),
            )
        )
    return tuple(out)


def _fulfilment(raw: Any) -> Fulfilment:
    f = _obj(raw, "fulfilment")
    try:
        method = Method(str(f.get("method")))
    except ValueError:
        allowed = " | ".join(m.value for m in Method)
        raise ValidationError(
            f"fulfilment.method must be {allowed}", field="fulfilment.method"
        ) from None
    location_id = f.get("location_id")
    if location_id is not None:
        try:
            location_id = check_code(location_id, "location_id")
        except ValidationError as exc:
            exc.field = "fulfilment.location_id"
            raise
    address: dict[str, Any] | None = None
    if f.get("address") is not None:
        a = _obj(f.get("address"), "fulfilment.address")
        address = {}
        for key in ("line1", "postcode", "city", "country"):
            value = _str(a.get(key), f"fulfilment.address.{key}", 200)
            if not value:
                raise ValidationError(
                    f"address.{key} is required",
                    code="missing_field",
                    field=f"fulfilment.address.{key}",
                )
            address[key] = value
        address["country"] = address["country"].upper()
        for key, bound in (("latitude", 90), ("longitude", 180)):
            v = a.get(key)
            if v is not None:
                if not isinstance(v, int | float) or isinstance(v, bool) or abs(v) > bound:
                    raise ValidationError(
                        f"{key} must be a number within ±{bound}",
                        field=f"fulfilment.address.{key}",
                    )
                address[key] = float(v)
    if method is Method.DELIVERY and address is None:
        raise ValidationError(
            "home delivery needs fulfilment.address (line1, postcode, city, country)",
            code="missing_field",
            field="fulfilment.address",
        )
    if method != Method.DELIVERY and location_id is None:
        raise ValidationError(
            f"{method.value} needs fulfilment.location_id (the shop or pickup point)",
            code="missing_field",
            field="fulfilment.location_id",
        )
    return Fulfilment(method, None if method == Method.DELIVERY else location_id, address)


def _payments(raw: Any, currency: str) -> tuple[PaymentRequest, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValidationError("payments must be a list", code="invalid_type", field="payments")
    out = []
    for i, item in enumerate(raw):
        p = _obj(item, f"payments.{i}")
        try:
            method = PaymentMethod(str(p.get("method")))
        except ValueError:
            allowed = ", ".join(m.value for m in PaymentMethod)
            raise ValidationError(
                f"payment method must be one of: {allowed}", field=f"payments.{i}.method"
            ) from None
        out.append(
            PaymentRequest(
                method=method,
                amount=_amount(p.get("amount"), f"payments.{i}.amount"),
                reference=_str(p.get("reference"), f"payments.{i}.reference", 200),
            )
        )
    return tuple(out)


def _placed_at(raw: Any) -> datetime | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValidationError(
            "placed_at must be an ISO 8601 string such as '2026-03-14T10:30:00Z'",
            code="invalid_type",
            field="placed_at",
        )
    try:
        at = parse_timestamp(raw)
    except ValueError as exc:
        raise ValidationError(
            f"placed_at: {exc}", code="invalid_timestamp", field="placed_at"
        ) from None
    if at > utcnow() + MAX_SKEW:
        raise ValidationError(
            "placed_at is in the future; an order is placed now or was placed in the past",
            code="placed_at_in_future",
            field="placed_at",
        )
    return at


def check_order(body: Any, *, region: str = "ES") -> OrderRequest:
    """Validate an order intake body (see docs/commerce.md for the contract)."""
    b = _obj(body, "body")
    channel = str(b.get("channel") or "")
    if channel not in ORDER_CHANNELS:
        raise ValidationError(
            f"channel must be one of: {', '.join(ORDER_CHANNELS)}", field="channel"
        )
    external_id = b.get("external_id")
    if not isinstance(external_id, str) or not _EXTERNAL.match(external_id.strip()):
        raise ValidationError(
            "external_id (the channel's order id) is required, 1-200 characters",
            code="missing_field",
            field="external_id",
        )
    currency = check_currency(b.get("currency") or "EUR")
    return OrderRequest(
        channel=channel,
        external_id=external_id.strip(),
        customer=_customer(b.get("customer"), region),
        lines=_lines(b.get("lines")),
        fulfilment=_fulfilment(b.get("fulfilment")),
        currency=currency,
        payments=_payments(b.get("payments"), currency),
        placed_at=_placed_at(b.get("placed_at")),
    )


def check_when(
    at: datetime | None, not_before: datetime | None = None, field: str = "at"
) -> datetime:
    """When a step happened: ``at`` (a historic step, e.g. a loaded year of orders), else
    now. ``invalid_time`` when ``at`` lies in the future (beyond ``MAX_SKEW``) or before
    ``not_before`` (the last change of what it moves on)."""
    if at is None:
        return utcnow()
    if at > utcnow() + MAX_SKEW:
        raise ValidationError(
            f"{at.isoformat()} is in the future", code="invalid_time", field=field
        )
    if not_before is not None and at < not_before:
        raise ValidationError(
            f"{at.isoformat()} is before the last change ({not_before.isoformat()})",
            code="invalid_time",
            field=field,
        )
    return at
