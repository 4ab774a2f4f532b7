"""``sim.load`` stores the customer records and the orders through the public paths: every
``orders.csv`` row is an order with its lines, time and final status; the ledger balances;
each source holds its ``customers.csv`` rows; a second load stores nothing twice."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import sqlalchemy as sa

from tests.sim.conftest import messages, rows
from trayecto import access, commerce, sim
from trayecto.bootstrap import Platform
from trayecto.kernel import parse_timestamp
from trayecto.sim._orders import POS_POLICY
from trayecto.sim.loader import LOYALTY_SOURCE

CHANNEL = {"web": "web", "app": "app", "marketplace": "marketplace", "store": "pos"}
#: orders.csv status (as of the simulation's end) → the order statuses it may be stored as.
FINAL = {
    "completed": {"delivered", "collected", "completed"},
    "returned": {"delivered", "collected", "completed"},
    "shipped": {"shipped"},
    "ready_for_pickup": {"ready_for_pickup"},
    "placed": {"allocated"},
}


def _money(value: object) -> Decimal:
    """A money column as read by raw SQL (SQLite answers a float, PostgreSQL a Decimal)."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def test_load_places_every_order_and_imports_every_record(
    platform: Platform, tmp_path: Path
) -> None:
    manifest = sim.simulate(tmp_path / "sim", customers=150, days=90, seed=7)
    report = sim.load(platform.engine, manifest, rejects_dir=tmp_path, key=platform.secret_key)
    assert report.rejected == 0, report.rejects
    orders_csv = rows(manifest.root, "orders.csv")
    assert len(orders_csv) > 100
    assert {r["status"] for r in orders_csv} >= {"completed", "returned"}
    assert report.orders_stored == len(orders_csv)
    assert (report.orders_duplicate, report.orders_rejected) == (0, 0)
    assert report.orders_pos_policy_set  # the channel had no policy of its own
    assert commerce.policy_config(platform.engine, "pos") == POS_POLICY

    lines_csv: dict[str, list[tuple[str, int, Decimal]]] = {}
    for ln in rows(manifest.root, "order_lines.csv"):
        lines_csv.setdefault(ln["order_id"], []).append(
            (ln["sku"], int(ln["quantity"]), Decimal(ln["unit_price"]))
        )
    with platform.engine.connect() as conn:
        stored = {
            (r.channel, r.external_id): r
            for r in conn.execute(
                sa.text("SELECT id, channel, external_id, status, total, fulfilment FROM orders")
            )
        }
        lines: dict[object, list[tuple[str, int, Decimal]]] = {}
        for r in conn.execute(
            sa.text("SELECT order_id, sku, quantity, unit_price FROM order_lines ORDER BY line_no")
        ):
            lines.setdefault(r.order_id, []).append((r.sku, r.quantity, _money(r.unit_price)))
    assert len(stored) == len(orders_csv)
    refunded_events = {
        msg["properties"]["order_id"]: msg["properties"]["total"]
        for _, msg in messages(manifest)
        if msg.get("event") == "Order Refunded"
    }
    methods: Counter[str] = Counter()
    returned = refunded = 0
    for row in orders_csv:
        order = stored[(CHANNEL[row["channel"]], row["order_id"])]
        assert lines[order.id] == lines_csv[row["order_id"]], row["order_id"]
        assert order.status in FINAL[row["status"]], (row["order_id"], row["status"], order.status)
        assert _money(order.total) == Decimal(row["subtotal"]) - Decimal(row["discount"])
        view = commerce.get_order(platform.engine, UUID(str(order.id)))
        assert parse_timestamp(view["placed_at"]) == parse_timestamp(row["placed_at"])
        methods[view["fulfilment"]["method"]] += 1
        if row["fulfilment"] == "in_store":
            # a till sale: click & collect at that shop, collected at once, no transfer
            assert view["fulfilment"]["location_id"] == row["location_id"]
            assert {g["location_id"] for g in view["fulfilment_groups"]} == {row["location_id"]}
            assert view["status"] == "collected"
        if row["done_at"]:
            done = [h["at"] for h in view["history"] if h["to"] in ("delivered", "collected")]
            assert max(parse_timestamp(t) for t in done) == parse_timestamp(row["done_at"])
        rmas = view["returns"]
        if not row["returned_at"]:
            assert rmas == [], row["order_id"]
            continue
        # the return, through the returns API at the simulated times
        returned += 1
        (rma,) = rmas
        assert parse_timestamp(rma["created_at"]) == parse_timestamp(row["returned_at"])
        units = sum(q for sku, q, _ in lines_csv[row["order_id"]] if sku == row["returned_sku"])
        detail = commerce.get_return(platform.engine, UUID(rma["id"]))
        assert [(ln["sku"], ln["quantity"]) for ln in detail["lines"]] == [
            (row["returned_sku"], units)
        ]
        assert detail["reason"] == row["return_reason"]
        refunds = [p for p in view["payments"] if p["kind"] == "refund"]
        if row["refunded_at"]:
            refunded += 1
            assert rma["status"] == "refunded"
            (refund,) = refunds
            assert parse_timestamp(refund["recorded_at"]) == parse_timestamp(row["refunded_at"])
            assert Decimal(refund["amount"]) == Decimal(detail["refund_total"])
            # the tracking stream's "Order Refunded" says what the returns API refunded
            assert Decimal(str(refunded_events[row["order_id"]])) == Decimal(refund["amount"])
        else:
            assert refunds == []
    assert methods["delivery"]
    assert methods["click_and_collect"]
    assert refunded > 0
    assert report.orders_returns == returned
    assert commerce.check_ledger(platform.engine) == []

    # customer records: each source holds exactly its customers.csv rows
    by_source = Counter(r["source"] for r in rows(manifest.root, "customers.csv"))
    assert by_source["web"]
    assert by_source["loyalty"]
    names = {f.source.key: f.source.name for f in manifest.files} | {"loyalty": LOYALTY_SOURCE[0]}
    with platform.engine.connect() as conn:
        held = {
            UUID(str(source_id)): n
            for source_id, n in conn.execute(
                sa.text("SELECT source_id, count(*) FROM id_records GROUP BY source_id")
            )
        }
    for value, n in by_source.items():
        src = access.get_source(platform.engine, names[value])
        assert held[src.id] == n, value
    assert {c[0]: c[2] for c in report.customers} == {names[v]: n for v, n in by_source.items()}

    again = sim.load(platform.engine, manifest, rejects_dir=tmp_path, key=platform.secret_key)
    assert (again.orders_stored, again.orders_duplicate) == (0, len(orders_csv))
    assert sum(c[2] for c in again.customers) == 0
    assert sum(c[3] for c in again.customers) == sum(by_source.values())
    with platform.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM orders")).scalar() == len(orders_csv)
        events = conn.execute(sa.text("SELECT count(*) FROM order_events")).scalar()
    assert commerce.check_ledger(platform.engine) == []
    # nothing was advanced again
    with platform.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM order_events")).scalar() == events


