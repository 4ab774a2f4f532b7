"""First end-to-end pass over the domain API (no HTTP)."""

from __future__ import annotations

from uuid import UUID

from tests.commerce.conftest import order_body
from trayecto import commerce
from trayecto.bootstrap import Platform


def test_place_and_ship(retailer: Platform) -> None:
    req = commerce.check_order(order_body(lines=[("SKU-1", 2)]))
    oid, created, view = commerce.place_order(retailer.engine, req)
    assert created
    assert view is not None
    assert view["locations"] == ["WH-MAD"]
    assert view["status"] == "allocated"
    assert view["customer"]["email"] == "ana.garcia@example.es"
    assert view["customer"]["phone"] == "+34600111222"
    assert commerce.get_order(retailer.engine, oid) == view
    levels = {s.location_id: s for s in commerce.stock_levels(retailer.engine, ["SKU-1"])}
    assert levels["WH-MAD"].reserved == 2
    gid = UUID(view["fulfilment_groups"][0]["id"])
    for status in ("picking", "packed", "shipped", "delivered"):
        view = commerce.advance_group(retailer.engine, oid, gid, status)
    assert view["status"] == "delivered"
    levels = {s.location_id: s for s in commerce.stock_levels(retailer.engine, ["SKU-1"])}
    assert (levels["WH-MAD"].on_hand, levels["WH-MAD"].reserved) == (8, 0)
    assert commerce.check_ledger(retailer.engine) == []
    again = commerce.place_order(retailer.engine, req)
    assert again[0] == oid
    assert not again[1]


def test_anonymising_orders_drops_what_would_place_the_address(retailer: Platform) -> None:
    body = order_body("ANON-1", lines=[("SKU-1", 1)])
    oid, _, view = commerce.place_order(retailer.engine, commerce.check_order(body))
    assert view is not None
    assert view["sourcing"]["destination"] is not None
    assert commerce.anonymise_orders(retailer.engine, emails=["ana.garcia@example.es"]) == 1
    after = commerce.get_order(retailer.engine, oid)
    assert after["customer"]["email"] is None
    assert "address" not in after["fulfilment"]
    assert after["sourcing"]["chosen"] == view["sourcing"]["chosen"]
    assert "destination" not in after["sourcing"]
    assert "candidates" not in after["sourcing"]
    assert commerce.check_ledger(retailer.engine) == []
