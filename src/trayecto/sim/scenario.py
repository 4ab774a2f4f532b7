"""The scenario: the retailer, its customers' personas and the noise, read from YAML.

``load_scenario(path)`` deep-merges a user's YAML file onto the packaged ``default.yaml``
(mappings merge key by key, lists and scalars replace), so a scenario file holds only what
it changes. Everything is checked here, once, with errors naming the field; the generator
then trusts the frozen dataclasses it gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from trayecto.kernel import ValidationError

__all__ = [
    "Category",
    "City",
    "Friction",
    "Location",
    "Persona",
    "Scenario",
    "SourceSpec",
    "default_scenario_text",
    "load_scenario",
]

STAGES = ("online", "ropo", "showroom", "shop", "marketplace")
DIGITAL = ("web", "app")


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One source the simulator writes for: a channel, or one shop's tills."""

    key: str  # "web", "app", … or "store:MAD-SERRANO"
    name: str
    channel: str
    location_id: str | None

    @property
    def slug(self) -> str:
        return self.key.replace(":", "-").lower()


@dataclass(frozen=True, slots=True)
class Location:
    id: str
    name: str
    type: str  # shop | warehouse | ecommerce_warehouse | dark_store | supplier | pickup_point
    city: str
    region: str
    address: str
    latitude: float
    longitude: float
    opening_hours: str
    capabilities: tuple[str, ...]

    @property
    def open_sunday(self) -> bool:
        return "Su" in self.opening_hours and "Su off" not in self.opening_hours


@dataclass(frozen=True, slots=True)
class City:
    name: str
    region: str
    postcode_prefix: str
    weight: float
    shop: str | None  # the shop customers of this city use, if any
    pickup_point: str | None


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    name: str
    lines: tuple[str, ...]
    variants: tuple[tuple[str, float], ...]  # (variant name, price factor)
    price_range: tuple[float, float]
    queries: tuple[str, ...]
    fulfilled_by: str  # the location that ships it (a warehouse or the drop-ship supplier)


@dataclass(frozen=True, slots=True)
class Persona:
    id: str
    label: str
    share: float
    occasions_per_year: float
    categories: tuple[tuple[str, float], ...]
    paths: tuple[tuple[str, float], ...]  # purchase patterns, see STAGES
    app_rate: float
    account_rate: float
    loyalty_rate: float
    email_optin: float
    basket: tuple[int, int]  # min, max distinct products in a basket
    seasons: tuple[tuple[str, float], ...]  # season id -> multiplier


@dataclass(frozen=True, slots=True)
class Friction:
    channel: str
    step: int
    name: str
    extra_drop: float


@dataclass(frozen=True, slots=True)
class Scenario:
    brand: str
    domain: str
    end: datetime
    currency: str
    sources: tuple[SourceSpec, ...]
    locations: tuple[Location, ...]
    cities: tuple[City, ...]
    categories: tuple[Category, ...]
    channel_prices: tuple[tuple[str, float], ...]
    personas: tuple[Persona, ...]
    secondary_persona_rate: float
    seasons: tuple[tuple[str, int, int], ...]  # id, first and last day of year (inclusive)
    noise: dict[str, float]
    phone_formats: tuple[tuple[str, float], ...]
    funnel: dict[str, float]
    checkout_steps: tuple[tuple[str, float], ...]  # step name, share that continues
    friction: tuple[Friction, ...]
    rates: dict[str, float]
    reviews: dict[int, tuple[str, ...]]
    mentions: dict[str, tuple[str, ...]]
    raw: dict[str, Any]

    def source(self, key: str) -> SourceSpec:
        for s in self.sources:
            if s.key == key:
                return s
        raise KeyError(key)

    def location(self, location_id: str) -> Location:
        for loc in self.locations:
            if loc.id == location_id:
                return loc
        raise KeyError(location_id)

    @property
    def shops(self) -> tuple[Location, ...]:
        return tuple(loc for loc in self.locations if loc.type == "shop")


def default_scenario_text() -> str:
    return resources.files("trayecto.sim").joinpath("default.yaml").read_text(encoding="utf-8")


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for k, v in over.items():
            merged[k] = _merge(base.get(k), v) if k in base else v
        return merged
    return over


