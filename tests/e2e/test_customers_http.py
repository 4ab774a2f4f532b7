"""The customer 360 over real HTTP: events sent through the tracking API are stitched in
real time and show up on the customer's profile and timeline."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.commerce.conftest import LOCATIONS, PRODUCTS, STOCK, order_body, write
from tests.helpers import Server, run_cli
from trayecto import access
from trayecto.bootstrap import Platform

pytestmark = pytest.mark.e2e


@pytest.fixture
def setup(platform: Platform) -> dict[str, str]:
    e = platform.engine
    return {
        "web": access.create_source(e, "Web", "web").secret,
        "shop": access.create_source(e, "TPV Serrano", "store", "MAD-SERRANO").secret,
        "wa": access.create_source(e, "WhatsApp", "whatsapp").secret,
        "agent": access.create_token(e, "agent", "agent").secret,
        "marketing": access.create_token(e, "mkt", "marketing").secret,
        "admin": access.create_token(e, "admin").secret,
    }


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def send(http: httpx.Client, key: str, *msgs: dict[str, Any]) -> None:
    r = http.post("/v1/batch", auth=(key, ""), content=orjson.dumps({"batch": list(msgs)}))
    assert r.status_code == 200, r.text


def get(http: httpx.Client, token: str, path: str, **params: Any) -> httpx.Response:
    return http.get(path, params=params, headers={"Authorization": f"Bearer {token}"})


def wait_for(fn, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_one_customer_across_channels(http: httpx.Client, setup: dict[str, str]) -> None:
    agent = setup["agent"]
    send(
        http,
        setup["web"],
        {"type": "page", "anonymousId": "a-1", "name": "Aceites", "timestamp": "2026-10-01T10:00:00Z"},
        {"type": "track", "anonymousId": "a-1", "event": "Product Viewed", "properties": {"sku": "AOVE-500"}, "timestamp": "2026-10-01T10:01:00Z"},
        {
            "type": "identify", "anonymousId": "a-1", "userId": "C42", "timestamp": "2026-10-01T10:02:00Z",
            "traits": {"firstName": "Lucía", "lastName": "García", "email": "lucia@example.es", "phone": "600 11 22 33"},
        },
    )  # fmt: skip
    send(
        http,
        setup["shop"],
        {
            "type": "identify", "userId": "2901", "timestamp": "2026-10-03T18:00:00Z",
            "traits": {"email": "LUCIA@example.es", "loyalty_card": "2901", "birthday": "1990-02-03"},
        },
        {"type": "track", "userId": "2901", "event": "Order Completed", "properties": {"total": "19.50"}, "timestamp": "2026-10-03T18:05:00Z"},
    )  # fmt: skip
    send(
        http,
        setup["wa"],
        {"type": "track", "userId": "+34600112233", "event": "Message Received", "properties": {"text": "¿Puedo devolverlo?"}, "timestamp": "2026-10-05T09:00:00Z"},
    )  # fmt: skip

    def found() -> list[dict[str, Any]]:
        r = get(http, agent, "/api/customers", q="0034600112233")
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        if data and data[0]["display_name"]:
            cid = data[0]["id"]
            timeline = get(http, agent, f"/api/customers/{cid}/timeline").json()["data"]
            return data if len(timeline) == 6 else []
        return []

    hits = wait_for(found)
    assert len(hits) == 1, "the events were not stitched into one customer in time"
    cid = hits[0]["id"]
    assert hits[0]["matched_on"] in ("phone", "whatsapp_id")

    p = get(http, agent, f"/api/customers/{cid}").json()
    assert p["display_name"] == "Lucía García"
    assert p["golden"]["email"]["value"] == "lucia@example.es"
    assert p["golden"]["birth_date"] == p["golden"]["birth_date"] | {
        "value": "1990-02-03",
        "channel": "store",
        "source": "TPV Serrano",
    }
    assert set(p["channels"]) == {"web", "store", "whatsapp"}
    assert p["counts"]["events"] == 6
    assert {i["type"] for i in p["identities"]} >= {
        "online_id",
        "pos_id",
        "loyalty_card",
        "email",
        "phone",
        "anonymous_id",
        "whatsapp_id",
    }
    assert "store" in p["identities_by_channel"]

    t = get(http, agent, f"/api/customers/{cid}/timeline", limit=4).json()
    titles = [i["title"] for i in t["data"]]
    assert titles == ["Message Received", "Order Completed", "identify", "identify"]
    assert t["data"][1]["location_id"] == "MAD-SERRANO"
    rest = get(
        http, agent, f"/api/customers/{cid}/timeline", limit=4, cursor=t["next_cursor"]
    ).json()
    assert [i["title"] for i in rest["data"]] == ["Product Viewed", "Aceites"]
    assert rest["next_cursor"] is None
    web_only = get(http, agent, f"/api/customers/{cid}/timeline", channel="web").json()["data"]
    assert {i["channel"] for i in web_only} == {"web"}
    assert len(web_only) == 3
    since = get(http, agent, f"/api/customers/{cid}/timeline", since="2026-10-03T00:00:00Z").json()[
        "data"
    ]
    assert len(since) == 3


def test_roles_and_errors(http: httpx.Client, setup: dict[str, str]) -> None:
    r = get(http, setup["marketing"], "/api/customers", q="x")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden_role")
    r = http.get("/api/customers", params={"q": "x"})
    assert r.status_code == 401
    r = get(http, setup["agent"], "/api/customers/00000000-0000-0000-0000-000000000000")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "customer_not_found")
    r = get(http, setup["agent"], "/api/customers/not-a-uuid")
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "customer_id"
    r = get(http, setup["agent"], "/api/customers", q="")
    assert r.status_code == 400
    r = http.post(
        "/api/customers/merges/00000000-0000-0000-0000-000000000000/undo",
        json={"reason": "wrong"},
        headers={"Authorization": f"Bearer {setup['agent']}"},
    )
    assert r.status_code == 403
    r = http.post(
        "/api/customers/merges/00000000-0000-0000-0000-000000000000/undo",
        json={"reason": "wrong"},
        headers={"Authorization": f"Bearer {setup['admin']}"},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (404, "merge_not_found")


def test_orders_land_on_the_customer_timeline(
    http: httpx.Client, setup: dict[str, str], server: Server, tmp_path: Path
) -> None:
    for kind, text in (("locations", LOCATIONS), ("products", PRODUCTS), ("stock", STOCK)):
        run_cli(server.env, "import", kind, str(write(tmp_path, f"{kind}.csv", text)))
    send(
        http,
        setup["web"],
        {
            "type": "identify",
            "userId": "C7",
            "traits": {"email": "ana.garcia@example.es", "firstName": "Ana"},
        },
    )
    admin = {"Authorization": f"Bearer {setup['admin']}"}
    r = http.post("/api/orders", json=order_body("W-7", lines=[("SKU-1", 1)]), headers=admin)
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]

    def timeline() -> list[dict[str, Any]]:
        hits = get(http, setup["agent"], "/api/customers", q="ana.garcia@example.es").json()["data"]
        if not hits:
            return []
        items = get(http, setup["agent"], f"/api/customers/{hits[0]['id']}/timeline").json()["data"]
        return items if any(i["kind"] == "order" for i in items) else []

    items = wait_for(timeline)
    orders = [i for i in items if i["kind"] == "order"]
    assert orders, "the order never reached the timeline"
    assert {i["order_id"] for i in orders} == {order_id}
    assert orders[0]["title"].startswith("Order W-7")
    assert any(i["kind"] == "event" and i["type"] == "identify" for i in items)
    cid = get(http, setup["agent"], "/api/customers", q="C7").json()["data"][0]["id"]
    only_orders = get(http, setup["agent"], f"/api/customers/{cid}/timeline", type="order").json()[
        "data"
    ]
    assert {i["kind"] for i in only_orders} == {"order"}


def test_consent_export_and_erase_over_http(http: httpx.Client, setup: dict[str, str]) -> None:
    send(
        http,
        setup["web"],
        {
            "type": "identify",
            "userId": "C-ERASE",
            "traits": {"email": "borrar@ejemplo.es", "firstName": "Olvido"},
        },
    )
    hits = wait_for(
        lambda: get(http, setup["agent"], "/api/customers", q="borrar@ejemplo.es").json()["data"]
    )
    cid = hits[0]["id"]
    agent = {"Authorization": f"Bearer {setup['agent']}"}
    admin = {"Authorization": f"Bearer {setup['admin']}"}
    r = http.post(
        f"/api/customers/{cid}/consents",
        json={"purpose": "marketing", "channel": "email", "granted": True},
        headers=agent,
    )
    assert r.status_code == 200, r.text
    assert r.json()["changed"] is True
    assert r.json()["current"][0]["origin"] == "api"
    r = http.post(
        f"/api/customers/{cid}/consents",
        json={"purpose": "tarot", "channel": "email", "granted": True},
        headers=agent,
    )
    assert (r.status_code, r.json()["error"]["field"]) == (400, "purpose")
    assert (
        get(http, setup["agent"], f"/api/customers/{cid}").json()["consents"][0]["purpose"]
        == "marketing"
    )

    assert http.get(f"/api/customers/{cid}/export", headers=agent).status_code == 403
    exported = http.get(f"/api/customers/{cid}/export", headers=admin).json()
    assert exported["golden"]["email"]["value"] == "borrar@ejemplo.es"

    r = http.post(f"/api/customers/{cid}/erase", json={"reason": "GDPR art. 17"}, headers=admin)
    assert r.status_code == 400  # no confirmation
    assert (
        http.post(
            f"/api/customers/{cid}/erase",
            json={"confirm": True, "reason": "GDPR art. 17"},
            headers=agent,
        ).status_code
        == 403
    )
    r = http.post(
        f"/api/customers/{cid}/erase",
        json={"confirm": True, "reason": "GDPR art. 17"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["counts"]["identities"] >= 2
    assert get(http, setup["agent"], f"/api/customers/{cid}").status_code == 404
    assert get(http, setup["agent"], "/api/customers", q="borrar@ejemplo.es").json()["data"] == []
