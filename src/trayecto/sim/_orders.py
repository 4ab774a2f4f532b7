"""The simulated orders through the order API: ``orders.csv`` + ``order_lines.csv`` become
``POST /api/orders`` bodies (``commerce.check_order`` then ``commerce.place_order``), placed
at their ``placed_at``, then walked through the fulfilment states they reached by the
simulation's "now" (``commerce.advance_steps``, one transaction per order).

Mapping: the sim channel ``store`` is the order channel ``pos``; an in-store sale is placed
as click & collect at that shop and collected at once (how trayecto models a POS carry-out
sale); ``home_delivery`` is ``delivery`` to the row's ship-to address; ``click_collect`` is
``click_and_collect`` at the shop; ``pickup_point`` names the pickup point. The customer is
the e-mail and customer number a web or app order carries, the loyalty card a shop sale
carries (none when it was forgotten); a marketplace does not share its buyer's identity.
The order-level discount and tax are spread over the lines by amount (tax-inclusive prices,
as the contract says); the payment is the whole amount paid (shipping included).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import orjson
from sqlalchemy.engine import Engine

from trayecto import commerce
from trayecto.kernel import ConflictError, TrayectoError, parse_timestamp, utcnow

_CHANNELS = {"web": "web", "app": "app", "marketplace": "marketplace", "store": "pos"}
_METHODS = {
    "in_store": "click_and_collect",
    "click_collect": "click_and_collect",
    "pickup_point": "pickup_point",
    "home_delivery": "delivery",
}
_CENT = Decimal("0.01")
#: The ``pos`` channel's sourcing policy the loader sets when the channel has none of its
#: own (a retailer's own rules are left as they are): at the till the customer has
#: already taken the goods off the shelf, so picking in a shop costs nothing and no units
#: are kept back for walk-in customers (she is one). Without it the cost model would
#: send a five-item till sale from a warehouse (a parcel beats five shop picks).
POS_POLICY = {"pick_cost": {"shop": 0.0}, "walk_in_reserve": 0}

#: Called with (done, total) as orders are stored.
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class OrdersReport:
    rows: int
    stored: int
    duplicates: int
    rejected: int
    rejects_path: str
    #: Returns opened and taken as far as they got (received, inspected, refunded).
    returns: int = 0
    #: Till sales whose shop had to be restocked first (see ``restock``).
    restocks: int = 0
    #: Whether the loader set the ``pos`` channel's policy to ``POS_POLICY`` (it had none).
    pos_policy_set: bool = False


def _spread(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """``total`` in cents over the lines in proportion to ``weights``; the last line takes
    what rounding leaves, so the parts add up exactly."""
    whole = sum(weights, Decimal(0))
    if not total or not whole:
        return [Decimal("0.00")] * len(weights)
    parts = [(total * w / whole).quantize(_CENT) for w in weights[:-1]]
    return [*parts, total - sum(parts, Decimal(0))]


def order_body(row: dict[str, str], lines: list[dict[str, str]]) -> dict[str, Any]:
    """The ``POST /api/orders`` body of one ``orders.csv`` row and its lines."""
    amounts = [Decimal(ln["amount"]) for ln in lines]
    discounts = _spread(Decimal(row["discount"]), amounts)
    taxes = _spread(Decimal(row["tax"]), amounts)
    channel = row["channel"]
    ref, email = row["customer_ref"], row["email"]
    customer: dict[str, str] = {}
    if channel in ("web", "app"):
        if email:
            customer["email"] = email
        if ref and ref != email:
            customer["customer_number"] = ref
    elif channel == "store" and ref:
        customer["loyalty_card"] = ref
    method = _METHODS[row["fulfilment"]]
    fulfilment: dict[str, Any] = {"method": method}
    if method == "delivery":
        fulfilment["address"] = {
            "line1": row["ship_line1"],
            "postcode": row["ship_postcode"],
            "city": row["ship_city"],
            "country": row["ship_country"],
        }
    else:
        fulfilment["location_id"] = row["fulfilment_location"]
    return {
        "channel": _CHANNELS[channel],
        "external_id": row["order_id"],
        "placed_at": row["placed_at"],
        "customer": customer,
        "currency": row["currency"],
        "lines": [
            {
                "sku": ln["sku"],
                "quantity": int(ln["quantity"]),
                "unit_price": ln["unit_price"],
                "discount": str(d),
                "tax": str(t),
            }
            for ln, d, t in zip(lines, discounts, taxes, strict=True)
        ],
        "payments": [
            {
                "method": "card_in_shop" if channel == "store" else "online",
                "amount": row["total"],
                "reference": f"sim-{row['order_id']}",
            }
        ],
        "fulfilment": fulfilment,
    }


def _path(group: dict[str, Any]) -> list[str]:
    """The statuses a group goes through after ``allocated``, to the customer's hands."""
    if group["method"] == "delivery":
        return ["picking", "packed", "shipped", "delivered"]
    if group["transfer"]:
        return ["picking", "packed", "shipped", "ready_for_pickup", "collected"]
    return ["picking", "packed", "ready_for_pickup", "collected"]


