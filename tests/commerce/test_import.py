"""CSV import of locations, products and stock through the real CLI, with rejects."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from tests.commerce.conftest import LOCATIONS, PRODUCTS, STOCK, write
from tests.helpers import run_cli
from trayecto import commerce
from trayecto.bootstrap import Platform


def _rejects(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def test_cli_imports_each_kind_and_reruns_are_harmless(env: dict[str, str], tmp_path: Path) -> None:
    for kind, text in (("locations", LOCATIONS), ("products", PRODUCTS), ("stock", STOCK)):
        path = write(tmp_path, f"{kind}.csv", text)
        first = run_cli(env, "import", kind, str(path))
        assert "0 rejected" in first.stdout
        run_cli(env, "import", kind, str(path))
    shown = run_cli(env, "inventory", "show", "SKU-1").stdout
    assert "WH-MAD" in shown
    assert "10" in shown
    assert "ledger balanced" in run_cli(env, "inventory", "check").stdout


def test_bad_rows_are_rejected_with_line_and_reason_and_good_rows_kept(
    platform: Platform, tmp_path: Path
) -> None:
    locs = write(
        tmp_path,
        "locations.csv",
        LOCATIONS
        + "BAD-1,Sin tipo,warehouse,40,-3,ship,,,,\n"
        + "BAD-2,Lejos,shop,95,-3,ship,,,,\n"
        + "BAD-3,Rara,shop,40,-3,fly,,,,\n"
        + "OK-6,Tienda Bilbao,shop,43.26,-2.93,click_and_collect,mon-fri 09:30-20:00; sat 10:00-14:00,40,,\n",
    )
    report = commerce.import_catalogue(platform.engine, "locations", locs)
    assert (report.rows, report.stored, report.rejected) == (9, 6, 3)
    assert [(r["line"], r["field"]) for r in _rejects(Path(report.rejects_path))] == [
        (7, "type"),
        (8, "latitude"),
        (9, "capabilities"),
    ]
    bilbao = commerce.get_location(platform.engine, "OK-6")
    assert bilbao.opening_hours is not None
    assert bilbao.opening_hours["sat"] == ["10:00", "14:00"]
    assert bilbao.daily_capacity == 40

    prods = write(
        tmp_path,
        "products.csv",
        PRODUCTS + "SKU-9,Sin precio,,EUR,\nSKU-10,Flotante,1.999,EUR,\nSKU-11,Dólar,5.00,usd,\n",
    )
    report = commerce.import_catalogue(platform.engine, "products", prods)
    assert (report.stored, report.rejected) == (5, 2)
    assert [r["field"] for r in _rejects(Path(report.rejects_path))] == ["price", "price"]
    assert commerce.get_product(platform.engine, "SKU-11").currency == "USD"

    stock = write(
        tmp_path,
        "stock.csv",
        STOCK + "SKU-404,WH-MAD,3\nSKU-1,NOWHERE,3\nSKU-1,WH-MAD,-2\nSKU-1,WH-MAD,4,extra\n",
    )
    report = commerce.import_catalogue(platform.engine, "stock", stock)
    assert (report.stored, report.rejected) == (8, 4)
    codes = [(r["line"], r["code"]) for r in _rejects(Path(report.rejects_path))]
    assert sorted(codes) == [
        (10, "unknown_sku"),
        (11, "unknown_location"),
        (12, "invalid"),
        (13, "bad_row"),
    ]
    assert commerce.check_ledger(platform.engine) == []


def test_a_count_records_only_the_difference(platform: Platform, tmp_path: Path) -> None:
    for kind, text in (("locations", LOCATIONS), ("products", PRODUCTS), ("stock", STOCK)):
        commerce.import_catalogue(platform.engine, kind, write(tmp_path, f"{kind}.csv", text))
    recount = write(
        tmp_path, "recount.csv", "sku,location_id,on_hand,safety_stock\nSKU-1,WH-MAD,7,1\n"
    )
    commerce.import_catalogue(platform.engine, "stock", recount)
    moves = commerce.movements(platform.engine, "SKU-1", "WH-MAD")
    assert [(m.kind.value, m.quantity) for m in moves] == [("count", 10), ("count", -3)]
    [level] = [
        x for x in commerce.stock_levels(platform.engine, ["SKU-1"]) if x.location_id == "WH-MAD"
    ]
    assert (level.on_hand, level.safety_stock, level.available) == (7, 1, 6)


def test_missing_column_fails_the_whole_file(env: dict[str, str], tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", "sku,name,currency\nA,B,EUR\n")
    proc = run_cli(env, "import", "products", str(path), check=False)
    assert proc.returncode == 2
    assert "missing_column" in proc.stderr


def test_an_import_refreshes_the_planners_statistics(platform: Platform, tmp_path: Path) -> None:
    """PostgreSQL plans from statistics that autovacuum refreshes only a while after a
    table changes; an import refreshes them for the tables it loaded, so the next orders
    are planned for what is there (a file that stores nothing leaves them alone)."""
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("SQLite plans without sampled statistics")

    def analyzed() -> dict[str, bool]:
        with platform.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables"
                    " WHERE relname IN ('locations', 'products', 'stock', 'stock_movements')"
                )
            ).all()
        return {name: done for name, done in rows}

    assert not any(analyzed().values())
    empty = write(tmp_path, "none.csv", "id,name,type,latitude,longitude,capabilities\n")
    commerce.import_catalogue(platform.engine, "locations", empty)
    assert not any(analyzed().values())
    for kind, text in (("locations", LOCATIONS), ("products", PRODUCTS)):
        commerce.import_catalogue(platform.engine, kind, write(tmp_path, f"{kind}.csv", text))
    assert analyzed() == {
        "locations": True, "products": True, "stock": False, "stock_movements": False
    }  # fmt: skip
    commerce.import_catalogue(platform.engine, "stock", write(tmp_path, "stock.csv", STOCK))
    assert all(analyzed().values())
