"""The HTTP contract of issue 5 over a real server."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
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


def test_a_channels_sourcing_rules_over_http(api: httpx.Client) -> None:
    r = api.get("/api/channels/web/policy")
    assert r.status_code == 200, r.text
    assert r.json()["settings"] is None  # the defaults
    defaults = r.json()["policy"]
    assert defaults["walk_in_reserve"] == 2
    r = api.put("/api/channels/web/policy", json={"split_penalty": 7.5})
    assert r.status_code == 200, r.text
    got = api.get("/api/channels/web/policy").json()
    assert got["settings"] == {"split_penalty": 7.5}
    assert got["policy"] == {**defaults, "split_penalty": 7.5}
    assert api.get("/api/channels/app/policy").json()["settings"] is None
    r = api.get("/api/channels/fax/policy")
    assert (r.status_code, r.json()["error"]["field"]) == (400, "channel")
    assert httpx.get(api.base_url.join("/api/channels/web/policy")).status_code == 401


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
    # the answer to POST summarises the sourcing; GET has every candidate too
    assert {k: v for k, v in got.items() if k != "sourcing"} == {
        k: v for k, v in order.items() if k != "sourcing"
    }
    assert order["sourcing"].items() <= got["sourcing"].items()
    assert {"WH-MAD", "ECOM-ZGZ"} <= {c["location_id"] for c in got["sourcing"]["candidates"]}
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


def _listening(port: int) -> int:
    """Sockets listening on ``port`` (TCP over IPv4, this network namespace)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    local = [r.split()[1] for r in rows if r.split()[3] == "0A"]  # 0A: LISTEN
    return sum(1 for addr in local if int(addr.split(":")[1], 16) == port)