def steps(
    row: dict[str, str], groups: list[dict[str, Any]]
) -> list[tuple[UUID, str, datetime | None]]:
    """Each group's steps, as far as the order got by the simulation's end, at the times
    the row says (``shipped_at``, ``ready_at``, ``done_at``); a step the row has no time
    for (picking, packing, a transfer the simulator does not know of) is placed evenly
    between the known times around it. An in-store sale goes all the way at once."""
    placed = parse_timestamp(row["placed_at"])
    known: dict[str, datetime] = {}
    for status, column in (
        ("shipped", "shipped_at"),
        ("ready_for_pickup", "ready_at"),
        ("delivered", "done_at"),
        ("collected", "done_at"),
    ):
        if row[column]:
            known[status] = parse_timestamp(row[column])
    out: list[tuple[UUID, str, datetime | None]] = []
    for group in groups:
        path = _path(group)
        # how far it went: up to the last status with a time (the rest had not happened)
        reached = max((i for i, s in enumerate(path) if s in known), default=-1)
        if reached < 0:
            continue
        path = path[: reached + 1]
        times: list[datetime | None] = [known.get(s) for s in path]
        before, gap = placed, []
        for i, t in enumerate(times):
            if t is None:
                gap.append(i)
                continue
            for k, j in enumerate(gap, 1):
                times[j] = before + (t - before) * k / (len(gap) + 1)
            before, gap = t, []
        out.extend((UUID(group["id"]), s, t) for s, t in zip(path, times, strict=True))
    return out


#: A till sale's shop restocked the morning before: this long before the sale, and this
#: many units more than the sale lacks (the shelf is not left empty).
_RESTOCK_BEFORE = timedelta(hours=1)
_RESTOCK_MARGIN = 2


def restock(engine: Engine, row: dict[str, str], lines: list[dict[str, str]]) -> bool:
    """A till sale the shop cannot serve any more: trayecto's sourcing sent some of the
    shop's units to online orders (ship from store) where the simulator expected its
    warehouse or supplier to, and replenishment is not simulated. The shop receives what
    the sale lacks (``commerce.receive_stock``, a ledger receipt an hour before the sale),
    as a store delivery would. False when nothing was missing."""
    shop, when = row["fulfilment_location"], parse_timestamp(row["placed_at"]) - _RESTOCK_BEFORE
    wanted: dict[str, int] = {}
    for ln in lines:
        wanted[ln["sku"]] = wanted.get(ln["sku"], 0) + int(ln["quantity"])
    have = {lv.sku: lv.available for lv in commerce.stock_levels(engine, sorted(wanted), shop)}
    received = False
    for sku, n in sorted(wanted.items()):
        if have.get(sku, 0) < n:
            missing = n - have.get(sku, 0) + _RESTOCK_MARGIN
            reference = f"sim-restock-{row['order_id']}"
            commerce.receive_stock(engine, shop, sku, missing, reference=reference, at=when)
            received = True
    return received


#: How long a parcel sent back takes to reach the warehouse, and its inspection after that.
_POST_DAYS = timedelta(days=2)
_INSPECTION = timedelta(hours=2)


