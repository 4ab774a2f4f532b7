"""What a return request and an inspection say, checked: ``check_return`` and
``check_inspection`` turn a JSON body into frozen records or raise ``ValidationError``
naming the field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trayecto.commerce._catalogue import check_code
from trayecto.commerce._intake import ORDER_CHANNELS
from trayecto.kernel import ValidationError

METHODS = ("in_store", "by_post")
CONDITIONS = ("as_new", "opened", "damaged", "defective", "wrong_item")
DECISIONS = ("restock", "write_off", "reject")


@dataclass(frozen=True, slots=True)
class ReturnLine:
    sku: str
    quantity: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ReturnRequest:
    method: str
    channel: str
    lines: tuple[ReturnLine, ...]
    location_id: str | None = None
    reason: str | None = None
    exchange: Mapping[str, Any] | None = None  # lines, fulfilment, payments of the new order


@dataclass(frozen=True, slots=True)
class Inspection:
    sku: str
    condition: str
    decision: str
    location_id: str | None = None  # where restocked; default where it was received


def _text(value: Any, field: str, limit: int = 200) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string", code="invalid_type", field=field)
    text = value.strip()
    if len(text) > limit:
        raise ValidationError(f"{field} is longer than {limit} characters", field=field)
    return text or None


def check_return(body: Any) -> ReturnRequest:
    """Validate ``POST /api/orders/{id}/returns``."""
    if not isinstance(body, dict):
        raise ValidationError("body must be an object", code="invalid_type", field="body")
    method = body.get("method")
    if method not in METHODS:
        raise ValidationError(f"method must be one of: {', '.join(METHODS)}", field="method")
    channel = body.get("channel") or ("pos" if method == "in_store" else "web")
    if channel not in ORDER_CHANNELS:
        raise ValidationError(
            f"channel must be one of: {', '.join(ORDER_CHANNELS)}", field="channel"
        )
    raw = body.get("lines")
    if not isinstance(raw, list) or not raw:
        raise ValidationError("lines must be a non-empty list", code="missing_field", field="lines")
    merged: dict[str, tuple[int, str | None]] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ValidationError("each line must be an object", field=f"lines.{i}")
        try:
            sku = check_code(item.get("sku"), "sku")
        except ValidationError as exc:
            exc.field = f"lines.{i}.sku"
            raise
        qty = item.get("quantity")
        if not isinstance(qty, int) or isinstance(qty, bool) or not 1 <= qty <= 10_000:
            raise ValidationError(
                "quantity must be a whole number from 1 to 10000", field=f"lines.{i}.quantity"
            )
        before = merged.get(sku, (0, None))
        merged[sku] = (before[0] + qty, _text(item.get("reason"), f"lines.{i}.reason") or before[1])
    location_id = body.get("location_id")
    if location_id is not None:
        location_id = check_code(location_id, "location_id")
    if method == "in_store" and location_id is None:
        raise ValidationError(
            "a return in a shop needs location_id (where the customer brings it)",
            code="missing_field",
            field="location_id",
        )
    exchange = body.get("exchange")
    if exchange is not None and not isinstance(exchange, dict):
        raise ValidationError("exchange must be an object", code="invalid_type", field="exchange")
    return ReturnRequest(
        method=method,
        channel=channel,
        lines=tuple(ReturnLine(s, q, r) for s, (q, r) in sorted(merged.items())),
        location_id=location_id,
        reason=_text(body.get("reason"), "reason"),
        exchange=exchange,
    )


def check_inspection(body: Any) -> list[Inspection]:
    """Validate ``POST /api/returns/{id}/inspect``: ``{"lines": [{"sku", "condition",
    "decision", "location_id"?}]}``."""
    raw = body.get("lines") if isinstance(body, dict) else None
    if not isinstance(raw, list) or not raw:
        raise ValidationError("lines must be a non-empty list", code="missing_field", field="lines")
    out: dict[str, Inspection] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ValidationError("each line must be an object", field=f"lines.{i}")
        sku = check_code(item.get("sku"), "sku")
        condition, decision = item.get("condition"), item.get("decision")
        if condition not in CONDITIONS:
            raise ValidationError(
                f"condition must be one of: {', '.join(CONDITIONS)}", field=f"lines.{i}.condition"
            )
        if decision not in DECISIONS:
            raise ValidationError(
                f"decision must be one of: {', '.join(DECISIONS)}", field=f"lines.{i}.decision"
            )
        loc = item.get("location_id")
        out[sku] = Inspection(
            sku, condition, decision, check_code(loc, "location_id") if loc else None
        )
    return list(out.values())
