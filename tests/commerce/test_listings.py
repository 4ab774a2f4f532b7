"""Per-channel listings: import with rejects, consistency rules, export feeds; over the
domain API, the CLI and HTTP. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import orjson
import pytest

from tests.commerce.conftest import LOCATIONS, PRODUCTS, STOCK, write
from tests.helpers import Server, last_line, run_cli
from trayecto import commerce
from trayecto.bootstrap import Platform
from trayecto.kernel import ValidationError

IMG = "https://cdn.example.es/p/{}.jpg"
LISTINGS = f"""channel,sku,price,currency,title,description,images,active
web,SKU-1,89.95,EUR,Zapatillas Vela 3,Ligeras,{IMG.format(1)}|{IMG.format(2)},true
marketplace,SKU-1,79.00,EUR,Vela 3 running,Ligeras y rápidas,{IMG.format(1)},true
marketplace,SKU-2,129.00,,,,,true
marketplace,SKU-5,10.00,EUR,Sin stock,Nada,{IMG.format(5)},true
marketplace,SKU-3,54.50,EUR,Mochila,Grande,{IMG.format(3)},false
"""


@pytest.fixture
def listed(retailer: Platform, tmp_path: Path) -> Platform:
    extra = write(tmp_path, "p5.csv", "sku,name,price,currency\nSKU-5,Calcetines,9.95,EUR\n")
    commerce.import_catalogue(retailer.engine, "products", extra)
    report = commerce.import_catalogue(
        retailer.engine, "listings", write(tmp_path, "listings.csv", LISTINGS)
    )
    assert (report.stored, report.rejected) == (5, 0), Path(report.rejects_path).read_text()
    return retailer


def _issues(p: Platform, channel: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for i in commerce.listing_issues(p.engine, channel=channel):
        out.setdefault(i["sku"], []).append(i["code"])
    return out


def test_rules_flag_price_content_and_stock(listed: Platform, tmp_path: Path) -> None:
    assert _issues(listed, "web") == {}
    assert _issues(listed, "marketplace") == {
        "SKU-1": ["price_deviation"],  # 79.00 is -12.2% from 89.95
        "SKU-2": ["missing_title", "missing_description", "missing_images"],
        "SKU-5": ["no_sellable_stock"],
    }  # SKU-3 is inactive: no stock needed
    [dev] = [i for i in commerce.listing_issues(listed.engine) if i["sku"] == "SKU-1"]
    assert dev["deviation_pct"] == pytest.approx(-12.17, abs=0.01)
    # a wider margin for the marketplace, no images required there
    commerce.set_listing_rules(
        listed.engine, "marketplace", {"price_margin_pct": 15, "require_images": False}
    )
    assert _issues(listed, "marketplace")["SKU-2"] == ["missing_title", "missing_description"]
    assert "SKU-1" not in _issues(listed, "marketplace")
    with pytest.raises(ValidationError):
        commerce.set_listing_rules(listed.engine, "marketplace", {"price_margn_pct": 1})
    # importing the same products again changes nothing; a real change makes listings stale
    commerce.import_catalogue(listed.engine, "products", write(tmp_path, "p.csv", PRODUCTS))
    assert _issues(listed, "web") == {}
    changed = PRODUCTS.replace("Zapatillas Vela 3,89.95", "Zapatillas Vela 3,94.95")
    commerce.import_catalogue(listed.engine, "products", write(tmp_path, "p2.csv", changed))
    assert _issues(listed, "web") == {"SKU-1": ["stale_content"]}
    # the product deactivated while its listing is active
    inactive = "sku,name,price,currency,active\nSKU-5,Calcetines,9.95,EUR,false\n"
    commerce.import_catalogue(listed.engine, "products", write(tmp_path, "p3.csv", inactive))
    assert "inactive_product" in _issues(listed, "marketplace")["SKU-5"]


def test_no_sellable_stock_counts_what_can_be_sold(listed: Platform) -> None:
    [sev] = [v for v in commerce.list_listings(listed.engine, channel="marketplace", sku="SKU-2")]
    assert sev["available"] == 6  # 2 in Zaragoza + 4 in Sevilla
    commerce.set_listing_rules(listed.engine, "marketplace", {"min_available": 7})
    assert "no_sellable_stock" in _issues(listed, "marketplace")["SKU-2"]
    commerce.set_policy(listed.engine, "marketplace", {"safety_stock": 2})  # kept back
    [sev] = commerce.list_listings(listed.engine, channel="marketplace", sku="SKU-2")
    assert sev["available"] == 2


def test_import_rejects_bad_rows_and_keeps_good_ones(retailer: Platform, tmp_path: Path) -> None:
    bad = (
        "channel,sku,price,images\n"
        "web,SKU-1,10.00,\n"
        "tiktok,SKU-1,10.00,\n"
        "web,NOPE,10.00,\n"
        "web,SKU-2,ten,\n"
        "web,SKU-3,5.00,ftp://x/y.jpg\n"
        "app,SKU-2,129.00,\n"
    )
    report = commerce.import_catalogue(retailer.engine, "listings", write(tmp_path, "l.csv", bad))
    assert (report.stored, report.rejected) == (2, 4)
    rejects = [orjson.loads(x) for x in Path(report.rejects_path).read_bytes().splitlines()]
    assert [
        (r["line"], r["code"], r["field"]) for r in sorted(rejects, key=lambda r: r["line"])
    ] == [
        (3, "invalid", "channel"),
        (4, "unknown_sku", "sku"),
        (5, "invalid_amount", "price"),
        (6, "invalid", "images"),
    ]
    [web] = commerce.list_listings(retailer.engine, channel="web")
    assert (web["currency"], web["title"]) == ("EUR", None)  # the product's currency


def test_the_export_feed(listed: Platform) -> None:
    feed = commerce.export_feed(listed.engine, "marketplace")
    assert isinstance(feed, list)
    assert [r["sku"] for r in feed] == ["SKU-1", "SKU-2", "SKU-5"]  # active only
    sku2 = feed[1]
    assert (sku2["title"], sku2["availability"], sku2["available"]) == (
        "Chaqueta Cierzo", "in_stock", 6,
    )  # fmt: skip
    assert feed[2]["availability"] == "out_of_stock"
    text = commerce.export_feed(listed.engine, "marketplace", fmt="csv", include_inactive=True)
    assert isinstance(text, str)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["sku"] for r in rows] == ["SKU-1", "SKU-2", "SKU-3", "SKU-5"]
    assert rows[0]["images"] == IMG.format(1)
    assert rows[1]["issues"] == "missing_title|missing_description|missing_images"
    assert rows[2]["active"] == "False"


@pytest.fixture
def api(server: Server, tmp_path: Path) -> httpx.Client:
    for kind, text in (("locations", LOCATIONS), ("products", PRODUCTS), ("stock", STOCK)):
        run_cli(server.env, "import", kind, str(write(tmp_path, f"{kind}.csv", text)))
    token = last_line(run_cli(server.env, "tokens", "add", "ops").stdout)
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


@pytest.mark.e2e
def test_listings_over_http_and_the_cli(api: httpx.Client, server: Server, tmp_path: Path) -> None:
    r = api.put(
        "/api/listings/app/SKU-1",
        json={"price": "99.95", "title": "Vela 3", "description": "Ligeras",
              "images": [IMG.format(1)]},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert [i["code"] for i in r.json()["issues"]] == ["price_deviation"]
    bad = api.put("/api/listings/app/SKU-1", json={"price": 99.95})
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_amount")
    rules = api.put("/api/channels/app/listing-rules", json={"price_margin_pct": 20})
    assert rules.json()["rules"]["price_margin_pct"] == 20
    assert api.get("/api/listings/issues", params={"channel": "app"}).json()["data"] == []
    got = api.get("/api/listings", params={"channel": "app"}).json()["data"]
    assert [(x["sku"], x["available"]) for x in got] == [("SKU-1", 18)]
    feed = api.get("/api/channels/app/feed").json()
    assert feed["data"][0]["title"] == "Vela 3"
    as_csv = api.get("/api/channels/app/feed", params={"format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text.splitlines()[0].startswith("sku,title,description,price")
    assert api.get("/api/channels/nope/feed").status_code == 404
    # the CLI: import, check (exit 1 with issues), export
    path = write(tmp_path, "l.csv", "channel,sku,price\nmarketplace,SKU-2,129.00\n")
    assert "1 stored" in run_cli(server.env, "import", "listings", str(path)).stdout
    checked = run_cli(server.env, "listings", "check", "--channel", "marketplace", check=False)
    assert checked.returncode == 1
    assert "missing_title" in checked.stdout
    out = tmp_path / "feed.csv"
    run_cli(server.env, "listings", "export", "marketplace", "--out", str(out))
    assert out.read_text().splitlines()[1].startswith("SKU-2,Chaqueta Cierzo,")
    assert run_cli(server.env, "listings", "check", "--channel", "app").returncode == 0
