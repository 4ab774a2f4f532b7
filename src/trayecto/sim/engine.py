"""``simulate()``: the whole run, customer by customer, streamed to an output folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from trayecto.kernel import ValidationError
from trayecto.sim.catalogue import build_catalogue, write_catalogue, write_stock
from trayecto.sim.clock import DAY, iso, to_ms
from trayecto.sim.journeys import Life
from trayecto.sim.people import People
from trayecto.sim.scenario import Scenario, SourceSpec, load_scenario
from trayecto.sim.world import World
from trayecto.sim.writer import MAX_LEVEL, Output

__all__ = ["EventFile", "Manifest", "simulate"]

Progress = Callable[[int, int], None]
MAX_CUSTOMERS = 10_000_000
MAX_DAYS = 3660


@dataclass(frozen=True, slots=True)
class EventFile:
    """One source's events: where they are and how many."""

    source: SourceSpec
    path: Path
    events: int


@dataclass(frozen=True, slots=True)
class Manifest:
    root: Path
    customers: int
    days: int
    seed: int
    start: str
    end: str
    events: int
    files: tuple[EventFile, ...]
    rows: dict[str, int]
    compress: int = 0  # gzip level of the event files; 0: plain JSONL


def simulate(
    out_dir: Path,
    *,
    customers: int = 5000,
    days: int = 365,
    seed: int = 42,
    scenario: Scenario | Path | None = None,
    on_progress: Progress | None = None,
    compress: int = 0,
) -> Manifest:
    """Generate the retailer's history into ``out_dir`` (see docs/simulator.md).

    Deterministic: the same arguments and scenario write the same bytes. ``compress``
    (a gzip level, 1 to 9) writes the event files as ``.jsonl.gz``; decompressed they are
    byte for byte the plain files.
    """
    if not 1 <= customers <= MAX_CUSTOMERS:
        raise ValidationError(
            f"customers must be between 1 and {MAX_CUSTOMERS:,}", field="customers"
        )
    if not 1 <= days <= MAX_DAYS:
        raise ValidationError(f"days must be between 1 and {MAX_DAYS}", field="days")
    if seed < 0:
        raise ValidationError("seed must be 0 or more", field="seed")
    if not 0 <= compress <= MAX_LEVEL:
        raise ValidationError(
            f"compress must be a gzip level from 1 to {MAX_LEVEL} (0: none)", field="compress"
        )
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    end = to_ms(sc.end)
    start = end - days * DAY
    out_dir.mkdir(parents=True, exist_ok=True)
    out = Output(out_dir, sc, compress=compress)
    try:
        catalogue = build_catalogue(sc, seed)
        write_catalogue(sc, catalogue, out_dir)
        world = World(sc, catalogue, out, seed, start, end)
        people = People(sc, seed, start, end, out)
        step = max(1, min(500, customers // 100))
        for i in range(customers):
            Life(world, people.make(i)).run()
            if on_progress is not None and (i + 1) % step == 0:
                on_progress(i + 1, customers)
        people.finish()
        write_stock(out_dir, world.demand.opening_stock(catalogue))
        if on_progress is not None:
            on_progress(customers, customers)
    finally:
        out.close()

    files = tuple(EventFile(s, out.event_paths[s.key], out.counts[s.key]) for s in sc.sources)
    manifest = Manifest(
        root=out_dir,
        customers=customers,
        days=days,
        seed=seed,
        start=iso(start),
        end=iso(end),
        events=out.total_events,
        files=files,
        rows=dict(out.rows),
        compress=compress,
    )
    _write_json(out_dir / "truth" / "friction.json", [
        {"channel": f.channel, "step": f.step, "step_name": f.name, "extra_drop": f.extra_drop,
         "expected_continue": dict(sc.checkout_steps)[f.name] - f.extra_drop}
        for f in sc.friction
    ])  # fmt: skip
    _write_json(out_dir / "truth" / "scenario.json", sc.raw)
    _write_json(out_dir / "manifest.json", manifest_dict(manifest))
    return manifest


def manifest_dict(m: Manifest) -> dict[str, Any]:
    arguments: dict[str, Any] = {"customers": m.customers, "days": m.days, "seed": m.seed}
    if m.compress:  # only then, so plain runs write the manifest they always wrote
        arguments["compress"] = m.compress
    return {
        "generator": "trayecto simulate",
        "arguments": arguments,
        "window": {"start": m.start, "end": m.end},
        "events": m.events,
        "sources": [
            {
                "key": f.source.key,
                "name": f.source.name,
                "channel": f.source.channel,
                "location_id": f.source.location_id,
                "file": f.path.relative_to(m.root).as_posix(),
                "events": f.events,
            }
            for f in m.files
        ],
        "rows": m.rows,
    }


def _write_json(path: Path, data: Any) -> None:
    path.write_bytes(
        orjson.dumps(
            data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
        )
    )
