"""``load()``: store a generated folder through the public paths, never by private writes.

1. Sources are created (or reused, by name) with ``access.create_source``; each source's
   JSONL file goes through ``collect.import_events``, the same validator and store as the
   HTTP API. Re-loading stores nothing twice: every message has a deterministic messageId.
2. The catalogue (``locations.csv``, ``products.csv``, ``stock.csv``) goes through the
   commerce importers of ``trayecto import locations|products|stock``.
3. ``customers.csv`` goes through ``identity.import_customer_records`` (``trayecto import
   customers``), split by its ``source`` column: ``web`` as the web store's source,
   ``store:<shop>`` as that shop's till source, ``loyalty`` (online loyalty sign-ups) as
   the source ``LOYALTY_SOURCE`` (channel ``web``), created when missing. Each group is
   written to ``customers.<source>.csv`` next to the rejects (kept only when rows were
   rejected, so a reject's line number points into it). Re-importing changes nothing.
4. ``orders.csv`` + ``order_lines.csv`` go through the order API (``commerce.check_order``
   and ``commerce.place_order``, what ``POST /api/orders`` calls) as historic orders placed
   at their ``placed_at``, then through the fulfilment states they reached by the
   simulation's end at the simulated times (``commerce.advance_steps``); see ``_orders``.
   The (channel, external id) key makes a second load answer the stored orders: nothing is
   placed or advanced twice.
"""

from __future__ import annotations

import contextlib
import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from trayecto import access, collect, commerce, identity
from trayecto.kernel import ConflictError, ValidationError
from trayecto.sim._orders import load_orders
from trayecto.sim.engine import Manifest

__all__ = ["LoadReport", "load"]

#: Called with (source name, bytes done, bytes total) as each file is imported.
LoadProgress = Callable[[str, int, int], None]
#: Called with (step, done, total) by the later steps: ``customers <source>`` (bytes of
#: its file) and ``orders`` (orders).
StepProgress = Callable[[str, int, int], None]

#: The source online loyalty sign-ups (``customers.csv`` rows of source ``loyalty``) are
#: stored under: the loyalty club's web form.
LOYALTY_SOURCE = ("Club Olivar (alta online)", "web")


@dataclass(frozen=True, slots=True)
class LoadReport:
    sources_created: int
    rows: int
    stored: int
    duplicates: int
    rejected: int
    seconds: float
    rejects: tuple[str, ...]
    #: Catalogue rows stored per file kind (locations, products, stock).
    catalogue: tuple[tuple[str, int], ...] = ()
    #: Customer records per source name: (source, rows, stored or updated, unchanged, rejected).
    customers: tuple[tuple[str, int, int, int, int], ...] = ()
    #: Orders of orders.csv: placed now, already there (same channel and external id), rejected.
    orders_stored: int = 0
    orders_duplicate: int = 0
    orders_rejected: int = 0
    #: Returns of orders.csv replayed through the returns API (with the orders placed now).
    orders_returns: int = 0
    #: Till sales whose shop received stock first (a simulated store delivery).
    orders_restocks: int = 0
    #: Whether the ``pos`` channel got the loader's till-sale policy (it had none of its own).
    orders_pos_policy_set: bool = False


