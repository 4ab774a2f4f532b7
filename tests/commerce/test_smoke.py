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
