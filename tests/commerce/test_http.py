"""The HTTP contract of issue 5 over a real server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.commerce.conftest import LOCATIONS, PRODUCTS, STOCK, order_body, write
from tests.helpers import Server, last_line, run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture
def api(server: Server, tmp_path: Path) -> httpx.Client:
    for kind, text in (("locations", LOCATIONS), ("products", PRODUCTS), ("stock", STOCK)):
        run_cli(server.env, "import", kind, str(write(tmp_path, f"{kind}.csv", text)))
    token = last_line(run_cli(server.env, "tokens", "add", "ops").stdout)
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def test_order_contract(api: httpx.Client) -> None:
    body = order_body("W-100", lines=[("SKU-1", 2), ("SKU-3", 1)])
    r = api.post("/api/orders", json=body)
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "allocated"
    assert order["total"] == "30.00"
    assert order["locations"] == ["WH-MAD"]
    [group] = order["fulfilment_groups"]
    assert group["status"] == "allocated"
    assert group["promise"]["earliest_date"]
    assert sorted((x["sku"], x["quantity"]) for x in group["lines"]) == [("SKU-1", 2), ("SKU-3", 1)]

    again = api.post("/api/orders", json=body)
    assert again.status_code == 200
    assert again.json()["id"] == order["id"]

    got = api.get(f"/api/orders/{order['id']}").json()
    assert got == order
    assert [h["kind"] for h in got["history"]] == [
        "order_placed",
        "group_allocated",
        "order_status",
    ]
    assert got["sourcing"]["chosen"] == ["WH-MAD"]
    assert "reason" in got["sourcing"]

    inv = api.get("/api/inventory", params={"sku": "SKU-1"}).json()
    mad = next(x for x in inv["locations"] if x["location_id"] == "WH-MAD")
    assert (mad["on_hand"], mad["reserved"], mad["available"]) == (10, 2, 8)

    r = api.post("/api/orders", json=order_body("W-101", lines=[("SKU-4", 2)]))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "insufficient_stock"

    g = group["id"]
    assert (
        api.post(f"/api/orders/{order['id']}/groups/{g}/status", json={"status": "shipped"}).json()[
            "error"
        ]["code"]
        == "illegal_transition"
    )
    for status in ("picking", "packed", "shipped"):
        r = api.post(f"/api/orders/{order['id']}/groups/{g}/status", json={"status": status})
        assert r.status_code == 200, r.text
    assert r.json()["status"] == "shipped"


def test_click_and_collect_reserves_in_the_chosen_shop(api: httpx.Client) -> None:
    cc = {"method": "click_and_collect", "location_id": "SHOP-BCN"}
    order = api.post(
        "/api/orders", json=order_body("A-1", channel="app", lines=[("SKU-3", 2)], fulfilment=cc)
    ).json()
    [group] = order["fulfilment_groups"]
    assert (group["location_id"], group["pickup_location_id"], group["transfer"]) == (
        "SHOP-BCN",
        "SHOP-BCN",
        False,
    )
    assert group["promise"]["ready_at"]
    # SKU-2 is not in Barcelona: a transfer is planned and the promise says so
    order = api.post(
        "/api/orders", json=order_body("A-2", channel="app", lines=[("SKU-2", 1)], fulfilment=cc)
    ).json()
    [group] = order["fulfilment_groups"]
    assert group["pickup_location_id"] == "SHOP-BCN"
    assert group["transfer"] is True
    assert "transfer" in group["promise"]["explanation"]


def test_errors_name_the_field(api: httpx.Client) -> None:
    bad = order_body("E-1")
    bad["lines"] = [{"sku": "SKU-1", "quantity": 1, "unit_price": 9.99}]
    r = api.post("/api/orders", json=bad)
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "lines.0.unit_price"
    r = api.post("/api/orders", json=order_body("E-2", lines=[("NOPE", 1)]))
    assert (r.status_code, r.json()["error"]["code"]) == (400, "unknown_sku")
    r = api.post(
        "/api/orders",
        json=order_body("E-3", fulfilment={"method": "click_and_collect", "location_id": "WH-MAD"}),
    )
    assert r.json()["error"]["code"] == "location_cannot_serve"
    assert api.get("/api/orders/not-a-uuid").status_code == 400
    assert httpx.post(api.base_url.join("/api/orders"), json={}).status_code == 401
