"""The console's commerce pages through the app: the orders list with its filters, search
and pages; an order with its shipments, money, history, returns and sourcing explanation;
stock by location; the orders panel of the customer 360; who may open them; and errors
that say what to do next. Orders are placed through ``trayecto.commerce``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi import FastAPI

from tests.commerce.conftest import PRODUCTS, STOCK, order_body, write
from tests.helpers import csrf_of
from tests.integration.console_helpers import call, signed_in
from trayecto import access, collect, commerce, identity
from trayecto.access import _users
from trayecto.bootstrap import Platform
from trayecto.db import write_transaction
from trayecto.kernel import utcnow
from trayecto.web import create_app
from trayecto.web.console import _order_pages

TIMES = "\N{MULTIPLICATION SIGN}"
#: tests/commerce's retailer, with the cities of its locations.
LOCATIONS = """id,name,type,latitude,longitude,capabilities,opening_hours,cutoff,slots,city
WH-MAD,Almacén central Madrid,central_warehouse,40.42,-3.70,ship|returns,,18:00,,Getafe
ECOM-ZGZ,Almacén e-commerce Zaragoza,ecommerce_warehouse,41.65,-0.89,ship,,17:00,09:00-14:00|16:00-21:00,Zaragoza
SHOP-BCN,Tienda Barcelona Gràcia,shop,41.40,2.16,ship|click_and_collect|ship_to_store|returns,mon-sat 10:00-21:00,,,Barcelona
SHOP-SEV,Tienda Sevilla Centro,shop,37.39,-5.99,click_and_collect|ship_to_store|returns,mon-sat 10:00-21:00,,,Sevilla
PP-VAL,Punto de recogida Valencia,pickup_point,39.47,-0.38,,,,,Valencia
"""


@dataclass
class Store:
    platform: Platform
    customer_id: UUID  # Lucía, with two orders
    split: dict[str, Any]  # W-1: two shipments, one of them picking, paid online
    collect: dict[str, Any]  # C-1: click & collect in Sevilla with a transfer from Madrid
    returned: dict[str, Any]  # M-1: someone else's, delivered, returned and refunded


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_users, "SCRYPT_N", 2**10)


@pytest.fixture
def app(platform: Platform) -> FastAPI:
    return create_app(platform)


def place(platform: Platform, body: dict[str, Any]) -> dict[str, Any]:
    order_id, created, _ = commerce.place_order(platform.engine, commerce.check_order(body))
    assert created
    return commerce.get_order(platform.engine, order_id)


def identify(platform: Platform, traits: dict[str, Any]) -> UUID:
    name = f"Web {traits['email']}"
    src = access.create_source(platform.engine, name, "web").record
    origin = collect.Origin(src.id, src.channel.value, src.location_id)
    event = collect.check_message(
        {
            "type": "identify",
            "userId": "C42",
            "traits": traits,
            "timestamp": "2026-10-01T10:00:00Z",
        },
        origin=origin,
        received_at=utcnow(),
        max_bytes=32768,
    )
    with write_transaction(platform.engine) as conn:
        collect.append_events(conn, [event])
    platform.sync_identity()
    (hit,) = identity.search_customers(platform.engine, traits["email"], "ES")
    return hit.id


@pytest.fixture
def store(platform: Platform, tmp_path: Path) -> Store:
    e = platform.engine
    for kind, text in (("locations", LOCATIONS), ("products", PRODUCTS), ("stock", STOCK)):
        report = commerce.import_catalogue(e, kind, write(tmp_path, f"{kind}.csv", text))
        assert report.rejected == 0
    customer_id = identify(
        platform, {"firstName": "Lucía", "lastName": "García", "email": "lucia@example.es"}
    )
    lucia = {"email": "lucia@example.es", "phone": "600 11 22 33"}

    body = order_body("W-1", lines=[("SKU-1", 2), ("SKU-2", 1), ("SKU-3", 2)])
    body |= {"customer": lucia, "payments": [{"method": "online", "amount": "50.00"}]}
    split = place(platform, body)
    zgz = next(g for g in split["fulfilment_groups"] if g["location_id"] == "ECOM-ZGZ")
    commerce.advance_group(e, UUID(split["id"]), UUID(zgz["id"]), "picking")

    body = order_body(
        "C-1",
        channel="app",
        lines=[("SKU-1", 1)],
        fulfilment={"method": "click_and_collect", "location_id": "SHOP-SEV"},
    )
    body["customer"] = lucia
    pickup = place(platform, body)

    body = order_body("M-1", channel="marketplace", lines=[("SKU-3", 1)])
    body |= {
        "customer": {"email": "pedro@example.es"},
        "payments": [{"method": "online", "amount": "10.00", "reference": "mkp-77"}],
    }
    returned = place(platform, body)
    oid, gid = UUID(returned["id"]), UUID(returned["fulfilment_groups"][0]["id"])
    for status in ("picking", "packed", "shipped", "delivered"):
        commerce.advance_group(e, oid, gid, status)
    rma = commerce.request_return(
        e,
        oid,
        commerce.check_return(
            {"method": "by_post", "lines": [{"sku": "SKU-3", "quantity": 1}], "reason": "small"}
        ),
    )
    rid = UUID(rma["id"])
    commerce.receive_return(e, rid)
    inspection = {"lines": [{"sku": "SKU-3", "condition": "as_new", "decision": "restock"}]}
    commerce.inspect_return(e, rid, commerce.check_inspection(inspection))
    commerce.refund_return(e, rid)
    return Store(
        platform,
        customer_id,
        commerce.get_order(e, UUID(split["id"])),
        commerce.get_order(e, UUID(pickup["id"])),
        commerce.get_order(e, oid),
    )


def section(html: str, ident: str) -> str:
    start = html.index(f'id="{ident}"')
    return html[start : html.index("</section>", start)]


def order_links(html: str) -> list[str]:
    return re.findall(r'<a class="order-row" href="/console/orders/([0-9a-f-]+)"', html)


def test_the_list_shows_every_order_newest_first_with_status_and_promise(
    store: Store, app: FastAPI
) -> None:
    agent = signed_in(store.platform, "agent")
    r = call(app, "GET", "/console/orders", headers=agent)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    html = r.text
    assert '<a href="/console/orders" aria-current="page">' in html
    assert order_links(html) == [store.returned["id"], store.collect["id"], store.split["id"]]
    assert "Pedido W-1" in html
    assert "parcialmente en preparación" in html  # one shipment picking, one allocated
    assert "Listo para recoger en Tienda Sevilla Centro desde" in html
    assert "Llega a partir del" in html
    assert '<span class="tag tag-ok">entregado</span>' in html
    assert "50,00\xa0€" in html
    assert "lucia@example.es" in html

    en = call(app, "GET", "/console/orders", headers=signed_in(store.platform, "agent", "en"))
    assert "Order W-1" in en.text
    assert "partly picking" in en.text
    assert "Ready for pickup at Tienda Sevilla Centro from" in en.text


def test_filters_search_and_pages(
    store: Store, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = signed_in(store.platform, "store_staff")

    def shown(query: str) -> list[str]:
        r = call(app, "GET", "/console/orders" + query, headers=agent)
        assert r.status_code == 200, r.text
        return order_links(r.text)

    ids = {k: getattr(store, k)["id"] for k in ("split", "collect", "returned")}
    assert shown("?channel=marketplace") == [ids["returned"]]
    assert shown("?status=delivered") == [ids["returned"]]
    assert shown("?status=completed") == []
    assert shown("?status=partially") == [ids["split"]]
    assert shown("?status=allocated") == [ids["collect"]]
    assert shown("?q=W-1") == [ids["split"]]
    assert shown(f"?q={ids['collect']}") == [ids["collect"]]
    assert shown("?q=+LUCIA@example.es+") == [ids["collect"], ids["split"]]
    today = utcnow().date()
    assert len(shown(f"?since={today - timedelta(days=1)}&until={today + timedelta(days=1)}")) == 3
    assert shown(f"?since={today + timedelta(days=2)}") == []
    # Unknown filter values are ignored rather than hiding everything.
    assert len(shown("?channel=fax&status=lost")) == 3

    r = call(app, "GET", "/console/orders?q=W-404", headers=agent)
    assert "Ningún pedido coincide con estos filtros" in r.text
    assert '<a class="btn" href="/console/orders">Quitar los filtros</a>' in r.text
    r = call(app, "GET", "/console/orders?since=22/11/2026", headers=agent)
    assert r.status_code == 400
    assert "2026-11-22" in r.text
    r = call(
        app,
        "GET",
        f"/console/orders?since={today}&until={today - timedelta(days=3)}",
        headers=agent,
    )
    assert r.status_code == 400
    assert "intercámbialas" in r.text

    monkeypatch.setattr(_order_pages, "ORDERS_PAGE", 2)
    first = call(app, "GET", "/console/orders?channel=", headers=agent).text
    assert order_links(first) == [ids["returned"], ids["collect"]]
    more = re.search(r'<p class="pager"><a class="btn" href="([^"]+)"', first)
    assert more is not None
    second = call(app, "GET", more.group(1).replace("&amp;", "&"), headers=agent)
    assert order_links(second.text) == [ids["split"]]
    assert 'class="pager"' not in second.text
    assert "Volver a lo más reciente" in second.text
    r = call(app, "GET", "/console/orders?after=nonsense", headers=agent)
    assert r.status_code == 400
    assert "Empieza de nuevo desde los pedidos más recientes" in r.text


def test_the_order_page_explains_shipments_money_history_and_sourcing(
    store: Store, app: FastAPI
) -> None:
    agent = signed_in(store.platform, "agent")
    r = call(app, "GET", f"/console/orders/{store.split['id']}", headers=agent)
    assert r.status_code == 200
    html = r.text
    shipments = section(html, "shipments")
    assert shipments.count('class="shipment"') == 2
    assert "Almacén e-commerce Zaragoza" in shipments
    assert "en preparación" in shipments
    assert "Franjas de entrega" in shipments
    assert "09:00-14:00" in shipments
    lines = section(html, "lines")
    assert 'href="/console/stock?sku=SKU-1"' in lines
    assert "50,00\xa0€" in lines
    payments = section(html, "payments")
    assert "Pago online" in payments
    assert "Sin devoluciones." in section(html, "returns")
    history = section(html, "history")
    assert "Pedido realizado" in history
    assert "asignado → en preparación" in history

    sourcing = section(html, "sourcing")
    assert "2 envíos: Almacén e-commerce Zaragoza, Tienda Barcelona Gràcia." in sourcing
    # Every candidate, with its verdict and the reason in words.
    assert sourcing.count('class="cand cand-chosen"') == 2
    assert sourcing.count('class="cand cand-costlier"') == 1  # Madrid: part of it, costlier
    assert sourcing.count('class="cand cand-excluded"') == 1  # Sevilla cannot ship
    assert "No puede enviar paquetes" in sourcing
    assert "Solo tenía parte del pedido" in sourcing
    assert f"SKU-1 {TIMES} 2, SKU-2 {TIMES} 1" in sourcing
    # The cost components add up to the engine's cost.
    cost = store.split["sourcing"]["cost"]
    assert f"{cost:.2f}".replace(".", ",") in sourcing
    assert "De qué se compone el coste" in sourcing
    assert "Penalización por dividir, envíos de más: 1" in sourcing
    assert "distancia, 272,5 km" in sourcing

    # Click & collect: the transfer and the pickup promise.
    html = call(app, "GET", f"/console/orders/{store.collect['id']}", headers=agent).text
    sourcing = section(html, "sourcing")
    assert (
        f"Traspaso previsto: SKU-1 {TIMES} 1 de Almacén central Madrid a Tienda Sevilla Centro."
        in sourcing
    )
    assert "No tenía disponible ninguno de los productos del pedido." in sourcing
    assert "traspaso previsto" in section(html, "shipments")

    # Returned and refunded.
    html = call(app, "GET", f"/console/orders/{store.returned['id']}", headers=agent).text
    assert "reembolsada" in section(html, "returns")
    payments = section(html, "payments")
    assert "reembolso" in payments
    assert "mkp-77" in payments
    history = section(html, "history")
    assert "Devolución solicitada</strong>: solicitada" in history
    assert "Reembolso registrado</strong>: revisada → reembolsada" in history

    en = call(
        app,
        "GET",
        f"/console/orders/{store.split['id']}",
        headers=signed_in(store.platform, "agent", "en"),
    ).text
    assert "Why these locations" in en
    assert "It cannot send parcels (no shipping)." in en


def test_the_customer_360_lists_the_customers_orders(
    store: Store, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    clerk = signed_in(store.platform, "store_staff")
    html = call(app, "GET", f"/console/customers/{store.customer_id}", headers=clerk).text
    panel = section(html, "orders")
    assert order_links(panel) == [store.collect["id"], store.split["id"]]
    assert "Listo para recoger en Tienda Sevilla Centro" in panel
    assert "Pedido M-1" not in panel  # someone else's
    # The timeline names partly advanced orders in words too.
    assert '<span class="tag">parcialmente en preparación</span>' in section(html, "timeline")
    # More than the panel holds: the newest, and a link to the rest in the orders list.
    monkeypatch.setattr(_order_pages, "PANEL_ORDERS", 1)
    html = call(app, "GET", f"/console/customers/{store.customer_id}", headers=clerk).text
    panel = section(html, "orders")
    assert order_links(panel) == [store.collect["id"]]
    assert 'href="/console/orders?q=lucia%40example.es">Todos los pedidos con lucia@' in panel
    # A customer with no orders: says so and where to look instead.
    other = identify(store.platform, {"firstName": "Marta", "email": "marta@example.es"})
    html = call(app, "GET", f"/console/customers/{other}", headers=clerk).text
    assert "Ningún pedido de este cliente" in section(html, "orders")


def test_stock_by_location(store: Store, app: FastAPI) -> None:
    clerk = signed_in(store.platform, "store_staff")
    r = call(app, "GET", "/console/stock?sku=SKU-1", headers=clerk)
    assert r.status_code == 200
    html = r.text
    assert "Zapatillas Vela 3" in html
    rows = re.findall(
        r'<tr(?: class="stock-none")?>\s*<th scope="row"><strong>([^<]+)</strong>', html
    )
    # Most available first; SKU-1 is reserved by W-1 in Zaragoza and C-1 in Madrid.
    assert rows == [
        "Almacén central Madrid",  # 10 - 1 for C-1
        "Almacén e-commerce Zaragoza",  # 5 - 2 for W-1: as many as Barcelona, listed by id
        "Tienda Barcelona Gràcia",
    ]
    levels = {lv.location_id: lv for lv in commerce.stock_levels(store.platform.engine, ["SKU-1"])}
    assert levels["ECOM-ZGZ"].reserved == 2
    zgz = html[
        html.index("Almacén e-commerce Zaragoza") : html.index(
            "</tr>", html.index("Almacén e-commerce Zaragoza")
        )
    ]
    assert re.findall(r'data-label="[^"]+">(?:<strong>)?(\d+)', zgz) == ["5", "2", "0", "3"]
    assert "Almacén de e-commerce · Zaragoza" in zgz

    # By name, then the product picked from the matches.
    r = call(app, "GET", "/console/stock?sku=mochila", headers=clerk)
    assert r.status_code == 200
    assert 'href="/console/stock?sku=SKU-3"' in r.text
    r = call(app, "GET", "/console/stock?sku=sku-2", headers=clerk)
    assert (r.status_code, r.headers["location"]) == (303, "/console/stock?sku=SKU-2")
    r = call(app, "GET", "/console/stock?sku=NOPE-9", headers=clerk)
    assert r.status_code == 404
    assert "Ningún producto tiene el SKU o el nombre «NOPE-9»" in r.text
    assert 'name="sku"' in r.text  # the form to try again
    empty = call(app, "GET", "/console/stock", headers=clerk)
    assert empty.status_code == 200
    assert "autofocus" in empty.text


def test_unknown_orders_say_where_to_look(store: Store, app: FastAPI) -> None:
    agent = signed_in(store.platform, "agent")
    for ident in ("01a203c7-6dae-716e-abf1-03861723fcee", "W-1"):
        r = call(app, "GET", f"/console/orders/{ident}", headers=agent)
        assert r.status_code == 404
        assert "No hay ningún pedido con este id" in r.text
        assert '<a class="btn" href="/console/orders">Volver a los pedidos</a>' in r.text


def test_who_sees_orders_and_stock(store: Store, app: FastAPI) -> None:
    pages = [
        "/console/orders",
        f"/console/orders/{store.split['id']}",
        "/console/stock?sku=SKU-1",
    ]
    for path in pages:
        r = call(app, "GET", path)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/console/login?next=")
    marketing = signed_in(store.platform, "marketing")
    for path in pages:
        r = call(app, "GET", path, headers=marketing)
        assert r.status_code == 403, path
        assert "Tu rol (Marketing) no da acceso" in r.text
        assert "W-1" not in r.text
        assert "Zapatillas" not in r.text
    for role in ("agent", "store_staff", "admin"):
        cookie = signed_in(store.platform, role)
        home = call(app, "GET", "/console", headers=cookie).text
        assert 'href="/console/orders"' in home
        assert 'href="/console/stock"' in home
        for path in pages:
            assert call(app, "GET", path, headers=cookie).status_code == 200, (role, path)


# --- acting on an order (shop staff, admins) ----------------------------------------------


def shipment(html: str, n: int) -> str:
    start = html.index(f'id="shipment-{n}"')
    end = html.find('<li class="shipment"', start + 1)
    return html[start : end if end > 0 else html.index("</ol>", start)]


def group_number(order: dict[str, Any], location_id: str) -> tuple[int, str]:
    for n, g in enumerate(order["fulfilment_groups"], start=1):
        if g["location_id"] == location_id:
            return n, g["id"]
    raise AssertionError(f"no shipment from {location_id}")


def test_shop_staff_moves_a_shipment_on_and_the_page_says_so(store: Store, app: FastAPI) -> None:
    staff = signed_in(store.platform, "store_staff")
    oid = store.split["id"]
    page = call(app, "GET", f"/console/orders/{oid}", headers=staff).text
    n, gid = group_number(store.split, "ECOM-ZGZ")  # picking
    card = shipment(page, n)
    assert f'action="/console/orders/{oid}/groups/{gid}"' in card
    assert 'value="packed">Empaquetado</button>' in card
    assert 'value="shipped"' not in card  # not before it is packed
    assert 'value="reject"' in card  # still picking: the location may reject it
    other = shipment(page, 3 - n)  # the other shipment, allocated
    assert 'value="picking">Empezar a preparar</button>' in other
    token = csrf_of(page)

    r = call(
        app,
        "POST",
        f"/console/orders/{oid}/groups/{gid}",
        data={"csrf": token, "action": "packed"},
        headers=staff,
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/orders/{oid}?done=moved&group={gid}#shipment-{n}"
    now = commerce.get_order(store.platform.engine, UUID(oid))
    assert next(g for g in now["fulfilment_groups"] if g["id"] == gid)["status"] == "packed"
    moved = [e for e in now["history"] if e["to"] == "packed"]
    assert moved
    assert moved[-1]["detail"]["note"] == "console:store_staff.es@example.es"
    shown = call(app, "GET", r.headers["location"].split("#")[0], headers=staff).text
    flash = shown[shown.index('id="flash"') : shown.index("</div>", shown.index('id="flash"'))]
    assert f"El envío {n} está ahora «empaquetado»." in flash
    assert 'value="shipped">Enviado</button>' in shipment(shown, n)

    # The same button sent again (a second tab, a double click): refused, nothing moves.
    r = call(
        app,
        "POST",
        f"/console/orders/{oid}/groups/{gid}",
        data={"csrf": token, "action": "packed"},
        headers=staff,
    )
    assert r.status_code == 409
    assert f"El envío {n} está ahora «empaquetado», así que no se puede marcar" in r.text
    after = commerce.get_order(store.platform.engine, UUID(oid))
    assert len(after["history"]) == len(now["history"])


def test_a_location_rejects_a_shipment_and_it_is_sourced_again(store: Store, app: FastAPI) -> None:
    """C-1 is collected in Sevilla, picked in Madrid: Madrid rejects it, Zaragoza or
    Barcelona (which hold SKU-1) prepare it instead."""
    staff = signed_in(store.platform, "store_staff", "en")
    oid = store.collect["id"]
    (old,) = store.collect["fulfilment_groups"]
    assert old["location_id"] == "WH-MAD"
    token = csrf_of(call(app, "GET", f"/console/orders/{oid}", headers=staff).text)
    url = f"/console/orders/{oid}/groups/{old['id']}"
    r = call(
        app, "POST", url, data={"csrf": token, "action": "reject", "reason": "  "}, headers=staff
    )
    assert r.status_code == 400
    assert "Say why this location cannot prepare the shipment" in r.text
    assert (
        commerce.get_order(store.platform.engine, UUID(oid))["history"] == store.collect["history"]
    )
    data = {"csrf": token, "action": "reject", "reason": "2 units damaged"}
    r = call(app, "POST", url, data=data, headers=staff)
    assert r.status_code == 303, r.text
    now = commerce.get_order(store.platform.engine, UUID(oid))
    by_id = {g["id"]: g for g in now["fulfilment_groups"]}
    assert by_id[old["id"]]["status"] == "rejected"
    (new,) = [g for g in now["fulfilment_groups"] if g["status"] == "allocated"]
    assert new["location_id"] in ("ECOM-ZGZ", "SHOP-BCN")
    assert new["lines"] == [{"sku": "SKU-1", "quantity": 1}]
    assert commerce.check_ledger(store.platform.engine) == []
    shown = call(app, "GET", r.headers["location"].split("#")[0], headers=staff).text
    assert "Shipment 1 was rejected at Almacén central Madrid and sourced again" in shown
    assert "2 units damaged" in shown  # the reason is in the history


def test_a_rejected_shipment_no_one_else_can_prepare_says_what_to_do(
    store: Store, app: FastAPI
) -> None:
    """Only Zaragoza ships SKU-2 (Sevilla holds some but does not ship)."""
    staff = signed_in(store.platform, "store_staff")
    oid = store.split["id"]
    n, gid = group_number(store.split, "ECOM-ZGZ")
    token = csrf_of(call(app, "GET", f"/console/orders/{oid}", headers=staff).text)
    data = {"csrf": token, "action": "reject", "reason": "inventario a cero"}
    r = call(app, "POST", f"/console/orders/{oid}/groups/{gid}", data=data, headers=staff)
    assert r.status_code == 303
    assert "done=unsourced" in r.headers["location"]
    now = commerce.get_order(store.platform.engine, UUID(oid))
    assert next(g for g in now["fulfilment_groups"] if g["id"] == gid)["status"] == "rejected"
    assert now["history"][-1]["kind"] == "resourcing_failed"
    shown = call(app, "GET", r.headers["location"].split("#")[0], headers=staff).text
    flash = shown[shown.index('id="flash"') : shown.index("</div>", shown.index('id="flash"'))]
    assert "flash-refused" in flash
    assert f"El envío {n} se rechazó en Almacén e-commerce Zaragoza, pero ningún otro" in flash


def test_cancelling_frees_the_units_and_a_second_cancel_is_refused(
    store: Store, app: FastAPI
) -> None:
    admin = signed_in(store.platform, "admin")
    oid = store.collect["id"]
    engine = store.platform.engine
    reserved = sum(lv.reserved for lv in commerce.stock_levels(engine, ["SKU-1"]))
    page = call(app, "GET", f"/console/orders/{oid}", headers=admin).text
    assert f'action="/console/orders/{oid}/cancel"' in section(page, "cancel")
    token = csrf_of(page)
    r = call(app, "POST", f"/console/orders/{oid}/cancel", data={"csrf": token}, headers=admin)
    assert r.status_code == 303
    assert commerce.get_order(engine, UUID(oid))["status"] == "cancelled"
    assert sum(lv.reserved for lv in commerce.stock_levels(engine, ["SKU-1"])) == reserved - 1
    shown = call(app, "GET", r.headers["location"], headers=admin).text
    assert "El pedido está ahora «cancelado»." in shown
    assert 'id="cancel"' not in shown  # nothing left to cancel
    r = call(app, "POST", f"/console/orders/{oid}/cancel", data={"csrf": token}, headers=admin)
    assert r.status_code == 409
    assert "Ya no se puede cancelar nada de este pedido" in r.text


def test_agents_see_orders_but_may_not_change_them_and_forms_need_their_token(
    store: Store, app: FastAPI
) -> None:
    oid = store.split["id"]
    _n, gid = group_number(store.split, "ECOM-ZGZ")
    agent = signed_in(store.platform, "agent")
    page = call(app, "GET", f"/console/orders/{oid}", headers=agent)
    assert page.status_code == 200
    assert "shipment-actions" not in page.text
    assert 'id="cancel"' not in page.text
    token = csrf_of(call(app, "GET", "/console", headers=agent).text)
    url = f"/console/orders/{oid}/groups/{gid}"
    r = call(app, "POST", url, data={"csrf": token, "action": "packed"}, headers=agent)
    assert r.status_code == 403
    assert "permite ver los pedidos pero no cambiarlos" in r.text
    r = call(app, "POST", f"/console/orders/{oid}/cancel", data={"csrf": token}, headers=agent)
    assert r.status_code == 403
    staff = signed_in(store.platform, "store_staff")
    r = call(app, "POST", url, data={"action": "packed"}, headers=staff)  # no token
    assert r.status_code == 400
    r = call(app, "POST", url, data={"csrf": "forged", "action": "packed"}, headers=staff)
    assert r.status_code == 400
    r = call(app, "POST", f"/console/orders/{oid}/cancel", data={}, headers=staff)
    assert r.status_code == 400
    still = commerce.get_order(store.platform.engine, UUID(oid))
    assert still["history"] == store.split["history"]
    assert next(g for g in still["fulfilment_groups"] if g["id"] == gid)["status"] == "picking"
    r = call(app, "POST", url, data={"csrf": "x", "action": "packed"})  # signed out
    assert r.status_code == 303
    assert r.headers["location"].startswith("/console/login")
