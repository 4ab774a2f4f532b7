"""``trayecto simulate`` through the real CLI: ``--load`` stores exactly what ``--out`` writes."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from tests.helpers import run_cli
from trayecto import access, collect, commerce
from trayecto.bootstrap import Platform

pytestmark = pytest.mark.e2e


def test_load_stores_exactly_the_events_written(
    env: dict[str, str], platform: Platform, tmp_path: Path
) -> None:
    args = ("simulate", "--customers", "120", "--days", "30", "--seed", "3")
    out = tmp_path / "out"
    run_cli(env, *args, "--out", str(out))
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    written = sum(len((out / s["file"]).read_bytes().splitlines()) for s in manifest["sources"])
    assert written == manifest["events"] > 300

    proc = run_cli(env, *args, "--load")
    assert f"{written:,} stored" in proc.stdout
    assert collect.count_events(platform.engine) == written
    for s in manifest["sources"]:
        src = access.get_source(platform.engine, s["name"])
        assert src.channel.value == s["channel"]
        assert src.location_id == s["location_id"]
        stored = collect.message_ids(platform.engine, src.id)
        lines = (out / s["file"]).read_bytes().splitlines()
        assert stored == {orjson.loads(line)["messageId"] for line in lines}

    # The catalogue went through the commerce importers: every location, product and
    # stock row of the files, and stock on hand as the file says.
    for kind in ("locations", "products", "stock"):
        n = len((out / f"{kind}.csv").read_bytes().splitlines()) - 1
        assert f"{n:,} {kind}" in proc.stdout
    sku, location, on_hand = (out / "stock.csv").read_text().splitlines()[1].split(",")
    levels = {lv.location_id: lv.on_hand for lv in commerce.stock_levels(platform.engine, [sku])}
    assert levels[location] == int(on_hand)

    again = run_cli(env, *args, "--load")
    assert "0 stored" in again.stdout
    assert f"{written:,} already there" in again.stdout
    assert collect.count_events(platform.engine) == written


def test_simulate_needs_a_destination_and_a_valid_scenario(
    env: dict[str, str], tmp_path: Path
) -> None:
    proc = run_cli(env, "simulate", "--customers", "10", check=False)
    assert proc.returncode == 2
    assert "--out" in proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("end_date: yesterday\n")
    proc = run_cli(
        env, "simulate", "--scenario", str(bad), "--out", str(tmp_path / "o"), check=False
    )
    assert proc.returncode == 2
    assert "end_date" in proc.stderr
    proc = run_cli(env, "simulate", "--help")
    assert "--customers" in proc.stdout


def test_gzipped_output_loads_the_same_events(
    env: dict[str, str], platform: Platform, tmp_path: Path
) -> None:
    args = ("simulate", "--customers", "80", "--days", "30", "--seed", "4")
    gz = tmp_path / "gz"
    proc = run_cli(env, *args, "--compress", "--out", str(gz), "--load")
    manifest = orjson.loads((gz / "manifest.json").read_bytes())
    events = manifest["events"]
    assert events > 200
    assert f"{events:,} stored" in proc.stdout
    assert collect.count_events(platform.engine) == events
    web = next(s for s in manifest["sources"] if s["key"] == "web")
    assert web["file"] == "events/web.jsonl.gz"
    lines = gzip.decompress((gz / web["file"]).read_bytes()).splitlines()
    src = access.get_source(platform.engine, web["name"])
    assert collect.message_ids(platform.engine, src.id) == {
        orjson.loads(line)["messageId"] for line in lines
    }

    # The plain run writes the same messages: loading it stores nothing new.
    again = run_cli(env, *args, "--load")
    assert f"0 stored, {events:,} already there" in again.stdout

    # And `trayecto import events` reads a generated .jsonl.gz as it is.
    imported = run_cli(env, "import", "events", str(gz / web["file"]), "--source", web["name"])
    assert f"{len(lines):,} rows read: {0:,} stored, {len(lines):,} already there" in (
        imported.stdout
    )


def test_demo_loads_resolves_and_prints_logins(env: dict[str, str], platform: Platform) -> None:
    """``trayecto demo`` (small): the retailer loaded through the public paths, identity
    brought up to date (stitched and matched), an admin token and three console logins;
    a second run stores nothing new."""
    args = ("demo", "--no-serve", "--customers", "120", "--days", "60")
    proc = run_cli(env, *args)
    out = " ".join(proc.stdout.split())
    assert "events stitched into the identity graph" in out
    assert "probabilistic matching" in out
    assert "0 rejected" in out
    assert "Demo ready." in out
    for role in ("admin", "store_staff", "agent"):
        assert role in out
    orders = commerce.find_orders(platform.engine)
    assert orders  # placed through the order API
    with platform.engine.connect() as conn:
        behind = conn.exec_driver_sql(
            "SELECT count(*) FROM events WHERE id > (SELECT last_event_id FROM id_checkpoints "
            "WHERE consumer = 'identity')"
        ).scalar()
        attributed = conn.exec_driver_sql("SELECT count(*) FROM id_event_profiles").scalar()
    assert behind == 0  # stitching read the whole log
    assert attributed > 0
    again = " ".join(run_cli(env, *args).stdout.split())
    assert "0 events stitched" in again