def load(
    engine: Engine,
    manifest: Manifest,
    *,
    max_message_bytes: int = 32 * 1024,
    rejects_dir: Path | None = None,
    on_progress: LoadProgress | None = None,
    key: bytes,
    region: str = "ES",
    on_step: StepProgress | None = None,
) -> LoadReport:
    """Create the manifest's sources, import their event files, the catalogue, the
    customer records (``key``: the platform's secret key, which pseudonymises them;
    ``region``: the default phone region) and the orders (see the module docstring)."""
    created = rows = stored = duplicates = rejected = 0
    seconds = 0.0
    rejects: list[str] = []
    for f in manifest.files:
        s = f.source
        try:
            access.create_source(engine, s.name, s.channel, s.location_id)
            created += 1
        except ConflictError:
            pass
        src = access.get_source(engine, s.name)
        if src.revoked_at is not None:
            raise ValidationError(
                f"source {s.name!r} is revoked; rename it in the scenario or create a new store",
                code="revoked_source",
                field="source",
            )
        if src.channel.value != s.channel:
            raise ValidationError(
                f"source {s.name!r} exists with channel {src.channel.value}, not {s.channel}",
                code="source_mismatch",
                field="source",
            )
        if f.events == 0:
            continue
        where = (rejects_dir or f.path.parent) / f"{f.path.name}.rejects.jsonl"

        def progress(done: int, total: int, name: str = s.name) -> None:
            if on_progress is not None:
                on_progress(name, done, total)

        report = collect.import_events(
            engine,
            f.path,
            origin=collect.Origin(src.id, src.channel.value, src.location_id),
            fmt="jsonl",
            rejects_path=where,
            max_message_bytes=max_message_bytes,
            on_progress=progress,
        )
        rows += report.rows
        stored += report.stored
        duplicates += report.duplicates
        rejected += report.rejected
        seconds += report.seconds
        if report.rejected:
            rejects.append(report.rejects_path)
        else:
            Path(report.rejects_path).unlink(missing_ok=True)
    catalogue = []
    for kind in commerce.KINDS:  # locations first: stock names them
        path = manifest.root / f"{kind}.csv"
        if not path.is_file():
            continue
        where = (rejects_dir or path.parent) / f"{path.name}.rejects.jsonl"
        done = commerce.import_catalogue(engine, kind, path, rejects_path=where)
        catalogue.append((kind, done.stored))
        rejected += done.rejected
        seconds += done.seconds
        if done.rejected:
            rejects.append(done.rejects_path)
        else:
            Path(done.rejects_path).unlink(missing_ok=True)
    started = time.perf_counter()
    customers = []
    people = manifest.root / "customers.csv"
    if people.is_file():
        for name, records in _load_customers(
            engine, manifest, people, rejects_dir or manifest.root, key, region, on_step
        ):
            customers.append(
                (name, records.rows, records.stored, records.unchanged, records.rejected)
            )
            rejected += records.rejected
            if records.rejected:
                rejects.append(records.rejects_path)
    placed: dict[str, Any] = {}
    if (manifest.root / "orders.csv").is_file():
        where = (rejects_dir or manifest.root) / "orders.csv.rejects.jsonl"

        def order_progress(done: int, total: int) -> None:
            if on_step is not None:
                on_step("orders", done, total)

        orders = load_orders(
            engine, manifest.root, region=region, rejects_path=where, on_progress=order_progress
        )
        placed = {
            "orders_stored": orders.stored,
            "orders_duplicate": orders.duplicates,
            "orders_rejected": orders.rejected,
            "orders_returns": orders.returns,
            "orders_restocks": orders.restocks,
            "orders_pos_policy_set": orders.pos_policy_set,
        }
        rejected += orders.rejected
        if orders.rejected:
            rejects.append(orders.rejects_path)
        else:
            where.unlink(missing_ok=True)
    seconds += time.perf_counter() - started
    return LoadReport(
        created,
        rows,
        stored,
        duplicates,
        rejected,
        seconds,
        tuple(rejects),
        tuple(catalogue),
        tuple(customers),
        **placed,
    )


def _source_for(engine: Engine, manifest: Manifest, value: str) -> access.Source:
    """The trayecto source of a ``customers.csv`` ``source`` value."""
    if value == "loyalty":
        name, channel = LOYALTY_SOURCE
        with contextlib.suppress(ConflictError):
            access.create_source(engine, name, channel, None)
        return access.get_source(engine, name)
    spec = next((f.source for f in manifest.files if f.source.key == value), None)
    if spec is None:
        raise ValidationError(
            f"customers.csv names a source {value!r} the manifest does not have",
            code="unknown_source",
            field="source",
        )
    return access.get_source(engine, spec.name)


def _load_customers(
    engine: Engine,
    manifest: Manifest,
    path: Path,
    into: Path,
    key: bytes,
    region: str,
    on_step: StepProgress | None,
) -> list[tuple[str, identity.RecordImportReport]]:
    """Split ``customers.csv`` by its ``source`` column into one file per source (without
    that column) and import each with the customer-records importer."""
    into.mkdir(parents=True, exist_ok=True)
    parts: dict[str, tuple[Path, Any, Any]] = {}
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            at = header.index("source")
            for row in reader:
                value = row[at]
                if value not in parts:
                    slug = value.replace(":", "-").replace("/", "-")
                    part = into / f"customers.{slug}.csv"
                    out = part.open("w", encoding="utf-8", newline="")
                    writer = csv.writer(out, lineterminator="\n")
                    writer.writerow(header[:at] + header[at + 1 :])
                    parts[value] = (part, out, writer)
                parts[value][2].writerow(row[:at] + row[at + 1 :])
    finally:
        for _, out, _ in parts.values():
            out.close()
    done = []
    for value, (part, _, _) in parts.items():
        src = _source_for(engine, manifest, value)

        def progress(n: int, total: int, name: str = src.name) -> None:
            if on_step is not None:
                on_step(f"customers {name}", n, total)

        report = identity.import_customer_records(
            engine,
            part,
            source_id=src.id,
            channel=src.channel.value,
            region=region,
            key=key,
            rejects_path=into / f"{part.name}.rejects.jsonl",
            on_progress=progress,
        )
        if not report.rejected:
            part.unlink()
            Path(report.rejects_path).unlink(missing_ok=True)
        done.append((src.name, report))
    return done
