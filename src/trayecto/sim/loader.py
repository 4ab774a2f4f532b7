"""``load()``: store a generated folder through the public paths, never by private writes.

Sources are created (or reused, by name) with ``access.create_source``; each source's
JSONL file goes through ``collect.import_events``, the same validator and store as the
HTTP API. Re-loading stores nothing twice: every message has a deterministic messageId.
The catalogue (``locations.csv``, ``products.csv``, ``stock.csv``) goes through the
commerce importers of ``trayecto import locations|products|stock``. Not yet loaded:
``customers.csv`` (``trayecto import customers`` takes it) and the orders, which are in
the event files as Segment e-commerce events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from trayecto import access, collect, commerce
from trayecto.kernel import ConflictError, ValidationError
from trayecto.sim.engine import Manifest

__all__ = ["LoadReport", "load"]

#: Called with (source name, bytes done, bytes total) as each file is imported.
LoadProgress = Callable[[str, int, int], None]


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


def load(
    engine: Engine,
    manifest: Manifest,
    *,
    max_message_bytes: int = 32 * 1024,
    rejects_dir: Path | None = None,
    on_progress: LoadProgress | None = None,
) -> LoadReport:
    """Create the manifest's sources and import their event files."""
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
    return LoadReport(
        created, rows, stored, duplicates, rejected, seconds, tuple(rejects), tuple(catalogue)
    )
