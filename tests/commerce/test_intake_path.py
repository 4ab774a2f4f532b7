"""``POST /api/orders`` is answered ahead of FastAPI's routing (``web.intake``): the same
answers as the documented route, errors in the API's shape, the access log still sees it,
and every other request passes through. In process (Starlette's test client), on SQLite
and, under scripts/with-postgres.sh, on PostgreSQL."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.commerce.conftest import order_body
from trayecto import access
from trayecto.bootstrap import Platform
from trayecto.web import commerce_api, errors
from trayecto.web.app import create_app
from trayecto.web.intake import MAX_BODY, IntakeFastPath, OrderIntake


def _client(app: Any, token: str | None) -> TestClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return TestClient(app, headers=headers, raise_server_exceptions=False)


def _route_only(platform: Platform) -> FastAPI:
    """The documented route alone, without the fast path in front of it."""
    app = FastAPI()
    errors.install(app)
    app.include_router(commerce_api.build_router(platform, OrderIntake(platform)))
    return app


@pytest.fixture
def admin(retailer: Platform) -> str:
    return access.create_token(retailer.engine, "ops").secret


def _shape(r: httpx.Response) -> tuple[int, Any]:
    body = r.json()
    if "error" in body:
        return r.status_code, body["error"]["code"]
    return r.status_code, sorted(body)


def test_the_fast_path_and_the_route_answer_alike(retailer: Platform, admin: str) -> None:
    staff = access.create_token(retailer.engine, "shop", "store_staff").secret
    fast_app = create_app(retailer, access_log=False)
    cases: list[tuple[str | None, Any]] = [
        (admin, order_body("F-1", lines=[("SKU-1", 1)])),
        (admin, order_body("F-1", lines=[("SKU-1", 1)])),  # the same again: 200
        (admin, order_body("F-2", lines=[("SKU-1", 10_000)])),  # 409
        (admin, order_body("F-3", lines=[("NOPE", 1)])),  # 400 unknown_sku
        (admin, {"channel": "web"}),  # 400 missing_field
        (None, order_body("F-4")),  # 401
        ("tk_not-a-token", order_body("F-5")),  # 401
        (staff, order_body("F-6")),  # 403: intake takes admin tokens only
    ]
    seen = []
    for name, app in (("fast", fast_app), ("route", _route_only(retailer))):
        answers = []
        for token, body in cases:
            # each app places its own orders: external ids differ by app
            if isinstance(body, dict) and "external_id" in body:
                body = {**body, "external_id": f"{name}-{body['external_id']}"}
            r = _client(app, token).post("/api/orders", json=body)
            if r.status_code == 401:
                assert r.headers["www-authenticate"] == 'Basic realm="trayecto"'
            assert r.headers["content-type"] == "application/json"
            answers.append(_shape(r))
        seen.append(answers)
    fast, route = seen
    assert fast == route
    assert [a[0] for a in fast] == [201, 200, 409, 400, 400, 401, 401, 403]
    assert [a[1] for a in fast[2:]] == [
        "insufficient_stock", "unknown_sku", "missing_field", "missing_token", "invalid_token",
        "forbidden_role",
    ]  # fmt: skip


def test_bad_bodies_get_clear_errors(retailer: Platform, admin: str) -> None:
    client = _client(create_app(retailer, access_log=False), admin)
    r = client.post("/api/orders", content=b"{not json", headers={"Content-Type": "text/plain"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed_json")
    r = client.post("/api/orders", content=b"[" + b" " * MAX_BODY + b"]")
    assert (r.status_code, r.json()["error"]["code"]) == (400, "payload_too_large")
    r = client.post("/api/orders", content=b"[]")
    assert (r.status_code, r.json()["error"]["field"]) == (400, "body")


def test_the_access_log_sees_the_fast_path(
    retailer: Platform, admin: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trayecto.access")
    client = _client(create_app(retailer, access_log=True), admin)
    body = order_body("L-1", lines=[("SKU-1", 1)])
    assert client.post("/api/orders", json=body).status_code == 201
    logged = [r.getMessage() for r in caplog.records if r.name == "trayecto.access"]
    assert any(line.startswith("POST /api/orders 201 ") for line in logged), logged
    assert not any("example.es" in line for line in logged)  # no body, no PII


def test_other_requests_pass_through(retailer: Platform, admin: str) -> None:
    client = _client(create_app(retailer, access_log=False), admin)
    placed = client.post("/api/orders", json=order_body("P-1", lines=[("SKU-1", 1)])).json()
    got = client.get(f"/api/orders/{placed['id']}")
    assert got.status_code == 200
    assert got.json()["id"] == placed["id"]
    assert "candidates" in got.json()["sourcing"]  # GET has the whole explanation
    assert "candidates" not in placed["sourcing"]  # POST answers with its summary
    quote = client.post("/api/orders/quote", json=order_body("P-2", lines=[("SKU-1", 1)]))
    assert quote.status_code == 200
    assert "/api/orders" in client.get("/openapi.json").json()["paths"]


def test_a_bug_behind_the_fast_path_is_a_logged_500(
    retailer: Platform, admin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(OrderIntake, "answer", broken)
    app = create_app(retailer, access_log=False)
    assert any(m.cls is IntakeFastPath for m in app.user_middleware)
    r = _client(app, admin).post("/api/orders", json=order_body("B-1"))
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"
