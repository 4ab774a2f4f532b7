"""The tracking API over real HTTP against a live ``trayecto serve`` (uvicorn on loopback)."""

from __future__ import annotations

import gzip
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from segment.analytics.client import Client

from tests.helpers import Server, last_line, run_cli, start_server
from trayecto import access
from trayecto.bootstrap import Platform

pytestmark = pytest.mark.e2e


@pytest.fixture
def keys(platform: Platform) -> dict[str, str]:
    """Sources and a token made through the library (the CLI has its own tests)."""
    return {
        "web": access.create_source(platform.engine, "Web store", "web").secret,
        "shop": access.create_source(
            platform.engine, "Madrid Serrano POS", "store", "MAD-SERRANO"
        ).secret,
        "token": access.create_token(platform.engine, "tests").secret,
    }


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def events(http: httpx.Client, token: str, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        q = dict(params, limit=1000, **({"cursor": cursor} if cursor else {}))
        r = http.get("/api/events", params=q, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        body = r.json()
        out += body["data"]
        cursor = body["next_cursor"]
        if not cursor:
            return out


def track(i: int, **over: Any) -> dict[str, Any]:
    msg = {
        "type": "track",
        "event": "Product Viewed",
        "userId": f"u{i}",
        "messageId": f"msg-{i}",
        "properties": {"sku": f"SKU-{i}", "price": 12.9},
        "context": {"locale": "es-ES", "page": {"url": "https://tienda.example.es/aceite"}},
        "timestamp": "2026-11-22T10:00:00Z",
    }
    msg.update(over)
    return msg


def post(
    http: httpx.Client, key: str, body: Any, path: str = "/v1/batch", **kw: Any
) -> httpx.Response:
    return http.post(path, auth=(key, ""), content=orjson.dumps(body), **kw)


def test_real_segment_client_events_are_stored_with_properties_and_context(
    server: Server, keys: dict[str, str], http: httpx.Client
) -> None:
    errors: list[Any] = []
    client = Client(
        keys["web"],
        host=server.url,
        gzip=True,
        sync_mode=False,
        max_retries=2,
        on_error=lambda e, batch: errors.append(e),
    )
    ctx = {"ip": "203.0.113.7", "locale": "es-ES", "campaign": {"source": "instagram"}}
    for i in range(250):
        client.track(
            f"user-{i % 7}", "Product Viewed", {"sku": f"AOVE-{i}", "price": 12.9}, context=ctx
        )
    client.identify("user-1", {"email": "lucia@example.es", "firstName": "Lucía"})
    client.page("user-1", "Tienda", "Aceites", {"url": "https://tienda.example.es/aceites"})
    client.screen("user-1", "App", "Carrito")
    client.group("user-1", "company-9", {"name": "Restaurante Sol"})
    client.alias("anon-123", "user-1")
    client.flush()
    client.join()
    assert errors == []

    stored = events(http, keys["token"], source="Web store")
    assert len(stored) == 255
    tracks = [e for e in stored if e["type"] == "track"]
    assert {e["properties"]["sku"] for e in tracks} == {f"AOVE-{i}" for i in range(250)}
    sample = tracks[0]
    assert sample["context"]["ip"] == "203.0.113.7"
    assert sample["context"]["campaign"] == {"source": "instagram"}
    assert sample["context"]["library"]["name"] == "analytics-python"
    assert sample["channel"] == "web"
    by_type = {e["type"]: e for e in stored}
    assert by_type["identify"]["traits"] == {"email": "lucia@example.es", "firstName": "Lucía"}
    assert by_type["page"]["event"] == "Aceites"
    assert by_type["screen"]["event"] == "Carrito"
    assert by_type["group"]["group_id"] == "company-9"
    assert (by_type["alias"]["previous_id"], by_type["alias"]["user_id"]) == ("anon-123", "user-1")


def test_gzip_body(http: httpx.Client, keys: dict[str, str]) -> None:
    body = gzip.compress(orjson.dumps({"batch": [track(i) for i in range(20)]}))
    r = http.post(
        "/v1/batch", auth=(keys["web"], ""), content=body, headers={"Content-Encoding": "gzip"}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True}
    assert len(events(http, keys["token"])) == 20
    r = http.post(
        "/v1/batch",
        auth=(keys["web"], ""),
        content=b"not gzip",
        headers={"Content-Encoding": "gzip"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_encoding"


def test_retried_batch_stores_nothing_twice(http: httpx.Client, keys: dict[str, str]) -> None:
    batch = {"batch": [track(i) for i in range(50)]}
    for _ in range(3):
        assert post(http, keys["web"], batch).status_code == 200
    bigger = {"batch": [track(i) for i in range(60)]}
    assert post(http, keys["web"], bigger).status_code == 200
    stored = events(http, keys["token"])
    assert len(stored) == 60
    assert len({e["message_id"] for e in stored}) == 60


def test_half_bad_batch_keeps_the_good_and_reports_the_bad(
    http: httpx.Client, keys: dict[str, str]
) -> None:
    batch = [
        track(0),
        track(1, event=None),
        track(2),
        {"type": "identify"},
        track(4, timestamp="soon"),
    ]
    r = post(http, keys["web"], {"batch": batch})
    assert r.status_code == 400
    body = r.json()
    assert body["error"]["code"] == "invalid_messages"
    assert body["error"]["field"] == "batch[1].event"
    assert body["accepted"] == 2
    assert [(x["index"], x["field"]) for x in body["rejected"]] == [
        (1, "batch[1].event"),
        (3, "batch[3].userId"),
        (4, "batch[4].timestamp"),
    ]
    assert sorted(e["message_id"] for e in events(http, keys["token"])) == ["msg-0", "msg-2"]


def test_size_limits(http: httpx.Client, keys: dict[str, str]) -> None:
    big_msg = track(1, properties={"blob": "x" * 33_000})
    r = post(http, keys["web"], {"batch": [track(0), big_msg]})
    assert r.status_code == 400
    assert r.json()["rejected"] == [
        {
            "index": 1,
            "code": "message_too_large",
            "message": r.json()["rejected"][0]["message"],
            "field": "batch[1]",
        }
    ]
    huge = {"batch": [track(i, properties={"blob": "x" * 20_000}) for i in range(30)]}
    r = post(http, keys["web"], huge)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "batch_too_large"
    # The same oversize batch gzipped is judged by its decompressed size.
    r = http.post(
        "/v1/batch",
        auth=(keys["web"], ""),
        content=gzip.compress(orjson.dumps(huge)),
        headers={"Content-Encoding": "gzip"},
    )
    assert r.status_code == 413
    r = post(http, keys["web"], big_msg, path="/v1/track")
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "message_too_large"
    assert [e["message_id"] for e in events(http, keys["token"])] == ["msg-0"]


def test_write_keys(http: httpx.Client, keys: dict[str, str], env: dict[str, str]) -> None:
    body = {"batch": [track(0)]}
    r = post(http, "wk_wrong", body)
    assert r.status_code == 401
    assert r.json()["error"] == {
        "code": "invalid_write_key",
        "message": "unknown write key",
        "field": "writeKey",
    }
    r = http.post("/v1/batch", content=orjson.dumps(body))
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "missing_write_key"
    # analytics.js style: key in the body, text/plain.
    r = http.post(
        "/v1/t",
        content=orjson.dumps(dict(track(5), writeKey=keys["web"])),
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == "*"
    run_cli(env, "sources", "revoke", "Web store")
    # Authenticated keys are cached for a second: revocation takes effect within it.
    deadline = time.monotonic() + 3
    while (r := post(http, keys["web"], body)).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "revoked_write_key"
    assert r.headers["www-authenticate"].startswith("Basic")
    stored = {e["message_id"] for e in events(http, keys["token"])}
    assert "msg-5" in stored
    assert stored <= {"msg-5", "msg-0"}  # msg-0 only if sent within the revocation second


def test_malformed_json_is_a_clear_400(http: httpx.Client, keys: dict[str, str]) -> None:
    for body in (b'{"batch": [', b"", b"\xff\xfe"):
        r = http.post("/v1/batch", auth=(keys["web"], ""), content=body)
        assert r.status_code == 400
        err = r.json()["error"]
        assert err["code"] == "malformed_json"
        assert "not valid JSON" in err["message"]
        assert err["field"] == "body"
    r = post(http, keys["web"], {"batch": "nope"})
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "invalid_type",
        "message": "the body needs a 'batch' array of messages",
        "field": "batch",
    }


def test_single_message_endpoints_and_shop_location(
    http: httpx.Client, keys: dict[str, str]
) -> None:
    anon = str(uuid.uuid4())
    calls = [
        ("/v1/page", {"anonymousId": anon, "name": "Inicio"}),
        ("/v1/identify", {"anonymousId": anon, "userId": "C1", "traits": {"email": "a@b.es"}}),
        ("/v1/track", {"userId": "C1", "event": "Order Completed"}),
        ("/v1/screen", {"userId": "C1", "name": "Pedido"}),
        ("/v1/group", {"userId": "C1", "groupId": "G1"}),
        ("/v1/alias", {"userId": "C1", "previousId": anon}),
    ]
    for path, msg in calls:
        r = post(http, keys["shop"], msg, path=path)
        assert r.status_code == 200, (path, r.text)
    stored = events(http, keys["token"], order="asc")
    assert [e["type"] for e in stored] == ["page", "identify", "track", "screen", "group", "alias"]
    assert {e["location_id"] for e in stored} == {"MAD-SERRANO"}
    assert {e["channel"] for e in stored} == {"store"}
    r = post(http, keys["shop"], {"userId": "C1"}, path="/v1/track")
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "missing_field",
        "message": "track needs an event name",
        "field": "event",
    }
    r = post(http, keys["shop"], {"userId": "C1"}, path="/v1/nothing")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_events_api_filters_pagination_and_auth(http: httpx.Client, keys: dict[str, str]) -> None:
    assert post(http, keys["web"], {"batch": [track(i) for i in range(30)]}).status_code == 200
    shop_batch = {
        "batch": [track(100 + i, type="identify", event=None, traits={"n": i}) for i in range(5)]
    }
    assert post(http, keys["shop"], shop_batch).status_code == 200
    assert len(events(http, keys["token"], channel="store")) == 5
    assert len(events(http, keys["token"], type="track")) == 30
    assert [e["user_id"] for e in events(http, keys["token"], user_id="u7")] == ["u7"]
    assert (
        len(events(http, keys["token"], since="2026-11-22T09:00:00Z", until="2026-11-22T11:00:00Z"))
        == 35
    )
    assert events(http, keys["token"], since="2026-11-23T00:00:00Z") == []
    hdr = {"Authorization": f"Bearer {keys['token']}"}
    page1 = http.get("/api/events", params={"limit": 20}, headers=hdr).json()
    assert len(page1["data"]) == 20
    page2 = http.get(
        "/api/events", params={"limit": 20, "cursor": page1["next_cursor"]}, headers=hdr
    ).json()
    assert len(page2["data"]) == 15
    assert page2["next_cursor"] is None
    assert not {e["id"] for e in page1["data"]} & {e["id"] for e in page2["data"]}

    r = http.get("/api/events")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "missing_token"
    r = http.get("/api/events", headers={"Authorization": "Bearer tk_wrong"})
    assert r.status_code == 401
    r = http.get("/api/events", params={"limit": 5000}, headers=hdr)
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "limit"
    r = http.get("/api/events", params={"since": "yesterday"}, headers=hdr)
    assert (r.status_code, r.json()["error"]["field"]) == (400, "since")
    r = http.get("/api/events", params={"source": "nope"}, headers=hdr)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "source_not_found")
    r = http.get("/api/events", params={"cursor": "zzz"}, headers=hdr)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_cursor")


def test_role_is_checked(http: httpx.Client, env: dict[str, str]) -> None:
    agent = last_line(run_cli(env, "tokens", "add", "agent-1", "--role", "agent").stdout)
    r = http.get("/api/events", headers={"Authorization": f"Bearer {agent}"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden_role"


def test_basic_header_garbage(http: httpx.Client) -> None:
    r = http.post("/v1/batch", content=b"{}", headers={"Authorization": "Basic !!!"})
    assert r.status_code == 401


def test_access_log_never_holds_pii(
    platform: Platform, env: dict[str, str], tmp_path: Path
) -> None:
    key = access.create_source(platform.engine, "Web", "web").secret
    token = access.create_token(platform.engine, "t").secret
    srv = start_server(env, tmp_path / "logged.log", access_log=True)
    try:
        with httpx.Client(base_url=srv.url) as http:
            msg = {
                "userId": "lucia.garcia@example.es",
                "event": "Order Completed",
                "traits": {"phone": "+34600112233"},
            }
            assert post(http, key, msg, path="/v1/track").status_code == 200
            r = http.get(
                "/api/events",
                params={"user_id": "lucia.garcia@example.es"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert len(r.json()["data"]) == 1
    finally:
        srv.stop()
    log = (tmp_path / "logged.log").read_text()
    assert "GET /api/events 200" in log
    assert "POST /v1/track 200" in log
    assert "lucia" not in log
    assert "600112233" not in log
    assert key not in log
    assert token not in log
