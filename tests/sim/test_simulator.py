"""The simulator: determinism, valid events, ground truth consistent with the data, the
configured mix of personas and noise, and the planted friction."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.sim.conftest import SMALL, messages, rows
from trayecto import collect, sim
from trayecto.kernel import ValidationError


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes(small: sim.Manifest, tmp_path: Path) -> None:
    again = sim.simulate(tmp_path / "again", **SMALL)  # type: ignore[arg-type]
    first, second = _files(small.root), _files(again.root)
    assert sorted(first) == sorted(second)
    for name, data in first.items():
        assert data == second[name], name
    assert small.events > 1000


def test_other_seed_other_data(small: sim.Manifest, tmp_path: Path) -> None:
    other = sim.simulate(tmp_path / "other", **{**SMALL, "seed": 12})  # type: ignore[arg-type]
    a, b = _files(small.root), _files(other.root)
    assert a["events/web.jsonl"] != b["events/web.jsonl"]
    assert a["customers.csv"] != b["customers.csv"]


def test_every_event_is_accepted_by_the_contract(small: sim.Manifest) -> None:
    received = datetime(2027, 1, 1, tzinfo=UTC)
    seen_types: Counter[str] = Counter()
    for f, msg in messages(small):
        origin = collect.Origin(uuid.uuid4(), f.source.channel, f.source.location_id)
        event = collect.check_message(msg, origin=origin, received_at=received, max_bytes=32 * 1024)
        assert event.message_id.startswith(f"sim-{SMALL['seed']}-")
        assert small.start <= msg["timestamp"] < small.end
        seen_types[msg["type"]] += 1
    assert {"track", "page", "screen", "identify"} <= set(seen_types)


def test_message_ids_are_unique_and_counts_match_the_manifest(small: sim.Manifest) -> None:
    ids = [msg["messageId"] for _, msg in messages(small)]
    assert len(ids) == len(set(ids)) == small.events
    for f in small.files:
        assert len(f.path.read_bytes().splitlines()) == f.events


def test_every_identifier_and_record_belongs_to_a_true_person(small: sim.Manifest) -> None:
    root = small.root
    persons = {r["person_id"] for r in rows(root, "truth/persons.csv")}
    assert len(persons) == SMALL["customers"]
    known = {}
    for r in rows(root, "truth/identifiers.csv"):
        assert r["person_id"] in persons
        known.setdefault(r["value"], set()).add(r["person_id"])
    for _, msg in messages(small):
        for key in ("userId", "anonymousId", "previousId"):
            if key in msg:
                assert msg[key] in known, (key, msg)
    records = {r["record_id"]: r["person_id"] for r in rows(root, "truth/records.csv")}
    customers = rows(root, "customers.csv")
    assert customers
    assert all(c["record_id"] in records for c in customers)
    assert set(records.values()) <= persons


def test_orders_match_order_completed_events(small: sim.Manifest) -> None:
    root = small.root
    events = {
        msg["properties"]["order_id"]: msg
        for _, msg in messages(small)
        if msg.get("event") == "Order Completed"
    }
    orders = rows(root, "orders.csv")
    assert orders
    assert len(orders) == len(events)
    lines = Counter(r["order_id"] for r in rows(root, "order_lines.csv"))
    for o in orders:
        msg = events[o["order_id"]]
        assert Decimal(str(msg["properties"]["total"])) == Decimal(o["total"])
        assert len(msg["properties"]["products"]) == lines[o["order_id"]]
        assert o["placed_at"] == msg["timestamp"]
    truth = {r["order_id"]: r for r in rows(root, "truth/orders.csv")}
    assert set(truth) == set(events)
    journeys = {r["journey_id"]: r for r in rows(root, "truth/journeys.csv")}
    for order_id, t in truth.items():
        assert journeys[t["journey_id"]]["order_id"] == order_id
        assert journeys[t["journey_id"]]["person_id"] == t["person_id"]


def test_persona_mix_matches_the_scenario(large: sim.Manifest) -> None:
    scenario = sim.load_scenario()
    persons = rows(large.root, "truth/persons.csv")
    counts = Counter(p["persona"] for p in persons)
    total = sum(p.share for p in scenario.personas)
    for persona in scenario.personas:
        assert counts[persona.id] / len(persons) == pytest.approx(persona.share / total, abs=0.035)
    secondary = sum(1 for p in persons if p["secondary_persona"]) / len(persons)
    assert secondary == pytest.approx(scenario.secondary_persona_rate, abs=0.035)


def test_noise_rates_match_the_scenario(large: sim.Manifest) -> None:
    noise = sim.load_scenario().noise
    root = large.root
    persons = rows(root, "truth/persons.csv")
    n = len(persons)
    assert sum(1 for p in persons if p["email2"]) / n == pytest.approx(
        noise["second_email"], abs=0.03
    )
    households = sum(1 for p in persons if p["household_id"]) / 2 / n
    assert households == pytest.approx(noise["household"], abs=0.03)
    shop_signups = [
        c["record_id"] for c in rows(root, "customers.csv") if c["source"].startswith("store:")
    ]
    assert len(shop_signups) > 200
    applied = {(r["record_id"], r["kind"]) for r in rows(root, "truth/noise.csv")}
    typos = sum(1 for r in shop_signups if (r, "typo") in applied) / len(shop_signups)
    assert typos == pytest.approx(noise["signup_typo"], abs=0.035)
    swapped = sum(1 for r in shop_signups if (r, "swapped_with_last_name") in applied)
    assert swapped / len(shop_signups) == pytest.approx(noise["signup_swapped_names"], abs=0.03)
    dates = sum(
        1
        for r in shop_signups
        if (r, "day_month_swapped") in applied or (r, "year_digits_swapped") in applied
    )
    assert dates / len(shop_signups) == pytest.approx(noise["signup_birth_date_swapped"], abs=0.02)
    # Phones in customer records are written in every configured way.
    shapes = Counter(_phone_shape(c["phone"]) for c in rows(root, "customers.csv") if c["phone"])
    assert set(shapes) == {"e164", "spaced_intl", "national", "spaced", "prefix_00", "dashed"}


def _phone_shape(phone: str) -> str:
    if phone.startswith("0034"):
        return "prefix_00"
    if phone.startswith("+34 "):
        return "spaced_intl"
    if phone.startswith("+34"):
        return "e164"
    if "-" in phone:
        return "dashed"
    return "spaced" if " " in phone else "national"


def test_planted_friction_shows_in_the_app_checkout_only(large: sim.Manifest) -> None:
    viewed: Counter[tuple[str, int]] = Counter()
    done: Counter[tuple[str, int]] = Counter()
    for f, msg in messages(large):
        if msg.get("event") == "Checkout Step Viewed":
            viewed[f.source.channel, msg["properties"]["step"]] += 1
        elif msg.get("event") == "Checkout Step Completed":
            done[f.source.channel, msg["properties"]["step"]] += 1

    def rate(channel: str, step: int) -> float:
        return done[channel, step] / viewed[channel, step]

    assert rate("web", 3) - rate("app", 3) == pytest.approx(0.25, abs=0.1)
    assert abs(rate("web", 2) - rate("app", 2)) < 0.08
    friction = (large.root / "truth" / "friction.json").read_text()
    assert '"channel": "app"' in friction


def test_journeys_cover_every_pattern(large: sim.Manifest) -> None:
    journeys = rows(large.root, "truth/journeys.csv")
    patterns = Counter(j["pattern"] for j in journeys)
    assert set(patterns) == {"online", "ropo", "showroom", "shop", "marketplace"}
    ropo = [j for j in journeys if j["pattern"] == "ropo" and j["outcome"] == "purchased"]
    assert ropo
    assert all(j["decision_channel"].startswith("store:") for j in ropo)


def test_every_source_has_a_file(small: sim.Manifest) -> None:
    # Every source file exists, even when empty (memory is tested in test_scale.py).
    names = {f.path.name for f in small.files}
    assert "web.jsonl" in names
    assert "store-mad-serrano.jsonl" in names


def test_scenario_override_and_errors(tmp_path: Path) -> None:
    custom = tmp_path / "s.yaml"
    custom.write_text(
        "friction:\n  - {channel: web, step: 1, name: Datos de envío, extra_drop: 0.5}\n"
    )
    sc = sim.load_scenario(custom)
    assert sc.friction[0].channel == "web"
    assert sc.brand == "Olivar de Sierra"
    bad = tmp_path / "bad.yaml"
    bad.write_text("personas:\n  cook: {share: -1}\n")
    with pytest.raises(ValidationError) as exc:
        sim.load_scenario(bad)
    assert exc.value.code == "invalid_scenario"
    with pytest.raises(ValidationError):
        sim.simulate(tmp_path / "x", customers=0)
