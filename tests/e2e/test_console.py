"""The console in a real browser: Debian's headless Chromium driven by Playwright against
``trayecto serve`` on a loopback port. No browser is ever downloaded."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import orjson
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.commerce.conftest import LOCATIONS, PRODUCTS, STOCK, order_body, write
from tests.helpers import Server, last_line, run_cli
from tests.identity._pairs import queue_pairs
from trayecto import access, commerce, identity
from trayecto.access import _users
from trayecto.bootstrap import Platform

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TABLET = {"width": 1024, "height": 768}
PASSWORD = "tortilla de patatas 1"
ANON = "1e942f4c-c515-440f-ad46-8d8231f0b7aa"  # a browser's anonymous id, long and unbroken


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make system-deps` (or apt-get install chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Shop:
    url: str
    customer_id: str
    other_id: str  # Pedro, a customer with no consent recorded
    platform: Platform
    order_id: str  # Lucía's order W-7, placed through the API


def send(http: httpx.Client, key: str, *msgs: dict[str, Any]) -> None:
    r = http.post("/v1/batch", auth=(key, ""), content=orjson.dumps({"batch": list(msgs)}))
    assert r.status_code == 200, r.text


@pytest.fixture
def shop(
    platform: Platform, server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Shop:
    """Lucía García, seen on the web, in a shop, on WhatsApp, with an online order; and the
    console's users: a shop clerk (Spanish), an agent (English), someone from marketing."""
    e = platform.engine
    monkeypatch.setattr(_users, "SCRYPT_N", 2**12)  # users made here; the server checks them
    for email, name, role, locale in (
        ("ana@tienda.example", "Ana Ruiz", "store_staff", "es"),
        ("joe@agents.example", "Joe Bloggs", "agent", "en"),
        ("mar@marketing.example", "Mar Soler", "marketing", "es"),
    ):
        access.create_user(e, email, name, role, PASSWORD, locale)
    web = access.create_source(e, "Tienda online", "web").secret
    pos = access.create_source(e, "TPV Serrano", "store", "MAD-SERRANO").secret
    wa = access.create_source(e, "WhatsApp", "whatsapp").secret
    admin = access.create_token(e, "admin").secret
    for kind, text in (("locations", LOCATIONS), ("products", PRODUCTS), ("stock", STOCK)):
        commerce.import_catalogue(e, kind, write(tmp_path, f"{kind}.csv", text))

    with httpx.Client(base_url=server.url, timeout=30) as http:
        browsing = [
            {"type": "page", "anonymousId": ANON, "name": f"Aceites {n}",
             "timestamp": f"2026-09-{n + 1:02d}T10:00:00Z"}
            for n in range(22)
        ]  # fmt: skip
        send(http, web, *browsing)
        send(
            http,
            web,
            {"type": "track", "anonymousId": ANON, "event": "Product Viewed", "properties": {"sku": "SKU-1", "price": "89.95"}, "timestamp": "2026-10-01T10:01:00Z"},
            {
                "type": "identify", "anonymousId": ANON, "userId": "C42", "timestamp": "2026-10-01T10:02:00Z",
                "traits": {"firstName": "Lucía", "lastName": "García", "email": "lucia@example.es",
                           "phone": "600 11 22 33", "city": "Madrid",
                           "consents": {"marketing": {"email": True, "sms": False}}},
            },
        )  # fmt: skip
        send(
            http,
            pos,
            {
                "type": "identify", "userId": "2901", "timestamp": "2026-10-03T18:00:00Z",
                "traits": {"email": "LUCIA@example.es", "loyalty_card": "2901", "birthday": "1990-02-03"},
            },
            {"type": "track", "userId": "2901", "event": "Store Visit", "properties": {"minutes": 12}, "timestamp": "2026-10-03T18:05:00Z"},
            {"type": "identify", "userId": "3100", "timestamp": "2026-10-04T12:00:00Z",
             "traits": {"firstName": "Pedro", "lastName": "Sanz", "email": "pedro@example.es"}},
        )  # fmt: skip
        send(
            http,
            wa,
            {"type": "track", "userId": "+34600112233", "event": "Message Received", "properties": {"text": "¿Puedo devolverlo?"}, "timestamp": "2026-10-05T09:00:00Z"},
        )  # fmt: skip
        body = order_body("W-7", lines=[("SKU-1", 1)])
        body["customer"] = {"email": "lucia@example.es", "phone": "+34 600 11 22 33"}
        r = http.post("/api/orders", json=body, headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 201, r.text
        order_id = r.json()["id"]
    platform.sync_identity()
    hits = identity.search_customers(e, "lucia@example.es", "ES")
    assert len(hits) == 1
    pedro = identity.search_customers(e, "pedro@example.es", "ES")
    return Shop(server.url, str(hits[0].id), str(pedro[0].id), platform, order_id)


def new_page(browser: Browser, locale: str = "es-ES") -> tuple[BrowserContext, Page]:
    ctx = browser.new_context(viewport=TABLET, locale=locale)
    ctx.set_default_timeout(15_000)
    return ctx, ctx.new_page()


def sign_in(page: Page, url: str, email: str, password: str = PASSWORD) -> None:
    page.goto(url + "/console/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("form.stack button[type=submit]")


def test_clerk_signs_in_finds_a_customer_by_phone_and_sees_the_360(
    browser: Browser, shop: Shop, tmp_path: Path
) -> None:
    ctx, page = new_page(browser)
    # Unknown to the console: the login page, in the browser's language.
    page.goto(shop.url + "/console")
    expect(page).to_have_url(re.compile(r"/console/login$"))
    expect(page.locator("h1")).to_have_text("Entrar en la consola")

    sign_in(page, shop.url, "ana@tienda.example", "not the password")
    expect(page.locator(".alert")).to_have_text("Correo o contraseña incorrectos.")
    expect(page.locator("#email")).to_have_value("ana@tienda.example")
    sign_in(page, shop.url, "nobody@tienda.example", "not the password")
    expect(page.locator(".alert")).to_have_text("Correo o contraseña incorrectos.")

    sign_in(page, shop.url, "ana@tienda.example")
    expect(page).to_have_url(re.compile(r"/console$"))
    expect(page.locator(".who")).to_contain_text("Ana Ruiz")
    expect(page.locator(".who")).to_contain_text("Personal de tienda")
    page.screenshot(path=str(tmp_path / "search-es.png"))

    # The phone as a caller dictates it, in another format than any source sent.
    page.fill("#q", "0034 600-112-233")
    page.keyboard.press("Enter")
    expect(page.locator(".results-count")).to_have_text("1 cliente encontrado")
    result = page.locator(".result").first
    expect(result).to_contain_text("Lucía García")
    expect(result).to_contain_text("+34 600 11 22 33")
    result.click()

    expect(page).to_have_url(re.compile(rf"/console/customers/{shop.customer_id}$"))
    expect(page.locator("h1#customer-name")).to_have_text("Lucía García")
    golden = page.locator("#golden")
    expect(golden.locator(".golden-row", has_text="Fecha de nacimiento")).to_contain_text(
        "3 de febrero de 1990"
    )
    # Provenance: the birth date came from the shop's till (the most trusted source).
    birth = golden.locator(".golden-row", has_text="Fecha de nacimiento")
    expect(birth).to_contain_text("TPV Serrano")
    expect(birth).to_contain_text("la fuente más fiable")
    expect(golden.locator(".golden-row", has_text="Correo electrónico")).to_contain_text(
        "lucia@example.es"
    )
    ids = page.locator("#identities")
    for channel in ("Web", "Tienda", "WhatsApp"):
        expect(ids.locator("h3", has_text=channel)).to_be_visible()
    expect(ids).to_contain_text("Tarjeta de fidelización")
    expect(ids).to_contain_text("2901")
    consents = page.locator("#consents")
    expect(consents.locator("li.row")).to_have_count(2)
    expect(consents.locator("li", has_text="Correo electrónico")).to_contain_text("concedido")
    expect(consents.locator("li", has_text="SMS")).to_contain_text("denegado")
    expect(consents.locator("li", has_text="SMS")).to_contain_text("Marketing")
    expect(consents.locator("li", has_text="SMS")).to_contain_text("desde un evento")
    expect(page.locator("#merges")).to_contain_text("Coincidencia exacta")
    expect(page.locator("#merges")).to_contain_text("Actividad anónima que después se identificó")
    expect(page.locator("#channels li.row")).to_have_count(3)
    expect(page.locator("#channels li", has_text="Web")).to_contain_text("24 interacciones")

    timeline = page.locator("#timeline")
    items = timeline.locator("li.item")
    expect(items).to_have_count(20)  # one page
    expect(items.nth(0)).to_contain_text("Pedido W-7")  # the order is the newest
    expect(timeline.locator("li.item", has_text="Message Received")).to_contain_text("WhatsApp")
    expect(timeline.locator("li.item", has_text="Store Visit")).to_contain_text("MAD-SERRANO")
    channels_shown = {c.get_attribute("class") for c in timeline.locator("li.item > .ch").all()}
    assert {"ch ch-web", "ch ch-store", "ch ch-whatsapp"} <= channels_shown

    # A tablet-sized picture of the 360, for people to look at.
    page.screenshot(path=str(tmp_path / "customer-360-es.png"))
    page.screenshot(path=str(tmp_path / "customer-360-es-full.png"), full_page=True)

    # Older items: the API's cursor, page after page, newest first.
    timeline.locator(".pager a").click()
    expect(page).to_have_url(re.compile(r"cursor="))
    older = page.locator("#timeline li.item")
    expect(older.first).to_be_visible()
    assert older.count() >= 8
    expect(page.locator("#timeline")).to_contain_text("Aceites 1")
    expect(page.locator("#timeline .pager-top a")).to_be_visible()

    # Only the shop.
    page.goto(shop.url + f"/console/customers/{shop.customer_id}")
    page.locator("#timeline .chip", has_text="Tienda").click()
    expect(page).to_have_url(re.compile(r"channel=store"))
    expect(page.locator("#timeline li.item")).to_have_count(2)
    assert {c.get_attribute("class") for c in page.locator("#timeline li.item > .ch").all()} == {
        "ch ch-store"
    }

    # Signing out ends the session for good: the old cookie no longer opens anything.
    cookie = next(c for c in ctx.cookies() if c["name"] == "trayecto_session")
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Lax"
    page.click("form[action='/console/logout'] button")
    expect(page).to_have_url(re.compile(r"/console/login\?bye=1$"))
    expect(page.locator(".notice")).to_have_text("Has cerrado la sesión.")
    r = httpx.get(
        shop.url + f"/console/customers/{shop.customer_id}",
        cookies={"trayecto_session": cookie["value"]},
    )
    assert r.status_code == 303
    assert r.headers["location"].startswith("/console/login")
    ctx.close()


def test_languages_follow_the_user_and_the_switch(browser: Browser, shop: Shop) -> None:
    ctx, page = new_page(browser, locale="en-GB")
    page.goto(shop.url + "/console/login")
    expect(page.locator("h1")).to_have_text("Sign in to the console")
    expect(page.locator("html")).to_have_attribute("lang", "en")

    # Joe's account says English.
    sign_in(page, shop.url, "joe@agents.example")
    expect(page.locator(".who")).to_contain_text("Customer service agent")
    page.goto(shop.url + f"/console/customers/{shop.customer_id}")
    expect(page.locator("#golden h2")).to_have_text("Customer record")
    expect(page.locator("#consents")).to_contain_text("Marketing")
    page.goto(shop.url + f"/console/customers/{shop.other_id}")
    expect(page.locator("h1#customer-name")).to_have_text("Pedro Sanz")
    expect(page.locator("#consents")).to_contain_text("No consent recorded")
    page.goto(shop.url + f"/console/customers/{shop.customer_id}")
    expect(page.locator("#timeline h2")).to_have_text("Activity across channels")
    expect(page.locator("#golden .golden-row", has_text="Birth date")).to_contain_text(
        "February 3, 1990"
    )

    # He switches to Spanish on the same page; the choice stays with his account.
    page.click("form.lang button[value=es]")
    expect(page).to_have_url(re.compile(rf"/console/customers/{shop.customer_id}$"))
    expect(page.locator("#golden h2")).to_have_text("Ficha del cliente")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    assert access.get_user(shop.platform.engine, "joe@agents.example").locale == "es"
    page.click("form[action='/console/logout'] button")
    expect(page.locator("h1")).to_have_text("Entrar en la consola")
    ctx.close()

    # A Spanish browser with nobody signed in gets Spanish, and may switch to English.
    ctx, page = new_page(browser, locale="es-ES")
    page.goto(shop.url + "/console/login")
    expect(page.locator("h1")).to_have_text("Entrar en la consola")
    page.click("form.lang button[value=en]")
    expect(page.locator("h1")).to_have_text("Sign in to the console")
    ctx.close()


def test_marketing_may_not_open_customers(browser: Browser, shop: Shop) -> None:
    ctx, page = new_page(browser)
    sign_in(page, shop.url, "mar@marketing.example")
    expect(page.locator("h1")).to_have_text("Sin acceso")
    expect(page.locator("main")).to_contain_text("Tu rol (Marketing) no da acceso")
    response = page.goto(shop.url + f"/console/customers/{shop.customer_id}")
    assert response is not None
    assert response.status == 403
    expect(page.locator("main")).not_to_contain_text("Lucía")
    response = page.goto(shop.url + "/console?q=600112233")
    assert response is not None
    assert response.status == 403
    ctx.close()


def test_tablet_screenshots_of_every_page(browser: Browser, shop: Shop, tmp_path: Path) -> None:
    """Pictures at tablet size (landscape and portrait) and phone size, for a person to
    check; the assertions only make sure nothing overflows sideways."""
    for name, size in (
        ("landscape", TABLET),
        ("portrait", {"width": 768, "height": 1024}),
        ("phone", {"width": 390, "height": 844}),
    ):
        ctx = browser.new_context(viewport=size, locale="es-ES")
        page = ctx.new_page()
        page.goto(shop.url + "/console/login")
        page.screenshot(path=str(tmp_path / f"login-{name}.png"))
        sign_in(page, shop.url, "ana@tienda.example")
        page.goto(shop.url + "/console?q=Lucía")
        page.screenshot(path=str(tmp_path / f"search-{name}.png"))
        page.goto(shop.url + f"/console/customers/{shop.customer_id}")
        expect(page.locator("#timeline li.item").first).to_be_visible()
        page.screenshot(path=str(tmp_path / f"customer-{name}.png"), full_page=True)
        fits(page, name)
        for shot, path in (
            ("orders", "/console/orders"),
            ("order", f"/console/orders/{shop.order_id}"),
            ("stock", "/console/stock?sku=SKU-1"),
        ):
            page.goto(shop.url + path)
            page.screenshot(path=str(tmp_path / f"{shot}-{name}.png"), full_page=True)
            fits(page, f"{shot} {name}")
        ctx.close()


def fits(page: Page, name: str) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: the page scrolls sideways by {overflow}px"
    spilled = page.evaluate(
        "[...document.querySelectorAll('.card')]"
        ".filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.id || c.className)"
    )
    assert spilled == [], f"{name}: content spills out of {spilled}"


def test_agent_reviews_probable_duplicates_and_merges_one(
    browser: Browser,
    platform: Platform,
    server: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two pairs from a matching run wait in the queue; the agent compares Lucía's field by
    field, merges it, and lands on the customer it made. A shop clerk never sees the page."""
    e = platform.engine
    monkeypatch.setattr(_users, "SCRYPT_N", 2**12)
    access.create_user(e, "joe@agents.example", "Joe Bloggs", "agent", PASSWORD, "en")
    access.create_user(e, "ana@tienda.example", "Ana Ruiz", "store_staff", PASSWORD, "es")
    pending = queue_pairs(platform, tmp_path)
    lucia = next(c for c in pending if c.a.display_name == "Lucía García Pérez")

    ctx, page = new_page(browser, locale="en-GB")
    sign_in(page, server.url, "joe@agents.example")
    page.locator("nav.nav a", has_text="Review").click()
    expect(page).to_have_url(re.compile(r"/console/review$"))
    expect(page.locator("h1")).to_have_text("Possible duplicates to review")
    expect(page.locator("article.pair")).to_have_count(2)
    card = page.locator(f"#pair-{lucia.id}")
    expect(card.locator(".side-a")).to_contain_text("Lucía García Pérez")
    expect(card.locator(".side-b")).to_contain_text("Lucia Garcia Perez")
    expect(card.locator(".side-b")).to_contain_text("lgarcia@correo.es")
    expect(card.locator("tr.ev-agree", has_text="Birth date")).to_contain_text("exact")
    expect(card.locator("tr.ev-agree", has_text="Birth date")).to_contain_text("February 3, 1990")
    expect(card.locator("tr.ev-disagree", has_text="Email")).to_contain_text("different")
    expect(card.locator("tr.ev-neutral", has_text="Phone")).to_contain_text("missing on one side")
    expect(card.locator(".pair-head")).to_contain_text(f"{lucia.probability:.1%}")
    page.screenshot(path=str(tmp_path / "review-en.png"), full_page=True)

    card.locator("button[value=accept]").click()
    expect(page).to_have_url(re.compile(rf"/console/review\?decided={lucia.id}$"))
    expect(page.locator("#flash")).to_contain_text("Merged.")
    expect(page.locator("#flash")).to_contain_text("Lucía García Pérez")
    expect(page.locator("article.pair")).to_have_count(1)
    expect(page.locator(f"#pair-{lucia.id}")).to_have_count(0)
    merged = identity.get_candidate(e, lucia.id)
    assert merged.status == "accepted"
    assert merged.decided_by == "console:joe@agents.example"
    page.locator("#flash a").click()
    expect(page).to_have_url(re.compile(rf"/console/customers/{merged.a.id}$"))
    expect(page.locator("#merges")).to_contain_text("Merged by hand")

    # In Spanish, and at phone size nothing spills sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server.url + "/console/review")
    page.click("form.lang button[value=es]")
    expect(page.locator("h1")).to_have_text("Posibles duplicados por revisar")
    expect(page.locator("article.pair tr.ev", has_text="Apellidos")).to_contain_text("erratas")
    page.screenshot(path=str(tmp_path / "review-es-phone.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the review page scrolls sideways by {overflow}px"
    ctx.close()

    # The shop clerk has neither the link nor the page.
    ctx, page = new_page(browser)
    sign_in(page, server.url, "ana@tienda.example")
    expect(page.locator(".who")).to_contain_text("Ana Ruiz")
    expect(page.locator("a[href='/console/review']")).to_have_count(0)
    response = page.goto(server.url + "/console/review")
    assert response is not None
    assert response.status == 403
    expect(page.locator("main")).to_contain_text("no permite decidir si dos clientes")
    expect(page.locator("main")).not_to_contain_text("Pedro")
    ctx.close()


def test_forms_need_their_csrf_token_and_pages_their_session(shop: Shop) -> None:
    with httpx.Client(base_url=shop.url, timeout=30) as http:
        for path in ("/console", f"/console/customers/{shop.customer_id}", "/console?q=x"):
            r = http.get(path)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/console/login")
        r = http.get("/console/login")
        assert r.status_code == 200
        assert "default-src 'none'" in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-store"
        csrf = re.search(r'name="csrf" value="([^"]+)"', r.text)
        assert csrf is not None
        form = {"email": "ana@tienda.example", "password": PASSWORD}
        # No token, a wrong token, another site: refused before the password is checked.
        assert http.post("/console/login", data=form).status_code == 400
        assert http.post("/console/login", data=form | {"csrf": "x" * 43}).status_code == 400
        r = http.post(
            "/console/login",
            data=form | {"csrf": csrf.group(1)},
            headers={"Origin": "http://evil.example"},
        )
        assert r.status_code == 403
        r = http.post("/console/login", data=form | {"csrf": csrf.group(1)})
        assert r.status_code == 303
        assert "trayecto_session" in http.cookies
        # Signed in, the form token is the session's; the pre-login one no longer works.
        assert http.post("/console/logout", data={"csrf": csrf.group(1)}).status_code == 400
        assert http.get("/console").status_code == 200
        r = http.post("/console/language", data={"lang": "en", "next": "https://evil.example/"})
        assert r.status_code == 400
        page = http.get("/console").text
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token is not None
        r = http.post(
            "/console/language",
            data={"lang": "en", "next": "https://evil.example/", "csrf": token.group(1)},
        )
        assert (r.status_code, r.headers["location"]) == (303, "/console")  # never offsite
        r = http.get("/console/customers/not-a-customer")
        assert r.status_code == 404
        assert "This customer does not exist" in r.text


def test_users_cli_and_demo_logins(
    env: dict[str, str], platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_users, "SCRYPT_N", 2**12)  # in this process only
    r = run_cli(env, "users", "add", "Pilar@Tienda.example", "--name", "Pilar", "--role", "agent")
    password = last_line(r.stdout)
    assert len(password) >= 16
    assert "pilar@tienda.example" in r.stdout
    assert access.authenticate_user(platform.engine, "pilar@tienda.example", password)
    r = run_cli(
        env, "users", "add", "pilar@tienda.example", "--name", "P", "--role", "agent", check=False
    )
    assert r.returncode == 2
    assert "user_exists" in r.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "trayecto", "users", "add", "q@tienda.example",
         "--name", "Q", "--role", "store_staff", "--locale", "en", "--password-stdin"],
        input="una clave muy larga\n", env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "una clave" not in proc.stdout
    assert access.authenticate_user(platform.engine, "q@tienda.example", "una clave muy larga")
    listed = run_cli(env, "users", "list").stdout
    assert "pilar@tienda.example" in listed
    assert "store_staff" in listed
    run_cli(env, "users", "disable", "pilar@tienda.example")
    assert "disabled" in run_cli(env, "users", "list").stdout
    assert not access.get_user(platform.engine, "pilar@tienda.example").active

    from trayecto.cli.demo_cmd import demo_logins

    first = demo_logins(platform.engine)
    again = demo_logins(platform.engine)  # idempotent: same users, fresh passwords
    assert [(e, r) for e, r, _ in first] == [(e, r) for e, r, _ in again]
    assert {r for _, r, _ in again} == {"admin", "store_staff", "agent"}
    for email, _, password in again:
        assert access.authenticate_user(platform.engine, email, password).email == email


def test_agent_answers_where_is_my_order_from_the_360(
    browser: Browser, shop: Shop, tmp_path: Path
) -> None:
    """Lucía calls: Joe opens her 360, sees the order's status and promise, opens it, reads
    why it ships from where it does, and checks the stock of its product. Then the same in
    Spanish at phone size."""
    order = commerce.get_order(shop.platform.engine, UUID(shop.order_id))
    (group,) = order["fulfilment_groups"]
    ctx, page = new_page(browser, locale="en-GB")
    sign_in(page, shop.url, "joe@agents.example")
    page.goto(shop.url + f"/console/customers/{shop.customer_id}")
    panel = page.locator("#orders")
    expect(panel.locator("h2")).to_have_text("Orders")
    row = panel.locator("a.order-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Order W-7")
    expect(row).to_contain_text("allocated")
    expect(row).to_contain_text("Arrives from")
    page.screenshot(path=str(tmp_path / "customer-orders-en.png"))
    row.click()

    expect(page).to_have_url(re.compile(rf"/console/orders/{shop.order_id}$"))
    expect(page.locator("h1")).to_contain_text("Order W-7")
    shipment = page.locator("#shipments li.shipment")
    expect(shipment).to_have_count(1)
    expect(shipment).to_contain_text("Almacén central Madrid")
    expect(shipment).to_contain_text("Arrives from")
    sourcing = page.locator("#sourcing")
    expect(sourcing.locator("h2")).to_have_text("Why these locations")
    expect(sourcing).to_contain_text("One shipment from Almacén central Madrid.")
    candidates = sourcing.locator("li.cand")
    expect(candidates).to_have_count(len(order["sourcing"]["candidates"]))
    expect(sourcing.locator("li.cand-chosen")).to_contain_text("Chosen: sends SKU-1")
    expect(sourcing.locator("li.cand-costlier").first).to_contain_text("cost more")
    expect(sourcing.locator("li.cand-costlier")).to_have_count(2)  # Zaragoza, Barcelona
    expect(sourcing.locator("details")).to_contain_text("What the cost is made of")
    expect(page.locator("#history")).to_contain_text("Order placed")
    page.screenshot(path=str(tmp_path / "order-en.png"), full_page=True)

    page.locator("#lines a", has_text="SKU-1").click()
    expect(page).to_have_url(re.compile(r"/console/stock\?sku=SKU-1$"))
    madrid = page.locator("table.stock-table tbody tr", has_text="Almacén central Madrid")
    expect(madrid.locator("td.atp")).to_have_text("9")  # 10 on hand, 1 for W-7
    page.screenshot(path=str(tmp_path / "stock-en.png"), full_page=True)
    assert group["location_id"] == "WH-MAD"

    # In Spanish, on a phone: the same answers, nothing spilling sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    page.click("form.lang button[value=es]")
    expect(page.locator("h1")).to_have_text("Stock por ubicación")
    page.goto(shop.url + f"/console/orders/{shop.order_id}")
    expect(page.locator("#sourcing h2")).to_have_text("Por qué estas ubicaciones")
    expect(page.locator("#sourcing")).to_contain_text("Un solo envío desde Almacén central Madrid.")
    page.screenshot(path=str(tmp_path / "order-es-phone.png"), full_page=True)
    fits(page, "order es phone")
    ctx.close()

    # Marketing has neither the links nor the pages.
    ctx, page = new_page(browser)
    sign_in(page, shop.url, "mar@marketing.example")
    expect(page.locator("a[href='/console/orders']")).to_have_count(0)
    response = page.goto(shop.url + f"/console/orders/{shop.order_id}")
    assert response is not None
    assert response.status == 403
    expect(page.locator("main")).to_contain_text("no da acceso a los pedidos")
    expect(page.locator("main")).not_to_contain_text("W-7")
    ctx.close()


def test_shop_staff_moves_an_order_on_in_the_browser(
    browser: Browser, shop: Shop, tmp_path: Path
) -> None:
    """Ana prepares W-7 in the warehouse's console: start picking, packed, shipped; each
    click answers with the shipment's new state, and the history keeps who did it."""
    ctx, page = new_page(browser)
    sign_in(page, shop.url, "ana@tienda.example")
    page.goto(shop.url + f"/console/orders/{shop.order_id}")
    shipment = page.locator("#shipments li.shipment")
    for button, state in (
        ("Empezar a preparar", "en preparación"),
        ("Empaquetado", "empaquetado"),
        ("Enviado", "enviado"),
    ):
        shipment.get_by_role("button", name=button, exact=True).click()
        expect(page.locator("#flash")).to_have_text(f"El envío 1 está ahora «{state}».")
        expect(shipment.locator(".tag").first).to_have_text(state)
    expect(shipment.get_by_role("button", name="Entregado", exact=True)).to_be_visible()
    expect(page.locator("#cancel")).to_have_count(0)  # it has left: nothing to cancel
    expect(page.locator("#history")).to_contain_text("console:ana@tienda.example")
    page.screenshot(path=str(tmp_path / "order-moved.png"), full_page=True)
    fits(page, "order moved")
    order = commerce.get_order(shop.platform.engine, UUID(shop.order_id))
    assert [g["status"] for g in order["fulfilment_groups"]] == ["shipped"]
    assert commerce.check_ledger(shop.platform.engine) == []
    ctx.close()