def test_opening_stock_covers_the_window_sales(small: sim.Manifest) -> None:
    """Every (SKU, location) a sale is taken from holds at least what is sold there."""
    stock = {(r["sku"], r["location_id"]): int(r["on_hand"]) for r in rows(small.root, "stock.csv")}
    orders = {r["order_id"]: r for r in rows(small.root, "orders.csv")}
    sold: Counter[tuple[str, str]] = Counter()
    for ln in rows(small.root, "order_lines.csv"):
        o = orders[ln["order_id"]]
        if o["fulfilment"] in ("in_store", "click_collect"):
            sold[(ln["sku"], o["fulfilment_location"])] += int(ln["quantity"])
    assert sold
    for key, n in sold.items():
        assert stock.get(key, 0) >= n + 2, key  # plus the shelf margin


def test_a_till_sale_the_shop_can_no_longer_serve_is_restocked_first(
    platform: Platform, tmp_path: Path
) -> None:
    """Online orders took Barcelona's last SKU-3 (ship from store); the till sale of 8 that
    the simulator recorded there gets a delivery of what it lacks an hour before it."""
    from tests.commerce.conftest import LOCATIONS, PRODUCTS, STOCK, write
    from trayecto.sim import _orders

    e = platform.engine
    for kind, text in (("locations", LOCATIONS), ("products", PRODUCTS), ("stock", STOCK)):
        assert (
            commerce.import_catalogue(e, kind, write(tmp_path, f"{kind}.csv", text)).rejected == 0
        )
    row = {
        "order_id": "T-1", "channel": "store", "fulfilment": "in_store",
        "fulfilment_location": "SHOP-BCN", "placed_at": "2026-10-24T17:19:17Z",
    }  # fmt: skip
    lines = [{"sku": "SKU-3", "quantity": "5"}, {"sku": "SKU-3", "quantity": "3"}]
    (before,) = commerce.stock_levels(e, ["SKU-3"], "SHOP-BCN")
    assert before.available == 6
    assert _orders.restock(e, row, lines) is True
    (after,) = commerce.stock_levels(e, ["SKU-3"], "SHOP-BCN")
    assert after.available == 8 + 2  # what it lacked, and a shelf margin
    (receipt,) = [
        m for m in commerce.movements(e, "SKU-3", "SHOP-BCN") if m.kind.value == "receipt"
    ]
    assert receipt.quantity == 4
    assert receipt.created_at == parse_timestamp("2026-10-24T16:19:17Z")
    assert _orders.restock(e, row, lines) is False  # nothing missing now
    assert commerce.check_ledger(e) == []


def test_load_keeps_a_pos_policy_the_retailer_set(platform: Platform, tmp_path: Path) -> None:
    """The loader's till-sale policy is a default: a ``pos`` policy already stored (the
    retailer's own rules) is left as it was, and the report says so."""
    own = {"pick_cost": {"shop": 0.0}, "walk_in_reserve": 0, "split_penalty": 7.5}
    commerce.set_policy(platform.engine, "pos", own)
    manifest = sim.simulate(tmp_path / "sim", customers=40, days=20, seed=3)
    report = sim.load(platform.engine, manifest, rejects_dir=tmp_path, key=platform.secret_key)
    assert report.orders_stored > 0
    assert not report.orders_pos_policy_set
    assert commerce.policy_config(platform.engine, "pos") == own
