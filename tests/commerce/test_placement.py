"""Order placement: what it caches is never stale, capacity is counted per local day,
refusals name their cause. Runs on SQLite and, under scripts/with-postgres.sh, on
PostgreSQL (where the write is one statement calling trayecto_place())."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.commerce.conftest import order_body, write
from trayecto import commerce
from trayecto.bootstrap import Platform
from trayecto.kernel import ConflictError, NotFoundError, ValidationError

LOCS = (
    "id,name,type,latitude,longitude,capabilities,daily_capacity,timezone\n"
    "NZ,Auckland warehouse,ecommerce_warehouse,40.40,-3.70,ship,1,Pacific/Auckland\n"
    "FAR,Far warehouse,central_warehouse,43.36,-8.41,ship,,\n"
)
PRODUCTS = "sku,name,price,currency\nP1,Uno,10.00,EUR\n"


@pytest.fixture
def shop(platform: Platform, tmp_path: Path) -> Platform:
    stock = "sku,location_id,on_hand\nP1,NZ,10\nP1,FAR,10\n"
    for kind, text in (("locations", LOCS), ("products", PRODUCTS), ("stock", stock)):
        report = commerce.import_catalogue(
            platform.engine, kind, write(tmp_path, f"{kind}.csv", text)
        )
        assert report.rejected == 0, Path(report.rejects_path).read_text()
    return platform


def _place(p: Platform, external_id: str, **kw: object) -> dict[str, object]:
    _, created, view = commerce.place_order(
        p.engine, commerce.check_order(order_body(external_id, lines=[("P1", 1)], **kw))
    )
    assert created
    assert view is not None
    return view


def test_capacity_is_counted_per_local_day(shop: Platform) -> None:
    first = _place(shop, "C-1")
    assert first["locations"] == ["NZ"]  # nearer to Madrid and cheaper
    with shop.engine.connect() as conn:
        [(loc, day, picks)] = conn.execute(
            sa.text("SELECT location_id, day, picks FROM location_load")
        )
    assert (loc, picks) == ("NZ", 1)
    assert str(day) == datetime.now(ZoneInfo("Pacific/Auckland")).date().isoformat()
    # its one pick of the (Auckland) day is booked: the next order goes elsewhere, and says why
    second = _place(shop, "C-2")
    assert second["locations"] == ["FAR"]
    nz = next(c for c in second["sourcing"]["candidates"] if c["location_id"] == "NZ")
    assert nz["excluded_because"] == "daily picking capacity used up"


def test_changed_locations_and_policies_are_seen_at_once(shop: Platform, tmp_path: Path) -> None:
    def locations(nz_active: bool) -> None:
        text = (
            "id,name,type,latitude,longitude,capabilities,timezone,active\n"
            f"NZ,Auckland,ecommerce_warehouse,40.40,-3.70,ship,Pacific/Auckland,{nz_active}\n"
            "FAR,Far,central_warehouse,43.36,-8.41,ship,,true\n"
        )
        path = write(tmp_path, "locations2.csv", text)
        assert commerce.import_catalogue(shop.engine, "locations", path).rejected == 0

    locations(nz_active=True)  # and no daily capacity any more
    assert _place(shop, "V-1")["locations"] == ["NZ"]
    assert _place(shop, "V-2")["locations"] == ["NZ"]  # the caches are warm now
    locations(nz_active=False)  # closed for good: the very next order must not use it
    view = _place(shop, "V-3")
    assert view["locations"] == ["FAR"]
    nz = next(c for c in view["sourcing"]["candidates"] if c["location_id"] == "NZ")
    assert nz["excluded_because"] == "inactive"
    # a channel policy keeping 9 units back: FAR has 9 left, so nothing is available
    commerce.set_policy(shop.engine, "web", {"safety_stock": 9})
    with pytest.raises(ConflictError) as refused:
        _place(shop, "V-4")
    assert refused.value.code == "insufficient_stock"
    commerce.set_policy(shop.engine, "web", {})
    assert _place(shop, "V-5")["locations"] == ["FAR"]


def test_refusals_name_their_cause(shop: Platform) -> None:
    with pytest.raises(ValidationError) as unknown:
        commerce.place_order(
            shop.engine, commerce.check_order(order_body("R-1", lines=[("P1", 1), ("NOPE", 1)]))
        )
    assert (unknown.value.code, unknown.value.message) == ("unknown_sku", "unknown SKU(s): NOPE")
    with pytest.raises(NotFoundError) as nowhere:
        commerce.place_order(
            shop.engine,
            commerce.check_order(
                order_body(
                    "R-2",
                    lines=[("P1", 1)],
                    fulfilment={"method": "click_and_collect", "location_id": "NOWHERE"},
                )
            ),
        )
    assert nowhere.value.code == "location_not_found"
    with pytest.raises(ConflictError) as short:
        commerce.place_order(
            shop.engine, commerce.check_order(order_body("R-3", lines=[("P1", 25)]))
        )
    assert short.value.code == "insufficient_stock"
    assert short.value.details["short"] == [{"sku": "P1", "wanted": 25, "available": 20}]
    # nothing of a refused order is kept
    assert commerce.find_orders(shop.engine) == []
    assert commerce.check_ledger(shop.engine) == []


def test_a_duplicate_answers_the_stored_order_even_when_stock_ran_out(shop: Platform) -> None:
    req = commerce.check_order(order_body("D-1", lines=[("P1", 20)]))
    oid, created, _ = commerce.place_order(shop.engine, req)
    assert created
    again, created_again, view = commerce.place_order(shop.engine, req)
    assert (again, created_again, view) == (oid, False, None)


def test_placing_survives_connections_the_database_dropped(shop: Platform) -> None:
    """When the server drops the connections the order store holds (a restart, a
    failover), the next order still goes through (the pool pings a connection before use)."""
    e = shop.engine
    if e.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to drop connections")
    first, created, _ = commerce.place_order(
        e, commerce.check_order(order_body("K-1", lines=[("P1", 1)]))
    )
    assert created
    other = sa.create_engine(e.url)  # not from the pool the store uses
    with other.connect() as conn:
        dropped = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    other.dispose()
    assert dropped >= 1  # the store's idle connection, at least
    second, created, _ = commerce.place_order(
        e, commerce.check_order(order_body("K-2", lines=[("P1", 1)]))
    )
    assert created
    assert second != first
    assert commerce.check_ledger(e) == []
