"""Returns anywhere: an online order returned in a shop, a shop order returned by post,
inspection and restock through the ledger, refunds against the original payment,
exchanges, the history on the customer timeline. SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

import pytest

from tests.commerce.conftest import order_body
from trayecto import commerce
from trayecto.bootstrap import Platform
from trayecto.kernel import ConflictError, TrayectoError, ValidationError

DELIVERED = ("picking", "packed", "shipped", "delivered")
COLLECTED = ("picking", "packed", "ready_for_pickup", "collected")


def _order(
    p: Platform,
    external_id: str,
    lines: list[tuple[str, int]],
    *,
    channel: str = "web",
    fulfilment: dict[str, object] | None = None,
    payment: str = "online",
    steps: tuple[str, ...] = DELIVERED,
) -> dict[str, Any]:
    body = order_body(external_id, channel=channel, lines=lines, fulfilment=fulfilment)
    total = sum(q for _, q in lines) * 10
    body["payments"] = [{"method": payment, "amount": f"{total}.00", "reference": "pay-1"}]
    oid, _, view = commerce.place_order(p.engine, commerce.check_order(body))
    assert view is not None
    for group in view["fulfilment_groups"]:
        for status in steps:
            view = commerce.advance_group(p.engine, oid, UUID(group["id"]), status)
    return view


def _on_hand(p: Platform, sku: str) -> dict[str, int]:
    return {lv.location_id: lv.on_hand for lv in commerce.stock_levels(p.engine, [sku])}


def _ret(body: dict[str, object]) -> commerce.ReturnRequest:
    return commerce.check_return(body)


def test_online_order_returned_in_a_shop(retailer: Platform) -> None:
    order = _order(retailer, "W-R1", [("SKU-1", 2)])
    oid = UUID(order["id"])
    assert order["status"] == "delivered"
    before = _on_hand(retailer, "SKU-1")
    ret = commerce.request_return(
        retailer.engine,
        oid,
        _ret({"method": "in_store", "location_id": "SHOP-BCN", "reason": "too small",
              "lines": [{"sku": "SKU-1", "quantity": 1}]}),
    )  # fmt: skip
    assert (ret["status"], ret["method"], ret["channel"], ret["location_id"]) == (
        "requested", "in_store", "pos", "SHOP-BCN",
    )  # fmt: skip
    assert ret["lines"] == [
        {"sku": "SKU-1", "quantity": 1, "reason": "too small", "condition": None,
         "decision": None, "restock_location_id": None, "refund_amount": None},
    ]  # fmt: skip
    rid = UUID(ret["id"])
    ret = commerce.receive_return(retailer.engine, rid)
    assert ret["status"] == "received"
    assert _on_hand(retailer, "SKU-1") == before  # nothing is sellable before inspection
    ret = commerce.inspect_return(
        retailer.engine,
        rid,
        commerce.check_inspection({"lines": [{"sku": "SKU-1", "condition": "as_new",
                                              "decision": "restock"}]}),
    )  # fmt: skip
    assert ret["lines"][0]["restock_location_id"] == "SHOP-BCN"
    assert ret["lines"][0]["refund_amount"] == "10.00"
    after = _on_hand(retailer, "SKU-1")
    assert after["SHOP-BCN"] == before["SHOP-BCN"] + 1
    moves = commerce.movements(retailer.engine, "SKU-1", "SHOP-BCN")
    assert (moves[-1].kind.value, moves[-1].quantity, moves[-1].reference) == (
        "return", 1, f"return:{rid}",
    )  # fmt: skip
    ret = commerce.refund_return(retailer.engine, rid, reference="psp-refund-9")
    assert (ret["status"], ret["refund_total"]) == ("refunded", "10.00")
    view = commerce.get_order(retailer.engine, oid)
    payment = next(p for p in view["payments"] if p["kind"] == "payment")
    [refund] = [p for p in view["payments"] if p["kind"] == "refund"]
    assert (refund["method"], refund["amount"], refund["return_id"]) == (
        "online",
        "10.00",
        str(rid),
    )
    assert ret["refunds"][0]["refund_of"] is not None
    assert payment["amount"] == "20.00"
    assert [r["status"] for r in view["returns"]] == ["refunded"]
    kinds = [h["kind"] for h in view["history"]]
    assert kinds[-4:] == ["return_requested", "return_received", "return_inspected",
                          "refund_recorded"]  # fmt: skip
    # the customer timeline reads the same history
    timeline = list(commerce.order_history(retailer.engine, emails=["ana.garcia@example.es"]))
    assert [e.kind for e in timeline][-4:] == kinds[-4:]
    assert timeline[-1].detail is not None
    assert timeline[-1].detail["amount"] == "10.00"
    assert commerce.check_ledger(retailer.engine) == []


def test_shop_order_returned_by_post_and_written_off(retailer: Platform) -> None:
    cc = {"method": "click_and_collect", "location_id": "SHOP-BCN"}
    order = _order(
        retailer, "P-R1", [("SKU-3", 1)], channel="pos", fulfilment=cc,
        payment="card_in_shop", steps=COLLECTED,
    )  # fmt: skip
    assert order["status"] == "collected"
    oid = UUID(order["id"])
    before = _on_hand(retailer, "SKU-3")
    ret = commerce.request_return(
        retailer.engine, oid,
        _ret({"method": "by_post", "lines": [{"sku": "SKU-3", "quantity": 1,
                                              "reason": "arrived broken"}]}),
    )  # fmt: skip
    assert (ret["channel"], ret["location_id"]) == ("web", "WH-MAD")  # the returns warehouse
    rid = UUID(ret["id"])
    commerce.receive_return(retailer.engine, rid)
    ret = commerce.inspect_return(
        retailer.engine, rid,
        commerce.check_inspection({"lines": [{"sku": "SKU-3", "condition": "damaged",
                                              "decision": "write_off"}]}),
    )  # fmt: skip
    assert _on_hand(retailer, "SKU-3") == before  # written off: not sellable anywhere
    moves = [
        (m.kind.value, m.quantity, m.note)
        for m in commerce.movements(retailer.engine, "SKU-3", "WH-MAD")
    ]
    assert moves[-2:] == [("return", 1, None), ("adjustment", -1, "write-off (damaged)")]
    ret = commerce.refund_return(retailer.engine, rid)
    assert ret["refunds"][0]["method"] == "card_in_shop"  # back the way it was paid
    assert ret["refund_total"] == "10.00"
    assert commerce.check_ledger(retailer.engine) == []


def test_only_what_the_customer_has_and_has_not_returned(retailer: Platform) -> None:
    pending = _order(retailer, "W-R2", [("SKU-1", 1)], steps=("picking",))
    with pytest.raises(ConflictError) as not_yet:
        commerce.request_return(
            retailer.engine, UUID(pending["id"]),
            _ret({"method": "by_post", "lines": [{"sku": "SKU-1", "quantity": 1}]}),
        )  # fmt: skip
    assert not_yet.value.code == "not_returnable"
    order = _order(retailer, "W-R3", [("SKU-1", 2), ("SKU-3", 1)])
    oid = UUID(order["id"])
    by_post = {"method": "by_post", "lines": [{"sku": "SKU-1", "quantity": 1}]}
    first = commerce.request_return(retailer.engine, oid, _ret(by_post))
    second = commerce.request_return(retailer.engine, oid, _ret(by_post))
    with pytest.raises(ConflictError) as more:
        commerce.request_return(retailer.engine, oid, _ret(by_post))
    assert (more.value.code, more.value.details["returnable"]) == ("not_returnable", 0)
    with pytest.raises(ValidationError) as other:
        commerce.request_return(
            retailer.engine, oid,
            _ret({"method": "by_post", "lines": [{"sku": "SKU-4", "quantity": 1}]}),
        )  # fmt: skip
    assert other.value.code == "not_in_order"
    # a cancelled return frees its units again
    commerce.cancel_return(retailer.engine, UUID(second["id"]))
    third = commerce.request_return(retailer.engine, oid, _ret(by_post))
    assert third["status"] == "requested"
    # steps only in order
    rid = UUID(first["id"])
    with pytest.raises(ConflictError) as early:
        commerce.refund_return(retailer.engine, rid)
    assert early.value.code == "illegal_transition"
    commerce.receive_return(retailer.engine, rid)
    with pytest.raises(ConflictError):
        commerce.cancel_return(retailer.engine, rid)  # too late: it is here
    with pytest.raises(ValidationError):  # every returned SKU needs a decision
        commerce.inspect_return(
            retailer.engine, rid,
            commerce.check_inspection({"lines": [{"sku": "SKU-3", "condition": "as_new",
                                                  "decision": "restock"}]}),
        )  # fmt: skip
    # restocked elsewhere: a transfer follows the return; rejected: nothing moves
    before = _on_hand(retailer, "SKU-1")
    commerce.inspect_return(
        retailer.engine, rid,
        commerce.check_inspection({"lines": [{"sku": "SKU-1", "condition": "opened",
                                              "decision": "restock", "location_id": "ECOM-ZGZ"}]}),
    )  # fmt: skip
    after = _on_hand(retailer, "SKU-1")
    assert (after["WH-MAD"], after["ECOM-ZGZ"]) == (before["WH-MAD"], before["ECOM-ZGZ"] + 1)
    kinds = [m.kind.value for m in commerce.movements(retailer.engine, "SKU-1")][-3:]
    assert sorted(kinds) == ["return", "transfer_in", "transfer_out"]
    commerce.receive_return(retailer.engine, UUID(third["id"]))
    rejected = commerce.inspect_return(
        retailer.engine, UUID(third["id"]),
        commerce.check_inspection({"lines": [{"sku": "SKU-1", "condition": "wrong_item",
                                              "decision": "reject"}]}),
    )  # fmt: skip
    assert rejected["lines"][0]["refund_amount"] == "0.00"
    assert _on_hand(retailer, "SKU-1") == after
    assert commerce.refund_return(retailer.engine, UUID(third["id"]))["refunds"] == []
    assert commerce.check_ledger(retailer.engine) == []


def test_refunds_never_exceed_what_was_paid(retailer: Platform) -> None:
    body = order_body("W-R4", lines=[("SKU-1", 2)])
    body["lines"][0]["discount"] = "4.00"  # type: ignore[index]
    body["payments"] = [
        {"method": "online", "amount": "6.00"},
        {"method": "cash", "amount": "10.00"},
    ]
    oid, _, view = commerce.place_order(retailer.engine, commerce.check_order(body))
    assert view is not None
    for status in DELIVERED:
        commerce.advance_group(
            retailer.engine, oid, UUID(view["fulfilment_groups"][0]["id"]), status
        )
    rid = UUID(
        commerce.request_return(
            retailer.engine, oid,
            _ret({"method": "by_post", "lines": [{"sku": "SKU-1", "quantity": 2}]}),
        )["id"]
    )  # fmt: skip
    commerce.receive_return(retailer.engine, rid)
    commerce.inspect_return(
        retailer.engine, rid,
        commerce.check_inspection({"lines": [{"sku": "SKU-1", "condition": "as_new",
                                              "decision": "restock"}]}),
    )  # fmt: skip
    ret = commerce.refund_return(retailer.engine, rid)
    # 2 x 10.00 less the 4.00 discount; the online payment first, then the cash
    assert ret["refund_total"] == "16.00"
    assert [(r["method"], r["amount"]) for r in ret["refunds"]] == [
        ("online", "6.00"), ("cash", "10.00"),
    ]  # fmt: skip


def test_an_order_with_no_recorded_payment_needs_a_method(retailer: Platform) -> None:
    oid, _, view = commerce.place_order(
        retailer.engine, commerce.check_order(order_body("W-R5", lines=[("SKU-1", 1)]))
    )
    assert view is not None
    for status in DELIVERED:
        commerce.advance_group(
            retailer.engine, oid, UUID(view["fulfilment_groups"][0]["id"]), status
        )
    rid = UUID(
        commerce.request_return(
            retailer.engine, oid,
            _ret({"method": "in_store", "location_id": "SHOP-SEV",
                  "lines": [{"sku": "SKU-1", "quantity": 1}]}),
        )["id"]
    )  # fmt: skip
    commerce.receive_return(retailer.engine, rid)
    commerce.inspect_return(
        retailer.engine, rid,
        commerce.check_inspection({"lines": [{"sku": "SKU-1", "condition": "as_new",
                                              "decision": "restock"}]}),
    )  # fmt: skip
    with pytest.raises(ConflictError) as unpaid:
        commerce.refund_return(retailer.engine, rid)
    assert unpaid.value.code == "no_payment_to_refund"
    ret = commerce.refund_return(retailer.engine, rid, method="cash")
    assert [(r["method"], r["amount"], r["refund_of"]) for r in ret["refunds"]] == [
        ("cash", "10.00", None)
    ]


def test_an_exchange_is_a_return_and_a_new_order(retailer: Platform) -> None:
    order = _order(retailer, "W-R6", [("SKU-1", 1)])
    oid = UUID(order["id"])
    ret = commerce.request_return(
        retailer.engine, oid,
        _ret({"method": "in_store", "location_id": "SHOP-BCN", "reason": "wrong size",
              "lines": [{"sku": "SKU-1", "quantity": 1}],
              "exchange": {"lines": [{"sku": "SKU-3", "quantity": 1, "unit_price": "8.00"}]}}),
    )  # fmt: skip
    new_id = UUID(ret["exchange_order_id"])
    new = commerce.get_order(retailer.engine, new_id)
    assert new["external_id"] == f"exchange:{ret['id']}"
    assert new["customer"]["email"] == "ana.garcia@example.es"
    assert new["fulfilment"]["method"] == "click_and_collect"  # collected where it was returned
    assert [(p["method"], p["amount"]) for p in new["payments"]] == [("exchange", "8.00")]
    assert new["history"][-1]["kind"] == "exchange_of"
    assert commerce.get_order(retailer.engine, oid)["history"][-1]["kind"] == "exchange_placed"
    rid = UUID(ret["id"])
    commerce.receive_return(retailer.engine, rid)
    commerce.inspect_return(
        retailer.engine, rid,
        commerce.check_inspection({"lines": [{"sku": "SKU-1", "condition": "as_new",
                                              "decision": "restock"}]}),
    )  # fmt: skip
    ret = commerce.refund_return(retailer.engine, rid)
    assert ret["refund_total"] == "2.00"  # 10.00 returned, 8.00 spent on the replacement
    # an exchange whose return is withdrawn: the replacement order is cancelled too
    other = _order(retailer, "W-R7", [("SKU-1", 1)])
    ret2 = commerce.request_return(
        retailer.engine, UUID(other["id"]),
        _ret({"method": "in_store", "location_id": "SHOP-BCN",
              "lines": [{"sku": "SKU-1", "quantity": 1}],
              "exchange": {"lines": [{"sku": "SKU-3", "quantity": 1, "unit_price": "10.00"}]}}),
    )  # fmt: skip
    commerce.cancel_return(retailer.engine, UUID(ret2["id"]))
    replaced = commerce.get_order(retailer.engine, UUID(ret2["exchange_order_id"]))
    assert replaced["status"] == "cancelled"
    assert commerce.check_ledger(retailer.engine) == []


def test_an_exchange_out_of_stock_opens_no_return(retailer: Platform) -> None:
    order = _order(retailer, "W-R8", [("SKU-1", 1)])
    with pytest.raises(ConflictError) as short:
        commerce.request_return(
            retailer.engine, UUID(order["id"]),
            _ret({"method": "by_post", "lines": [{"sku": "SKU-1", "quantity": 1}],
                  "exchange": {"lines": [{"sku": "SKU-4", "quantity": 5, "unit_price": "1.00"}],
                               "fulfilment": {"method": "click_and_collect",
                                              "location_id": "SHOP-SEV"}}}),
        )  # fmt: skip
    assert short.value.code == "insufficient_stock"
    assert commerce.list_returns(retailer.engine, UUID(order["id"])) == []


def test_concurrent_returns_of_the_last_unit(retailer: Platform) -> None:
    order = _order(retailer, "W-R9", [("SKU-1", 1)])
    oid = UUID(order["id"])
    req = _ret({"method": "by_post", "lines": [{"sku": "SKU-1", "quantity": 1}]})
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def client() -> None:
        barrier.wait()
        try:
            commerce.request_return(retailer.engine, oid, req)
            outcomes.append("opened")
        except TrayectoError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["not_returnable"] * 5 + ["opened"]


def test_an_orders_view_reads_the_same_in_one_round_trip(retailer: Platform) -> None:
    """``get_order`` on PostgreSQL sends the view's seven queries in one round trip on a
    raw connection (no transaction, no SQLAlchemy types): it must answer exactly what the
    portable queries answer, for an order with every kind of row (lines, groups,
    allocations, a payment and a refund, history with details, a return), also when the
    database's time zone is not UTC."""
    import sqlalchemy as sa

    from trayecto.commerce._views import load_view

    if retailer.engine.dialect.name != "postgresql":
        pytest.skip("SQLite reads a view through the portable queries only")
    with retailer.engine.connect() as conn:
        name = conn.execute(sa.text("SELECT current_database()")).scalar()
        conn.exec_driver_sql(f"ALTER DATABASE \"{name}\" SET TimeZone = 'America/Mexico_City'")
        conn.commit()
    retailer.engine.dispose()  # new connections take the time zone
    order = _order(retailer, "W-V1", [("SKU-1", 2), ("SKU-3", 1)])
    oid = UUID(order["id"])
    rid = UUID(
        commerce.request_return(
            retailer.engine,
            oid,
            _ret({"method": "in_store", "location_id": "SHOP-BCN", "reason": "too small",
                  "lines": [{"sku": "SKU-1", "quantity": 1}]}),
        )["id"]
    )  # fmt: skip
    commerce.receive_return(retailer.engine, rid)
    commerce.inspect_return(
        retailer.engine,
        rid,
        commerce.check_inspection({"lines": [{"sku": "SKU-1", "condition": "as_new",
                                              "decision": "restock"}]}),
    )  # fmt: skip
    commerce.refund_return(retailer.engine, rid, reference="psp-refund-1")
    with retailer.engine.connect() as conn:
        zone = conn.execute(sa.text("SHOW TimeZone")).scalar()
        portable = load_view(conn, oid)
    assert zone == "America/Mexico_City"
    fast = commerce.get_order(retailer.engine, oid)
    assert fast == portable
    assert [p["kind"] for p in fast["payments"]] == ["payment", "refund"]
    assert len(fast["lines"]) == 2
    assert fast["returns"][0]["status"] == "refunded"
    assert fast["placed_at"].endswith("+00:00")
    assert all(h["at"].endswith("+00:00") for h in fast["history"])
    with pytest.raises(TrayectoError) as missing:
        commerce.get_order(retailer.engine, UUID(int=1))
    assert missing.value.code == "order_not_found"