def test_several_worker_processes_serve_orders(env: dict[str, str], tmp_path: Path) -> None:
    """``trayecto serve --workers 2``: each process builds its own platform (app factory)
    and, on Linux, listens on a socket of its own (``SO_REUSEPORT``: the kernel spreads
    connections over them); orders from both land in the one store, a duplicate answers
    the stored order."""
    import subprocess
    import sys
    import time

    from tests.helpers import free_port

    for kind, text in (("locations", LOCATIONS), ("products", PRODUCTS), ("stock", STOCK)):
        run_cli(env, "import", kind, str(write(tmp_path, f"{kind}.csv", text)))
    token = last_line(run_cli(env, "tokens", "add", "ops").stdout)
    port = free_port()
    log = (tmp_path / "workers.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "trayecto", "serve", "--port", str(port), "--workers", "2",
         "--no-access-log", "--no-worker"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "workers.log").read_text()
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "workers.log").read_text()
            time.sleep(0.2)
        # both processes listen, each on its own socket; new connections reach both
        deadline = time.monotonic() + 60
        while _listening(port) < 2:
            assert time.monotonic() < deadline, (tmp_path / "workers.log").read_text()
            time.sleep(0.2)
        assert _listening(port) == 2
        answered = {httpx.get(url + "/healthz", timeout=10).json()["process"] for _ in range(24)}
        assert len(answered) == 2
        assert proc.pid not in answered
        # a second server on the port is refused, not let in to take half the connections
        second = subprocess.run(
            [sys.executable, "-m", "trayecto", "serve", "--port", str(port), "--workers", "2",
             "--no-access-log", "--no-worker"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 2, second.stdout + second.stderr
        assert "port_in_use" in second.stderr
        assert _listening(port) == 2
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as api:
            # new connections each time, so both processes get some
            ids = set()
            for i in range(8):
                r = httpx.post(
                    url + "/api/orders",
                    json=order_body(f"MW-{i}", lines=[("SKU-1", 1)]),
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30,
                )
                assert r.status_code == 201, r.text
                ids.add(r.json()["id"])
            again = api.post("/api/orders", json=order_body("MW-0", lines=[("SKU-1", 1)]))
            assert again.status_code == 200
            assert again.json()["id"] in ids
            inv = api.get("/api/inventory", params={"sku": "SKU-1"}).json()
            assert inv["reserved"] == 8
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def test_returns_over_http_and_the_cli(api: httpx.Client, server: Server) -> None:
    body = order_body("RET-1", lines=[("SKU-1", 2)])
    body["payments"] = [{"method": "online", "amount": "20.00", "reference": "psp-1"}]
    order = api.post("/api/orders", json=body).json()
    oid, gid = order["id"], order["fulfilment_groups"][0]["id"]
    early = api.post(
        f"/api/orders/{oid}/returns",
        json={"method": "in_store", "location_id": "SHOP-BCN",
              "lines": [{"sku": "SKU-1", "quantity": 1}]},
    )  # fmt: skip
    assert (early.status_code, early.json()["error"]["code"]) == (409, "not_returnable")
    for status in ("picking", "packed", "shipped", "delivered"):
        api.post(f"/api/orders/{oid}/groups/{gid}/status", json={"status": status})
    r = api.post(
        f"/api/orders/{oid}/returns",
        json={"method": "in_store", "location_id": "SHOP-BCN", "reason": "too big",
              "lines": [{"sku": "SKU-1", "quantity": 1}]},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert r.json()["rma"].startswith("RMA-")
    bad = api.post(f"/api/orders/{oid}/returns", json={"method": "by_bike", "lines": []})
    assert (bad.status_code, bad.json()["error"]["field"]) == (400, "method")
    assert api.post(f"/api/returns/{rid}/refund").json()["error"]["code"] == "illegal_transition"
    assert api.post(f"/api/returns/{rid}/receive").json()["status"] == "received"
    inspected = api.post(
        f"/api/returns/{rid}/inspect",
        json={"lines": [{"sku": "SKU-1", "condition": "as_new", "decision": "restock"}]},
    )
    assert inspected.status_code == 200, inspected.text
    refunded = api.post(f"/api/returns/{rid}/refund", json={"reference": "psp-r1"}).json()
    assert (refunded["status"], refunded["refund_total"]) == ("refunded", "10.00")
    assert api.get(f"/api/returns/{rid}").json() == refunded
    assert [x["id"] for x in api.get(f"/api/orders/{oid}/returns").json()["data"]] == [rid]
    got = api.get(f"/api/orders/{oid}").json()
    assert got["returns"][0]["status"] == "refunded"
    assert got["history"][-1]["kind"] == "refund_recorded"
    # the same steps from the CLI, for the second unit, returned by post
    out = run_cli(
        server.env, "orders", "returns", "request", oid, "--method", "by_post",
        "--line", "SKU-1:1", "--reason", "changed my mind",
    ).stdout  # fmt: skip
    rid2 = orjson.loads(out)["id"]
    run_cli(server.env, "orders", "returns", "receive", rid2)
    run_cli(server.env, "orders", "returns", "inspect", rid2, "--line", "SKU-1:write_off:damaged")
    shown = orjson.loads(run_cli(server.env, "orders", "returns", "refund", rid2).stdout)
    assert (shown["status"], shown["lines"][0]["decision"]) == ("refunded", "write_off")
    listed = orjson.loads(run_cli(server.env, "orders", "returns", "show", oid).stdout)
    assert [x["id"] for x in listed] == [rid, rid2]
    failed = run_cli(server.env, "orders", "returns", "receive", rid2, check=False)
    assert failed.returncode != 0
    assert "illegal_transition" in failed.stderr


def test_a_location_rejects_over_http_and_the_cli(api: httpx.Client, server: Server) -> None:
    order = api.post("/api/orders", json=order_body("REJ-1", lines=[("SKU-1", 1)])).json()
    oid, gid = order["id"], order["fulfilment_groups"][0]["id"]
    bad = api.post(f"/api/orders/{oid}/groups/{gid}/reject", json={"short": []})
    assert (bad.status_code, bad.json()["error"]["field"]) == (400, "reason")
    r = api.post(
        f"/api/orders/{oid}/groups/{gid}/reject",
        json={"reason": "short at picking", "short": [{"sku": "SKU-1", "missing": 1}]},
    )
    assert r.status_code == 200, r.text
    view = r.json()
    live = [g for g in view["fulfilment_groups"] if g["status"] == "allocated"]
    assert len(live) == 1
    assert live[0]["location_id"] != order["fulfilment_groups"][0]["location_id"]
    again = api.post(f"/api/orders/{oid}/groups/{gid}/reject", json={"reason": "again"})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "illegal_transition")
    # the CLI: the new source rejects too
    out = run_cli(server.env, "orders", "reject", oid, live[0]["id"], "--reason", "no staff").stdout
    after = orjson.loads(out)
    kinds = [h["kind"] for h in after["history"]]
    assert kinds.count("order_resourced") == 2


def test_goods_received_over_http_and_the_cli(api: httpx.Client, server: Server) -> None:
    before = api.get("/api/inventory", params={"sku": "SKU-2"}).json()
    zgz = next(x for x in before["locations"] if x["location_id"] == "ECOM-ZGZ")
    r = api.post(
        "/api/inventory/receipts",
        json={"location_id": "ECOM-ZGZ", "sku": "SKU-2", "quantity": 12, "reference": "PO-881"},
    )
    assert r.status_code == 201, r.text
    assert (r.json()["on_hand"], r.json()["available"]) == (
        zgz["on_hand"] + 12,
        zgz["available"] + 12,
    )
    # a location that never held the SKU gets its row
    r = api.post(
        "/api/inventory/receipts", json={"location_id": "WH-MAD", "sku": "SKU-4", "quantity": 3}
    )
    assert r.status_code == 201
    assert r.json()["on_hand"] == 3
    for body, status, field in (
        ({"location_id": "WH-MAD", "sku": "SKU-4", "quantity": 0}, 400, "quantity"),
        ({"location_id": "WH-MAD", "sku": "SKU-4", "quantity": "5"}, 400, "quantity"),
        ({"location_id": "WH-MAD", "sku": "SKU-4", "quantity": 10_000_000}, 400, "quantity"),
        ({"sku": "SKU-4", "quantity": 1}, 400, "location_id"),
        ({"location_id": "NOWHERE", "sku": "SKU-4", "quantity": 1}, 404, "location_id"),
        ({"location_id": "PP-VAL", "sku": "SKU-4", "quantity": 1}, 400, "location_id"),
        ({"location_id": "WH-MAD", "sku": "NOPE", "quantity": 1}, 404, "sku"),
    ):
        r = api.post("/api/inventory/receipts", json=body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["error"]["field"] == field
    out = run_cli(server.env, "inventory", "receive", "SKU-4", "WH-MAD", "2", "--reference", "T-9")
    assert "on hand 5" in out.stdout
    check = run_cli(server.env, "inventory", "check")
    assert check.returncode == 0, check.stdout