def load_scenario(path: Path | None = None) -> Scenario:
    """The default scenario, with ``path`` (a YAML file) merged over it when given."""
    data = yaml.safe_load(default_scenario_text())
    if path is not None:
        try:
            user = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValidationError(
                f"cannot read scenario {path}: {exc.strerror}",
                code="scenario_not_found",
                field="scenario",
            ) from None
        except yaml.YAMLError as exc:
            raise ValidationError(
                f"scenario {path} is not valid YAML: {exc}",
                code="invalid_scenario",
                field="scenario",
            ) from None
        if user is not None and not isinstance(user, dict):
            raise ValidationError(
                "a scenario file must be a YAML mapping", code="invalid_scenario", field="scenario"
            )
        data = _merge(data, user or {})
    return parse_scenario(data)


class _Reader:
    """Typed access to the YAML tree; every error names the dotted field."""

    def __init__(self, data: Any, where: str = "") -> None:
        self.data = data
        self.where = where

    def fail(self, key: str, what: str) -> ValidationError:
        field = f"{self.where}.{key}" if self.where else key
        return ValidationError(f"scenario {field}: {what}", code="invalid_scenario", field=field)

    def get(self, key: str) -> Any:
        if not isinstance(self.data, dict) or key not in self.data:
            raise self.fail(key, "is missing")
        return self.data[key]

    def sub(self, key: str) -> _Reader:
        return _Reader(self.get(key), f"{self.where}.{key}" if self.where else key)

    def text(self, key: str) -> str:
        value = self.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "must be a non-empty string")
        return value

    def num(self, key: str, lo: float = 0.0, hi: float = float("inf")) -> float:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise self.fail(key, f"must be a number between {lo} and {hi}")
        return float(value)

    def rate(self, key: str) -> float:
        return self.num(key, 0.0, 1.0)

    def items(self) -> list[tuple[str, _Reader]]:
        if not isinstance(self.data, dict) or not self.data:
            raise ValidationError(
                f"scenario {self.where}: must be a non-empty mapping",
                code="invalid_scenario",
                field=self.where,
            )
        return [(str(k), _Reader(v, f"{self.where}.{k}")) for k, v in self.data.items()]

    def seq(self) -> list[_Reader]:
        if not isinstance(self.data, list) or not self.data:
            raise ValidationError(
                f"scenario {self.where}: must be a non-empty list",
                code="invalid_scenario",
                field=self.where,
            )
        return [_Reader(v, f"{self.where}[{i}]") for i, v in enumerate(self.data)]

    def weights(self) -> tuple[tuple[str, float], ...]:
        out = tuple((k, r.data) for k, r in self.items())
        for k, w in out:
            if isinstance(w, bool) or not isinstance(w, int | float) or w < 0:
                raise self.fail(k, "must be a weight (a number ≥ 0)")
        if sum(w for _, w in out) <= 0:
            raise self.fail("", "needs a positive weight")
        return tuple((k, float(w)) for k, w in out)

    def texts(self) -> tuple[str, ...]:
        return tuple(str(r.data) for r in self.seq())


def _day_of_year(text: str, r: _Reader, key: str) -> int:
    try:
        return date.fromisoformat(f"2021-{text}").timetuple().tm_yday
    except ValueError:
        raise r.fail(key, f"{text!r} is not a MM-DD date") from None


