"""The console without a browser: every route checks the session and the role, the message
catalogs are complete, languages are negotiated, dates are shown in the shop's zone, the
helpers refuse what they should, and nothing a person typed reaches the logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po
from fastapi import FastAPI

from tests.integration.console_helpers import PASSWORD, call
from trayecto import access
from trayecto.access import _users
from trayecto.bootstrap import Platform
from trayecto.web import create_app
from trayecto.web.console._i18n import Formatter, from_accept_language, load_translations
from trayecto.web.console._pages import build_router
from trayecto.web.console._session import LoginThrottle, safe_next

ROOT = Path(__file__).resolve().parents[2]
LOCALES_DIR = ROOT / "src/trayecto/web/locales"


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_users, "SCRYPT_N", 2**10)


@pytest.fixture
def app(platform: Platform) -> FastAPI:
    return create_app(platform, access_log=True)  # no lifespan: no writer threads needed


def session_cookie(platform: Platform, role: str) -> dict[str, str]:
    user = access.create_user(platform.engine, f"{role}@example.es", role, role, PASSWORD)
    token = access.start_session(platform.engine, user, timedelta(hours=1)).secret
    return {"Cookie": f"trayecto_session={token}"}


def console_get_routes(platform: Platform) -> Iterator[str]:
    for route in build_router(platform).routes:
        path, methods = getattr(route, "path", ""), getattr(route, "methods", None) or ()
        if path.startswith("/console") and path != "/console/login" and "GET" in methods:
            yield path.replace("{customer_id}", "01a203c7-6dae-716e-abf1-03861723fcee")


def test_every_console_page_checks_session_and_role(platform: Platform, app: FastAPI) -> None:
    pages = list(console_get_routes(platform))
    assert "/console" in pages
    assert any(p.startswith("/console/customers/") for p in pages)
    marketing = session_cookie(platform, "marketing")
    agent = session_cookie(platform, "agent")
    for path in pages:
        r = call(app, "GET", path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/console/login"), path
        r = call(app, "GET", path, headers=marketing)
        assert r.status_code == 403, path
        assert call(app, "GET", path, headers=agent).status_code in (200, 404), path
    # The page asked for is where signing in leads back to.
    r = call(app, "GET", "/console/customers/01a203c7-6dae-716e-abf1-03861723fcee?channel=web")
    assert r.headers["location"] == (
        "/console/login?next=%2Fconsole%2Fcustomers%2F01a203c7-6dae-716e-abf1-03861723fcee"
        "%3Fchannel%3Dweb"
    )
    # The public home page stays public; signed-in people go to the console.
    assert call(app, "GET", "/").status_code == 200
    r = call(app, "GET", "/", headers=agent)
    assert (r.status_code, r.headers["location"]) == (303, "/console")


def test_nothing_typed_reaches_the_logs(
    platform: Platform, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    agent = session_cookie(platform, "agent")
    caplog.set_level(logging.DEBUG)
    page = call(app, "GET", "/console/login")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    cookie = page.headers["set-cookie"].split(";")[0]
    r = call(
        app,
        "POST",
        "/console/login",
        data={"email": "secreto.cliente@example.es", "password": "hunter2-hunter2", "csrf": csrf},
        headers={"Cookie": cookie},
    )
    assert r.status_code == 401
    call(app, "GET", "/console", params={"q": "+34 611 22 33 44"}, headers=agent)
    call(app, "GET", "/console", params={"q": "Ramírez"}, headers=agent)
    server_side = ("trayecto", "uvicorn", "fastapi", "starlette")  # not this test's client
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(server_side))
    assert "GET /console 200" in logged  # the access log ran
    for secret in ("secreto.cliente", "hunter2", "611", "Ramírez", "Ram%C3%ADrez"):
        assert secret not in logged


def test_catalogs_cover_every_message() -> None:
    """Every message in the templates and the console's code is in the template catalog
    and translated to Spanish. On failure, regenerate as docs/operations.md says."""
    method_map = [
        ("src/trayecto/web/console/**.py", "python"),
        ("src/trayecto/web/templates/**.html", "jinja2"),
    ]
    options = {"src/trayecto/web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    keywords = dict(DEFAULT_KEYWORDS) | {"N_": None}
    found = {
        msg if isinstance(msg, str) else msg[0]
        for _file, _line, msg, _comments, _ctx in extract_from_dir(
            str(ROOT), method_map, options, keywords=keywords
        )
    }
    found = {" ".join(m.split()) for m in found}  # trimmed, as the templates are rendered
    with (LOCALES_DIR / "messages.pot").open("rb") as fh:
        pot = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}
    assert found - pot == set(), "messages missing from messages.pot"
    with (LOCALES_DIR / "es/LC_MESSAGES/messages.po").open("rb") as fh:
        es = read_po(fh, locale="es")
    untranslated = [
        m.id
        for m in es
        if m.id and (m.fuzzy or not all(m.string if isinstance(m.string, tuple) else [m.string]))
    ]
    assert untranslated == []
    assert {m.id if isinstance(m.id, str) else m.id[0] for m in es if m.id} == pot
    t = load_translations()
    assert t["es"].gettext("Sign in") == "Entrar"
    assert t["en"].gettext("Sign in") == "Sign in"
    assert t["es"].ngettext("%(num)d customer found", "%(num)d customers found", 3) % {
        "num": 3
    } == ("3 clientes encontrados")


def test_language_negotiation() -> None:
    assert from_accept_language("es-ES,es;q=0.9,en;q=0.8") == "es"
    assert from_accept_language("en-GB,en;q=0.9") == "en"
    assert from_accept_language("fr-FR, en;q=0.5, es;q=0.7") == "es"
    assert from_accept_language("de, fr;q=0.8") is None
    assert from_accept_language("en;q=0, es") == "es"
    assert from_accept_language("en;q=banana, es;q=0.1") == "es"
    assert from_accept_language("") is None
    assert from_accept_language(None) is None


def test_dates_in_the_shop_zone_and_values_for_people() -> None:
    summer = datetime(2026, 7, 1, 9, 30, tzinfo=UTC)
    winter = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
    es = Formatter("es", ZoneInfo("Europe/Madrid"))
    en = Formatter("en", ZoneInfo("Europe/Madrid"))
    assert es.when(summer) == "1 jul 2026, 11:30"
    assert es.when(winter) == "15 ene 2026, 10:30"
    assert en.when(summer).startswith("Jul 1, 2026")
    assert Formatter("es", ZoneInfo("Atlantic/Canary")).when(summer) == "1 jul 2026, 10:30"
    assert es.when("2026-07-01T09:30:00+00:00") == "1 jul 2026, 11:30"
    assert es.when(None) == es.when("not a date") == "—"
    assert es.date_value("1990-02-03") == "3 de febrero de 1990"
    assert es.date_value("hace mucho") == "hace mucho"
    assert es.phone("+34600112233") == "+34 600 11 22 33"
    assert es.money("19.5", "EUR") == "19,50\xa0€"
    assert en.money("19.5", "EUR") == "€19.50"
    assert es.ago(datetime.now(UTC) - timedelta(days=3)) == "hace 3 días"


def test_next_addresses_stay_in_the_console() -> None:
    assert safe_next("/console/customers/x?channel=web") == "/console/customers/x?channel=web"
    for bad in (
        None,
        "",
        "https://evil.example/console",
        "//evil.example/console",
        "/\\evil.example",
        "/docs",
        "javascript:alert(1)",
        "/console\\@evil.example",
    ):
        assert safe_next(bad) == "/console", bad


def test_login_throttle() -> None:
    throttle = LoginThrottle(limit=3, window=60)
    for _ in range(3):
        assert throttle.retry_after("Ana@Example.es") == 0
        throttle.failed("ana@example.es ")
    assert 0 < throttle.retry_after("ana@example.es") <= 60
    assert throttle.retry_after("otra@example.es") == 0
    throttle.succeeded("ana@example.es")
    assert throttle.retry_after("ana@example.es") == 0
    assert all("ana" not in key for key in throttle._fails)
