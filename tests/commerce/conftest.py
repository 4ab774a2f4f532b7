"""A small retailer for the commerce tests: two warehouses, two shops, a pickup point."""

from __future__ import annotations

from pathlib import Path

import pytest

from trayecto import commerce
from trayecto.bootstrap import Platform

LOCATIONS = """id,name,type,latitude,longitude,capabilities,opening_hours,daily_capacity,cutoff,slots
WH-MAD,Almacén central Madrid,central_warehouse,40.42,-3.70,ship|returns,,,18:00,
ECOM-ZGZ,Almacén e-commerce Zaragoza,ecommerce_warehouse,41.65,-0.89,ship,,,17:00,09:00-14:00|16:00-21:00
SHOP-BCN,Tienda Barcelona Gràcia,shop,41.40,2.16,ship|click_and_collect|ship_to_store|returns,mon-sat 10:00-21:00,,,
SHOP-SEV,Tienda Sevilla Centro,shop,37.39,-5.99,click_and_collect|ship_to_store|returns,mon-sat 10:00-21:00,,,
PP-VAL,Punto de recogida Valencia,pickup_point,39.47,-0.38,,,,,
"""
PRODUCTS = """sku,name,price,currency,category
SKU-1,Zapatillas Vela 3,89.95,EUR,Calzado
SKU-2,Chaqueta Cierzo,129.00,EUR,Ropa
SKU-3,Mochila Albarracín,54.50,EUR,Accesorios
SKU-4,Gafas Cadaqués,69.00,EUR,Accesorios
"""
STOCK = """sku,location_id,on_hand
SKU-1,WH-MAD,10
SKU-1,ECOM-ZGZ,5
SKU-1,SHOP-BCN,3
SKU-2,ECOM-ZGZ,2
SKU-2,SHOP-SEV,4
SKU-3,SHOP-BCN,6
SKU-3,WH-MAD,1
SKU-4,SHOP-SEV,1
"""


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def retailer(platform: Platform, tmp_path: Path) -> Platform:
    for kind, text in (("locations", LOCATIONS), ("products", PRODUCTS), ("stock", STOCK)):
        report = commerce.import_catalogue(
            platform.engine, kind, write(tmp_path, f"{kind}.csv", text)
        )
        assert report.rejected == 0, Path(report.rejects_path).read_text()
    return platform


def order_body(
    external_id: str = "W-1",
    *,
    channel: str = "web",
    lines: list[tuple[str, int]] | None = None,
    fulfilment: dict[str, object] | None = None,
) -> dict[str, object]:
    return {
        "channel": channel,
        "external_id": external_id,
        "customer": {"email": "  Ana.Garcia@Example.ES ", "phone": "600 111 222"},
        "lines": [
            {"sku": sku, "quantity": q, "unit_price": "10.00"}
            for sku, q in (lines or [("SKU-1", 1)])
        ],
        "fulfilment": fulfilment
        or {
            "method": "delivery",
            "address": {
                "line1": "Calle Mayor 1",
                "postcode": "28013",
                "city": "Madrid",
                "country": "ES",
            },
        },
    }
