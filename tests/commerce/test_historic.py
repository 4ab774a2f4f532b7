"""Historic orders: ``placed_at`` on the intake contract, lifecycle steps at given times
(``advance_steps``), and what that does to holds, capacity and the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
import sqlalchemy as sa

from tests.commerce.conftest import order_body, write
from trayecto import commerce
from trayecto.bootstrap import Platform
from trayecto.kernel import ConflictError, ValidationError, utcnow

PLACED = datetime(2026, 3, 14, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("14/03/2026", "invalid_timestamp"),
        ("2026-13-01T00:00:00Z", "invalid_timestamp"),
        (1773484200, "invalid_type"),
        ("in an hour", "placed_at_in_future"),  # made in the test: ids must not vary
    ],
)
def test_placed_at_is_checked_and_the_error_names_it(value: object, code: str) -> None:
    if value == "in an hour":
        value = (utcnow() + timedelta(hours=1)).isoformat()
    with pytest.raises(ValidationError) as err:
        commerce.check_order({**order_body(), "placed_at": value})
    assert err.value.field == "placed_at"
    assert err.value.code == code


def test_placed_at_is_optional_and_read_as_utc() -> None:
    assert commerce.check_order(order_body()).placed_at is None
    req = commerce.check_order({**order_body(), "placed_at": "2026-03-14T11:30:00+01:00"})
    assert req.placed_at == PLACED
    skew = utcnow() + timedelta(minutes=1)  # a clock a little ahead is accepted
    assert commerce.check_order({**order_body(), "placed_at": skew.isoformat()}).placed_at


def _historic(p: Platform, external_id: str, **kw: object) -> tuple[UUID, dict[str, object]]:
    body = {**order_body(external_id, **kw), "placed_at": PLACED.isoformat()}  # type: ignore[arg-type]
    order_id, created, view = commerce.place_order(p.engine, commerce.check_order(body))
    assert created
    assert view is not None
    return order_id, view


def test_a_historic_order_keeps_its_times_from_placing_to_delivery(retailer: Platform) -> None:
    order_id, view = _historic(retailer, "H-1", lines=[("SKU-1", 2)])
    (group,) = view["fulfilment_groups"]  # type: ignore[misc]
    gid = UUID(group["id"])
    times = [PLACED + timedelta(hours=h) for h in (1, 2, 20, 70)]
    steps = list(zip([gid] * 4, ["picking", "packed", "shipped", "delivered"], times, strict=True))
    assert commerce.advance_steps(retailer.engine, order_id, steps, answer=False) is None

    order = commerce.get_order(retailer.engine, order_id)
    assert order["status"] in ("delivered", "completed")
    history = [(h["kind"], h["to"], h["at"]) for h in order["history"]]
    assert history[0][0] == "order_placed"
    assert {at for kind, _, at in history if kind == "order_placed"} == {PLACED.isoformat()}
    moved = [(to, at) for kind, to, at in history if kind == "group_status"]
    assert moved == [(s, t.isoformat()) for _, s, t in steps]
    # the sale is in the ledger at the time it shipped; the ledger balances
    sales = [m for m in commerce.movements(retailer.engine, "SKU-1") if m.kind.value == "sale"]
    assert [(m.quantity, m.created_at) for m in sales] == [(-2, times[2])]
    assert commerce.check_ledger(retailer.engine) == []
    # nothing is left reserved for it, and the timeline sees it at its date
    assert sum(lv.reserved for lv in commerce.stock_levels(retailer.engine, ["SKU-1"])) == 0


def test_a_historic_order_hold_is_not_released_by_the_sweeper(retailer: Platform) -> None:
    _historic(retailer, "H-2", lines=[("SKU-1", 1)])
    assert commerce.release_expired(retailer.engine) == 0
    assert sum(lv.reserved for lv in commerce.stock_levels(retailer.engine, ["SKU-1"])) == 1


def test_capacity_counts_against_the_day_placed(platform: Platform, tmp_path: Path) -> None:
    locs = (
        "id,name,type,latitude,longitude,capabilities,daily_capacity\n"
        "WH,Almacén,ecommerce_warehouse,40.40,-3.70,ship,1\n"
    )
    for kind, text in (
        ("locations", locs),
        ("products", "sku,name,price,currency\nP1,Uno,10.00,EUR\n"),
        ("stock", "sku,location_id,on_hand\nP1,WH,10\n"),
    ):
        assert commerce.import_catalogue(platform.engine, kind, write(tmp_path, kind, text)).stored
    _historic(platform, "C-1", lines=[("P1", 1)])
    with platform.engine.connect() as conn:
        days = conn.execute(sa.text("SELECT day, picks FROM location_load")).all()
    assert [(str(d), n) for d, n in days] == [("2026-03-14", 1)]
    # that day is full; today is not
    with pytest.raises(commerce.InsufficientStock):
        _historic(platform, "C-2", lines=[("P1", 1)])
    _, created, _ = commerce.place_order(
        platform.engine, commerce.check_order(order_body("C-3", lines=[("P1", 1)]))
    )
    assert created


def test_steps_refuse_times_out_of_order_or_in_the_future_and_roll_back(
    retailer: Platform,
) -> None:
    order_id, view = _historic(retailer, "H-3", lines=[("SKU-1", 1)])
    gid = UUID(view["fulfilment_groups"][0]["id"])  # type: ignore[index]
    with pytest.raises(ValidationError) as err:
        commerce.advance_group(
            retailer.engine, order_id, gid, "picking", at=PLACED - timedelta(seconds=1)
        )
    assert (err.value.code, err.value.field) == ("invalid_time", "at")
    future = utcnow() + timedelta(days=1)
    with pytest.raises(ValidationError) as err:
        commerce.advance_steps(
            retailer.engine,
            order_id,
            [(gid, "picking", PLACED), (gid, "packed", future)],
        )
    assert err.value.field == "steps.1.at"
    assert commerce.get_order(retailer.engine, order_id)["status"] == "allocated"  # rolled back
    with pytest.raises(ConflictError) as illegal:
        commerce.advance_steps(retailer.engine, order_id, [(gid, "shipped", PLACED)])
    assert illegal.value.code == "illegal_transition"


def test_a_historic_return_keeps_its_times_and_refuses_times_out_of_order(
    retailer: Platform,
) -> None:
    e = retailer.engine
    order_id, view = _historic(retailer, "H-9", lines=[("SKU-1", 2)])
    (group,) = view["fulfilment_groups"]  # type: ignore[misc]
    steps = [
        (UUID(group["id"]), s, PLACED + timedelta(days=d))
        for s, d in (("picking", 0), ("packed", 0), ("shipped", 1), ("delivered", 2))
    ]
    commerce.advance_steps(e, order_id, steps, answer=False)
    req = commerce.check_return({"method": "by_post", "lines": [{"sku": "SKU-1", "quantity": 1}]})
    with pytest.raises(ValidationError) as err:  # before the order was placed
        commerce.request_return(e, order_id, req, at=PLACED - timedelta(days=1))
    assert (err.value.code, err.value.field) == ("invalid_time", "at")
    with pytest.raises(ValidationError) as err:
        commerce.request_return(e, order_id, req, at=utcnow() + timedelta(days=1))
    assert err.value.code == "invalid_time"
    opened, arrived, checked, paid = (PLACED + timedelta(days=d) for d in (5, 7, 7.1, 9))
    rid = UUID(commerce.request_return(e, order_id, req, at=opened)["id"])
    with pytest.raises(ValidationError) as err:  # before the return was opened
        commerce.receive_return(e, rid, at=opened - timedelta(hours=1))
    assert err.value.code == "invalid_time"
    assert commerce.get_return(e, rid)["status"] == "requested"  # nothing moved
    commerce.receive_return(e, rid, at=arrived)
    inspection = {"lines": [{"sku": "SKU-1", "condition": "as_new", "decision": "restock"}]}
    commerce.inspect_return(e, rid, commerce.check_inspection(inspection), at=checked)
    done = commerce.refund_return(e, rid, method="online", at=paid)
    assert done["status"] == "refunded"
    history = commerce.get_order(e, order_id)["history"]
    times = {h["kind"]: h["at"] for h in history if h["kind"].startswith(("return_", "refund_"))}
    assert times == {
        "return_requested": opened.isoformat(),
        "return_received": arrived.isoformat(),
        "return_inspected": checked.isoformat(),
        "refund_recorded": paid.isoformat(),
    }
    back = [m for m in commerce.movements(e, "SKU-1") if m.kind.value == "return"]
    assert [m.created_at for m in back] == [checked]
    (refund,) = [p for p in commerce.get_order(e, order_id)["payments"] if p["kind"] == "refund"]
    assert refund["recorded_at"] == paid.isoformat()
    assert commerce.check_ledger(e) == []


def test_goods_received_are_a_receipt_in_the_ledger_at_their_time(retailer: Platform) -> None:
    e = retailer.engine
    arrived = PLACED - timedelta(days=3)
    level = commerce.receive_stock(e, "SHOP-BCN", "SKU-2", 7, reference="PO-1", at=arrived)
    assert (level.on_hand, level.reserved) == (7, 0)  # SHOP-BCN had no SKU-2
    (receipt,) = [m for m in commerce.movements(e, "SKU-2", "SHOP-BCN")]
    assert (receipt.kind.value, receipt.quantity, receipt.reference, receipt.created_at) == (
        "receipt",
        7,
        "PO-1",
        arrived,
    )
    with pytest.raises(ValidationError) as err:
        commerce.receive_stock(e, "SHOP-BCN", "SKU-2", 1, at=utcnow() + timedelta(hours=1))
    assert (err.value.code, err.value.field) == ("invalid_time", "at")
    assert commerce.check_ledger(e) == []
