"""Re-sourcing when a location rejects a group or is short at picking: released there,
stock corrected, sourced again elsewhere, explained. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from tests.commerce.conftest import order_body
from trayecto import commerce
from trayecto.bootstrap import Platform
from trayecto.kernel import ConflictError, ValidationError


def _place(p: Platform, external_id: str, lines: list[tuple[str, int]], **kw: Any) -> Any:
    oid, _, view = commerce.place_order(
        p.engine, commerce.check_order(order_body(external_id, lines=lines, **kw))
    )
    assert view is not None
    return oid, view


def _levels(p: Platform, sku: str) -> dict[str, tuple[int, int]]:
    return {
        lv.location_id: (lv.on_hand, lv.reserved) for lv in commerce.stock_levels(p.engine, [sku])
    }


def _live(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [g for g in view["fulfilment_groups"] if g["status"] not in ("rejected", "cancelled")]


def test_a_rejected_group_is_sourced_again_and_explained(retailer: Platform) -> None:
    oid, view = _place(retailer, "RS-1", [("SKU-1", 2)])
    [group] = view["fulfilment_groups"]
    assert group["location_id"] == "WH-MAD"
    view = commerce.reject_group(retailer.engine, oid, UUID(group["id"]), reason="no staff today")
    old = next(g for g in view["fulfilment_groups"] if g["id"] == group["id"])
    assert old["status"] == "rejected"
    [new] = _live(view)
    assert new["location_id"] != "WH-MAD"
    assert new["lines"] == [{"sku": "SKU-1", "quantity": 2}]
    assert new["promise"]["earliest_date"]
    assert view["status"] == "allocated"
    levels = _levels(retailer, "SKU-1")
    assert levels["WH-MAD"] == (10, 0)  # released there
    assert levels[new["location_id"]][1] == 2  # held at the new source
    assert [(h["kind"], h["to"]) for h in view["history"]][-5:] == [
        ("group_status", "rejected"),
        ("order_status", "rejected"),
        ("group_allocated", "allocated"),
        ("order_resourced", None),
        ("order_status", "allocated"),
    ]
    rejected = next(h for h in view["history"] if h["to"] == "rejected")
    assert rejected["detail"]["reason"] == "no staff today"
    resourced = next(h for h in view["history"] if h["kind"] == "order_resourced")
    explanation = resourced["detail"]["sourcing"]
    mad = next(c for c in explanation["candidates"] if c["location_id"] == "WH-MAD")
    assert mad["excluded_because"] == "rejected a group of this order: no staff today"
    assert explanation["reason"].startswith("re-sourced: ")
    assert view["sourcing"]["resourced"][0]["group_id"] == group["id"]
    assert commerce.check_ledger(retailer.engine) == []
    # asked again (after an interruption, say): nothing more happens
    again = commerce.resource_group(retailer.engine, oid, UUID(group["id"]))
    assert len(again["fulfilment_groups"]) == 2


def test_short_at_picking_corrects_the_stock_there(retailer: Platform) -> None:
    oid, view = _place(retailer, "RS-2", [("SKU-1", 2), ("SKU-3", 1)])
    [group] = view["fulfilment_groups"]
    assert group["location_id"] == "WH-MAD"
    view = commerce.reject_group(
        retailer.engine, oid, UUID(group["id"]), reason="short at picking", short={"SKU-3": 1}
    )
    assert _levels(retailer, "SKU-3")["WH-MAD"] == (0, 0)  # it was never there
    moves = commerce.movements(retailer.engine, "SKU-3", "WH-MAD")
    assert (moves[-1].kind.value, moves[-1].quantity, moves[-1].note) == (
        "adjustment", -1, "short at picking",
    )  # fmt: skip
    shipped = sorted((ln["sku"], ln["quantity"]) for g in _live(view) for ln in g["lines"])
    assert shipped == [("SKU-1", 2), ("SKU-3", 1)]
    assert all(g["location_id"] != "WH-MAD" for g in _live(view))
    assert commerce.check_ledger(retailer.engine) == []


def test_when_no_one_else_can_serve_it_the_order_says_so(retailer: Platform) -> None:
    cc = {"method": "click_and_collect", "location_id": "SHOP-SEV"}
    oid, view = _place(retailer, "RS-3", [("SKU-4", 1)], fulfilment=cc)  # only Sevilla has it
    [group] = view["fulfilment_groups"]
    assert group["location_id"] == "SHOP-SEV"
    view = commerce.reject_group(retailer.engine, oid, UUID(group["id"]), reason="damaged box")
    assert view["status"] == "rejected"
    failed = view["history"][-1]
    assert (failed["kind"], failed["detail"]["code"]) == ("resourcing_failed", "insufficient_stock")
    assert failed["detail"]["excluded"] == ["SHOP-SEV"]
    assert _levels(retailer, "SKU-4")["SHOP-SEV"] == (1, 0)


def test_a_pickup_shop_that_rejects_gets_a_transfer(retailer: Platform) -> None:
    cc = {"method": "click_and_collect", "location_id": "SHOP-BCN"}
    oid, view = _place(retailer, "RS-4", [("SKU-1", 2)], channel="app", fulfilment=cc)
    [group] = view["fulfilment_groups"]
    assert (group["location_id"], group["transfer"]) == ("SHOP-BCN", False)
    view = commerce.reject_group(retailer.engine, oid, UUID(group["id"]), reason="shelf empty")
    [new] = _live(view)
    assert (new["pickup_location_id"], new["transfer"]) == ("SHOP-BCN", True)
    assert new["location_id"] != "SHOP-BCN"
    assert "transfer" in new["promise"]["explanation"]


def test_rejections_follow_the_state_machine(retailer: Platform) -> None:
    oid, view = _place(retailer, "RS-5", [("SKU-1", 1)])
    gid = UUID(view["fulfilment_groups"][0]["id"])
    with pytest.raises(ValidationError):
        commerce.advance_group(retailer.engine, oid, gid, "rejected")  # not without re-sourcing
    with pytest.raises(ValidationError):
        commerce.reject_group(retailer.engine, oid, gid, reason="  ")
    with pytest.raises(ValidationError):
        commerce.reject_group(retailer.engine, oid, gid, reason="x", short={"SKU-3": 1})
    commerce.advance_group(retailer.engine, oid, gid, "picking")
    commerce.advance_group(retailer.engine, oid, gid, "packed")
    with pytest.raises(ConflictError) as late:
        commerce.reject_group(retailer.engine, oid, gid, reason="too late")
    assert late.value.code == "illegal_transition"
    with pytest.raises(ConflictError):
        commerce.resource_group(retailer.engine, oid, gid)  # not rejected
    # the order keeps going; a second rejection by the next source excludes both
    oid2, view2 = _place(retailer, "RS-6", [("SKU-1", 1)])
    first = view2["fulfilment_groups"][0]
    view2 = commerce.reject_group(retailer.engine, oid2, UUID(first["id"]), reason="one")
    [second] = _live(view2)
    view2 = commerce.reject_group(retailer.engine, oid2, UUID(second["id"]), reason="two")
    [third] = _live(view2)
    assert third["location_id"] not in (first["location_id"], second["location_id"])
    assert commerce.check_ledger(retailer.engine) == []