def replay_return(
    engine: Engine, order_id: UUID, row: dict[str, str], lines: list[dict[str, str]]
) -> bool:
    """The row's return through the returns API, at the simulated times: opened at
    ``returned_at`` (every unit of ``returned_sku``; in the shop of a till or click & collect
    sale, by post otherwise), received there at once in a shop or two days later by post,
    inspected as new and restocked, refunded at ``refunded_at`` against the payment. Steps
    the simulation had not reached by its end (or that would lie in the future) are left
    for later. False when the row has no return."""
    if not row["returned_at"] or not row["returned_sku"]:
        return False
    sku = row["returned_sku"]
    quantity = sum(int(ln["quantity"]) for ln in lines if ln["sku"] == sku)
    in_shop = row["fulfilment"] in ("in_store", "click_collect")
    body: dict[str, Any] = {
        "method": "in_store" if in_shop else "by_post",
        "lines": [{"sku": sku, "quantity": quantity}],
        "reason": row["return_reason"] or None,
    }
    if in_shop:
        body["location_id"] = row["fulfilment_location"]
    opened = parse_timestamp(row["returned_at"])
    ret = commerce.request_return(engine, order_id, commerce.check_return(body), at=opened)
    rid = UUID(ret["id"])
    received = opened if in_shop else opened + _POST_DAYS
    refunded = parse_timestamp(row["refunded_at"]) if row["refunded_at"] else None
    now = utcnow()
    if received > now or (refunded is not None and received > refunded):
        return True
    commerce.receive_return(engine, rid, at=received)
    inspected = received + _INSPECTION
    if refunded is None or inspected > refunded:
        return True
    inspection = {"lines": [{"sku": sku, "condition": "as_new", "decision": "restock"}]}
    commerce.inspect_return(engine, rid, commerce.check_inspection(inspection), at=inspected)
    commerce.refund_return(engine, rid, reference=f"sim-refund-{row['order_id']}", at=refunded)
    return True


def _lines_by_order(path: Path) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for ln in csv.DictReader(fh):
            out.setdefault(ln["order_id"], []).append(ln)
    return out


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as fh:
        yield from enumerate(csv.DictReader(fh), 2)


def _reject(out: IO[bytes], line: int, exc: TrayectoError) -> None:
    out.write(
        orjson.dumps({"line": line, "code": exc.code, "message": str(exc), "field": exc.field})
        + b"\n"
    )


def load_orders(
    engine: Engine,
    root: Path,
    *,
    region: str,
    rejects_path: Path,
    on_progress: Progress | None = None,
) -> OrdersReport:
    """Place every order of ``root``'s ``orders.csv``, oldest first (so the orders' ids,
    time-ordered, follow their placing), and walk each to the status it reached. An order
    already stored (same channel and external id) is counted as a duplicate and left as it
    is. Needs ``locations``, ``products`` and ``stock`` loaded first; sets the ``pos``
    channel's policy to ``POS_POLICY`` unless the channel has one already."""
    pos_policy_set = commerce.policy_config(engine, "pos") is None
    if pos_policy_set:
        commerce.set_policy(engine, "pos", POS_POLICY)
    lines = _lines_by_order(root / "order_lines.csv")
    rows = sorted(_rows(root / "orders.csv"), key=lambda r: r[1]["placed_at"])
    stored = duplicates = rejected = returns = restocks = 0
    step = max(1, len(rows) // 200)
    with rejects_path.open("wb") as rejects:
        for n, (line, row) in enumerate(rows, 1):
            try:
                req = commerce.check_order(order_body(row, lines[row["order_id"]]), region=region)
                try:
                    order_id, created, view = commerce.place_order(engine, req)
                except ConflictError as exc:
                    till = row["fulfilment"] == "in_store"
                    if not (till and exc.code == "insufficient_stock"):
                        raise
                    if not restock(engine, row, lines[row["order_id"]]):
                        raise
                    restocks += 1
                    order_id, created, view = commerce.place_order(engine, req)
                if created:
                    assert view is not None
                    walk = steps(row, view["fulfilment_groups"])
                    if walk:
                        commerce.advance_steps(engine, order_id, walk, answer=False)
                    stored += 1
                    returns += replay_return(engine, order_id, row, lines[row["order_id"]])
                else:
                    duplicates += 1
            except TrayectoError as exc:
                rejected += 1
                _reject(rejects, line, exc)
            if on_progress is not None and (n % step == 0 or n == len(rows)):
                on_progress(n, len(rows))
    return OrdersReport(
        len(rows), stored, duplicates, rejected, str(rejects_path), returns, restocks,
        pos_policy_set,
    )  # fmt: skip