def parse_scenario(data: Any) -> Scenario:
    """Check and freeze a scenario tree (the merged YAML)."""
    r = _Reader(data)
    brand = r.sub("brand")
    try:
        end_day = date.fromisoformat(str(r.get("end_date")))
    except ValueError:
        raise r.fail("end_date", "must be a date (YYYY-MM-DD)") from None

    locations = tuple(
        Location(
            id=x.text("id"),
            name=x.text("name"),
            type=x.text("type"),
            city=x.text("city"),
            region=x.text("region"),
            address=x.text("address"),
            latitude=x.num("latitude", -90, 90),
            longitude=x.num("longitude", -180, 180),
            opening_hours=x.text("opening_hours"),
            capabilities=tuple(str(c) for c in x.get("capabilities")),
        )
        for x in r.sub("locations").seq()
    )
    by_id = {loc.id: loc for loc in locations}
    if len(by_id) != len(locations):
        raise r.fail("locations", "ids must be unique")
    if not any(loc.type == "shop" for loc in locations):
        raise r.fail("locations", "needs at least one shop")

    channels = r.sub("sources")
    sources = [
        SourceSpec(key, x.text("name"), x.text("channel"), None) for key, x in channels.items()
    ]
    for needed in ("web", "app", "marketplace", "call_center", "whatsapp", "social", "email"):
        if needed not in {s.key for s in sources}:
            raise channels.fail(needed, "is missing")
    prefix = r.text("store_source_prefix")
    sources += [
        SourceSpec(f"store:{loc.id}", f"{prefix}{loc.name}", "store", loc.id)
        for loc in locations
        if loc.type == "shop"
    ]

    cities = []
    for x in r.sub("cities").seq():
        shop, pickup = x.data.get("shop"), x.data.get("pickup_point")
        for key, ref in (("shop", shop), ("pickup_point", pickup)):
            if ref is not None and ref not in by_id:
                raise x.fail(key, f"unknown location {ref!r}")
        cities.append(
            City(
                x.text("name"),
                x.text("region"),
                x.text("postcode_prefix"),
                x.num("weight"),
                shop,
                pickup,
            )
        )

    categories = []
    for x in r.sub("categories").seq():
        lo, hi = x.get("price_range")
        ships = x.text("fulfilled_by")
        if ships not in by_id:
            raise x.fail("fulfilled_by", f"unknown location {ships!r}")
        categories.append(
            Category(
                id=x.text("id"),
                name=x.text("name"),
                lines=x.sub("lines").texts(),
                variants=x.sub("variants").weights(),
                price_range=(float(lo), float(hi)),
                queries=x.sub("queries").texts(),
                fulfilled_by=ships,
            )
        )
    cat_ids = {c.id for c in categories}

    personas = []
    for pid, x in r.sub("personas").items():
        cats = x.sub("categories").weights()
        for c, _ in cats:
            if c not in cat_ids:
                raise x.fail("categories", f"unknown category {c!r}")
        paths = x.sub("paths").weights()
        for p, _ in paths:
            if p not in STAGES:
                raise x.fail("paths", f"{p!r} is not one of {', '.join(STAGES)}")
        lo_b, hi_b = x.get("basket")
        personas.append(
            Persona(
                id=pid,
                label=x.text("label"),
                share=x.num("share"),
                occasions_per_year=x.num("occasions_per_year", 0, 365),
                categories=cats,
                paths=paths,
                app_rate=x.rate("app_rate"),
                account_rate=x.rate("account_rate"),
                loyalty_rate=x.rate("loyalty_rate"),
                email_optin=x.rate("email_optin"),
                basket=(int(lo_b), int(hi_b)),
                seasons=x.sub("seasons").weights() if x.data.get("seasons") else (),
            )
        )

    seasons = tuple(
        (
            sid,
            _day_of_year(str(x.get("from")), x, "from"),
            _day_of_year(str(x.get("to")), x, "to"),
        )
        for sid, x in r.sub("seasons").items()
    )
    funnel = r.sub("funnel")
    friction = tuple(
        Friction(x.text("channel"), int(x.num("step", 1, 9)), x.text("name"), x.rate("extra_drop"))
        for x in r.sub("friction").seq()
    )
    noise = r.sub("noise")
    rates = r.sub("rates")
    reviews = {int(k): x.texts() for k, x in r.sub("reviews").items()}
    if set(reviews) != {1, 2, 3, 4, 5}:
        raise r.fail("reviews", "needs texts for ratings 1 to 5")
    return Scenario(
        brand=brand.text("name"),
        domain=brand.text("domain"),
        end=datetime(end_day.year, end_day.month, end_day.day, tzinfo=UTC),
        currency=brand.text("currency"),
        sources=tuple(sources),
        locations=locations,
        cities=tuple(cities),
        categories=tuple(categories),
        channel_prices=r.sub("channel_prices").weights(),
        personas=tuple(personas),
        secondary_persona_rate=r.rate("secondary_persona_rate"),
        seasons=seasons,
        noise={k: noise.rate(k) for k, _ in noise.items()},
        phone_formats=r.sub("phone_formats").weights(),
        funnel={k: funnel.rate(k) for k, _ in funnel.items()},
        checkout_steps=r.sub("checkout_steps").weights(),
        friction=friction,
        rates={k: rates.rate(k) for k, _ in rates.items()},
        reviews=reviews,
        mentions={k: x.texts() for k, x in r.sub("mentions").items()},
        raw=data,
    )
