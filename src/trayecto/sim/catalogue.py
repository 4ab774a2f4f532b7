"""The retailer's catalogue: products with variants, prices per channel, stock per location.

Built once per run from the scenario and the seed; small (a few hundred products), so it
is held in memory and written to ``products.csv``, ``locations.csv`` and ``stock.csv``.
Prices are integer cents.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trayecto.sim.scenario import Scenario

__all__ = ["Catalogue", "Product", "build_catalogue", "cents"]

# Spanish VAT: food at the reduced rate, everything else at the general one.
VAT = {"aceites": 10, "gourmet": 10}
GENERAL_VAT = 21


def cents(value: int) -> str:
    """Integer cents as a decimal string: 1290 → ``"12.90"``."""
    return f"{value // 100}.{value % 100:02d}"


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    group: str
    name: str
    category: str
    category_name: str
    line: str
    variant: str
    prices: dict[str, int]  # channel -> cents
    vat: int
    fulfilled_by: str
    image_url: str
    url: str
    # The part of a Segment ``products[]`` item that never changes, built once.
    segment: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Catalogue:
    products: tuple[Product, ...]
    by_category: dict[str, tuple[Product, ...]]
    # Cumulative popularity weights per category, for ``random.choices(cum_weights=...)``.
    popularity: dict[str, list[float]]
    stock: tuple[tuple[str, str, int], ...]  # sku, location id, on hand

    def pick(self, rng: random.Random, category: str, k: int) -> list[Product]:
        """``k`` distinct products of ``category``, popular ones more often."""
        pool = self.by_category[category]
        k = min(k, len(pool))
        chosen: list[Product] = []
        cum = self.popularity[category]
        while len(chosen) < k:
            p = rng.choices(pool, cum_weights=cum)[0]
            if p not in chosen:
                chosen.append(p)
        return chosen


def _slug(text: str) -> str:
    from trayecto.sim.noise import ascii_fold

    return "-".join("".join(c if c.isalnum() else " " for c in ascii_fold(text).lower()).split())


def build_catalogue(scenario: Scenario, seed: int) -> Catalogue:
    rng = random.Random(f"catalogue:{seed}")
    factors = dict(scenario.channel_prices)
    host = f"https://www.{scenario.domain}"
    products: list[Product] = []
    by_category: dict[str, tuple[Product, ...]] = {}
    popularity: dict[str, list[float]] = {}
    for cat in scenario.categories:
        items: list[Product] = []
        weights: list[float] = []
        code = cat.id[:3].upper()
        for li, line in enumerate(cat.lines):
            base = rng.uniform(*cat.price_range)
            line_pop = 1.0 / (li + 1) ** 0.8  # a few bestsellers, a long tail
            for vi, (variant, factor) in enumerate(cat.variants):
                price = base * factor
                # Shelf prices end in .50, .90 or .95.
                euros = int(price)
                tail = rng.choice((50, 90, 95))
                list_price = euros * 100 + tail
                prices = {ch: round(list_price * f / 5.0) * 5 for ch, f in factors.items()}
                sku = f"{code}-{li + 1:03d}-{vi + 1}"
                name = f"{line} {variant}"
                slug = _slug(name)
                product = Product(
                    sku=sku,
                    group=f"{code}-{li + 1:03d}",
                    name=name,
                    category=cat.id,
                    category_name=cat.name,
                    line=line,
                    variant=variant,
                    prices=prices,
                    vat=VAT.get(cat.id, GENERAL_VAT),
                    fulfilled_by=cat.fulfilled_by,
                    image_url=f"https://img.{scenario.domain}/p/{sku}.jpg",
                    url=f"{host}/p/{slug}",
                    segment={
                        "product_id": sku,
                        "sku": sku,
                        "name": name,
                        "category": cat.name,
                        "brand": scenario.brand,
                        "variant": variant,
                    },
                )
                items.append(product)
                weights.append(line_pop * rng.uniform(0.5, 1.5))
        by_category[cat.id] = tuple(items)
        total = 0.0
        cum = []
        for w in weights:
            total += w
            cum.append(total)
        popularity[cat.id] = cum
        products.extend(items)
    return Catalogue(tuple(products), by_category, popularity, _stock(scenario, products, rng))


def _stock(
    scenario: Scenario, products: list[Product], rng: random.Random
) -> tuple[tuple[str, str, int], ...]:
    rows: list[tuple[str, str, int]] = []
    for loc in scenario.locations:
        for p in products:
            if loc.type == "shop":
                carried = rng.random() < 0.7
                qty = rng.randint(0, 24) if carried else 0
            elif loc.type == "supplier":
                carried = p.fulfilled_by == loc.id
                qty = rng.randint(200, 2000)
            elif loc.type == "warehouse":
                carried = p.fulfilled_by == loc.id
                qty = rng.randint(300, 5000)
            elif loc.type == "ecommerce_warehouse":
                carried = True
                qty = rng.randint(20, 600)
            elif loc.type == "dark_store":
                carried = rng.random() < 0.3
                qty = rng.randint(2, 40)
            else:
                carried = False
                qty = 0
            if carried:
                rows.append((p.sku, loc.id, qty))
    return tuple(rows)


# ``locations.csv`` speaks the commerce importer's contract (``trayecto import locations``):
# the scenario's own words for types, capabilities and days are mapped to it.
_LOCATION_TYPES = {"warehouse": "central_warehouse", "supplier": "supplier_dropship"}
_CAPABILITIES = {
    "ship_from": "ship",
    "drop_ship": "ship",
    "pickup": "click_and_collect",
    "returns": "returns",
}  # "sell", "express", "replenish": how the simulator behaves, not fulfilment capabilities
_DAY_NAMES = {"mo": "mon", "tu": "tue", "we": "wed", "th": "thu", "fr": "fri", "sa": "sat"}
_DAY_NAMES["su"] = "sun"


def _capabilities(capabilities: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(_CAPABILITIES[c] for c in capabilities if c in _CAPABILITIES))


def _hours(opening_hours: str) -> str:
    """``"Mo-Sa 10:00-14:00,17:00-21:00; Su 12:00-20:00"`` (OpenStreetMap's days) →
    ``"mon-sat 10:00-21:00; sun 12:00-20:00"``. The commerce model holds one span a day, so
    a shop that closes at midday is written open from its first opening to its last
    closing (the simulator itself keeps the split hours)."""
    parts = []
    for part in opening_hours.split(";"):
        days, _, spans = part.strip().partition(" ")
        if not days:
            continue
        named = "-".join(_DAY_NAMES.get(d.lower(), d.lower()) for d in days.split("-"))
        times = [t for span in spans.split(",") for t in span.strip().split("-") if t]
        parts.append(f"{named} {times[0]}-{times[-1]}" if times else named)
    return "; ".join(parts)


def write_catalogue(scenario: Scenario, catalogue: Catalogue, root: Path) -> None:
    """``products.csv`` and ``locations.csv`` under ``root`` (``stock.csv`` is written
    after the run: ``write_stock``)."""
    channels = [ch for ch, _ in scenario.channel_prices]
    with (root / "products.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(
            ["sku", "name", "price", "currency", "category", "product_group", "line", "variant"]
            + ["vat_rate", "fulfilled_by", "url"]
            + [f"price_{ch}" for ch in channels]
        )
        for p in catalogue.products:
            w.writerow(
                [p.sku, p.name, cents(p.prices["web"]), scenario.currency, p.category, p.group]
                + [p.line, p.variant, p.vat, p.fulfilled_by, p.url]
                + [cents(p.prices[ch]) for ch in channels]
            )
    with (root / "locations.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(
            [
                "id",
                "name",
                "type",
                "latitude",
                "longitude",
                "capabilities",
                "opening_hours",
                "address",
                "city",
                "region",
                "country",
            ]
        )
        for loc in scenario.locations:
            w.writerow(
                [
                    loc.id,
                    loc.name,
                    _LOCATION_TYPES.get(loc.type, loc.type),
                    f"{loc.latitude:.4f}",
                    f"{loc.longitude:.4f}",
                    "|".join(_capabilities(loc.capabilities)),
                    _hours(loc.opening_hours),
                    loc.address,
                    loc.city,
                    loc.region,
                    "ES",
                ]
            )


#: Units a shop keeps on the shelf above what it sells, per SKU it sells: commerce's default
#: walk-in reserve (``Policy.walk_in_reserve``), so a till sale is never sourced elsewhere
#: because the shop's last units are kept for walk-in customers.
SHELF_MARGIN = 2


class Demand:
    """Units sold from each location over the run, so that ``stock.csv`` holds an opening
    stock that serves them: the shelf level drawn for the catalogue plus the window's sales
    there (replenishment during the window is not simulated; the year's goods are on hand
    at its start), and in shops ``SHELF_MARGIN`` more. Every (SKU, stocking location) counter exists from the start, so memory
    does not grow with the customers."""

    def __init__(self, scenario: Scenario, catalogue: Catalogue) -> None:
        held = [loc.id for loc in scenario.locations if loc.type != "pickup_point"]
        self.shops = frozenset(loc.id for loc in scenario.locations if loc.type == "shop")
        self.units = {(p.sku, loc): 0 for p in catalogue.products for loc in held}
        self.locations = held

    def add(self, sku: str, location_id: str, quantity: int) -> None:
        self.units[(sku, location_id)] += quantity

    def opening_stock(self, catalogue: Catalogue) -> list[tuple[str, str, int]]:
        """The drawn rows with the units sold there added, then rows for what was sold
        where nothing was drawn (a shop selling a product it was not given)."""
        left = {
            k: n + SHELF_MARGIN if n and k[1] in self.shops else n for k, n in self.units.items()
        }
        rows = [(sku, loc, qty + left.pop((sku, loc), 0)) for sku, loc, qty in catalogue.stock]
        rows += [
            (p.sku, loc, left[(p.sku, loc)])
            for p in catalogue.products
            for loc in self.locations
            if left.get((p.sku, loc), 0) > 0
        ]
        return rows


def write_stock(root: Path, rows: Sequence[tuple[str, str, int]]) -> None:
    """``stock.csv``: the opening count per SKU and location (see ``Demand``)."""
    with (root / "stock.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["sku", "location_id", "on_hand"])
        w.writerows(rows)
