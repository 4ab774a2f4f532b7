"""Customer records from files: ``trayecto import customers FILE.csv --source NAME``."""

from __future__ import annotations

import csv
import gc
import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID

import orjson
from sqlalchemy.engine import Engine

from trayecto.db import write_transaction
from trayecto.identity._records_read import RECORD_FIELDS, read_rows
from trayecto.identity._records_store import PreparedRow, store_chunk
from trayecto.kernel import ValidationError, utcnow

__all__ = ["RECORD_FIELDS", "RecordImportReport", "import_customer_records", "parse_record_mapping"]


@dataclass(frozen=True, slots=True)
class RecordImportReport:
    path: str
    rows: int
    stored: int
    unchanged: int
    rejected: int
    rejects_path: str
    seconds: float


def parse_record_mapping(spec: str | None) -> dict[str, str]:
    """``"record_id=rec_id,first_name=given_name"`` → ``{"rec_id": "record_id", …}``."""
    out: dict[str, str] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        field, sep, column = (x.strip() for x in part.partition("="))
        if not sep or not field or not column:
            raise ValidationError(
                f"mapping {part!r} must look like FIELD=COLUMN", code="invalid_mapping", field="map"
            )
        if field not in RECORD_FIELDS:
            raise ValidationError(
                f"{field!r} is not a customer field; use one of {', '.join(RECORD_FIELDS)}",
                code="invalid_mapping",
                field="map",
            )
        out[column] = field
    return out


_ERASED = {
    "code": "erased_person",
    "message": "this person asked to be erased; the record was not stored",
    "field": None,
}


@contextmanager
def _collect_per_transaction() -> Iterator[None]:
    """The cyclic garbage collector paused for the import, which collects the young
    generations every fourth transaction instead. A chunk allocates a few hundred thousand
    objects (rows, identifiers, the graph's caches), which the collector, run every 700
    allocations, scanned again and again: a third of the import's CPU time. Reference
    counting frees most of them when the chunk is stored (the graph holds no cycle); the
    SQL statements of a chunk (``IN`` lists of ids) are cycles the collection frees."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def import_customer_records(
    engine: Engine,
    path: Path,
    *,
    source_id: UUID,
    channel: str,
    region: str,
    key: bytes,
    mapping: dict[str, str] | None = None,
    rejects_path: Path | None = None,
    chunk_rows: int = 2000,
    chunks_per_commit: int = 5,
    on_progress: Callable[[int, int], None] | None = None,
) -> RecordImportReport:
    """Store each row as a source record (keeping its record id), link it into the graph by
    its identifiers, and feed its attributes to the golden record. Re-importing the same
    file changes nothing; a changed row updates its record."""
    if not path.is_file():
        raise ValidationError(f"no such file: {path}", code="file_not_found", field="file")
    mapping = mapping or {}
    rejects_path = rejects_path or path.with_name(path.name + ".rejects.jsonl")
    started = time.perf_counter()
    total = path.stat().st_size
    n = stored = unchanged = rejected = 0
    with (
        _collect_per_transaction(),
        path.open("rb") as raw,
        io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as fh,
        rejects_path.open("wb") as rejects,
    ):
        reader = csv.reader(fh)
        header = next(reader, [])
        missing = [c for c in mapping if c not in header]
        if missing:
            raise ValidationError(
                f"mapped column(s) not in the header: {', '.join(missing)}",
                code="unknown_column",
                field="map",
            )
        fields = {c: mapping.get(c, c) for c in header}
        if "record_id" not in fields.values():
            raise ValidationError(
                "the file needs a record_id column (or --map record_id=COLUMN)",
                code="missing_column",
                field="record_id",
            )
        chunk: list[PreparedRow] = []
        # Several chunks per transaction: a commit waits for the disk (about 0.1 s). Each
        # chunk is still processed on its own (its own time, graph and golden refresh), so
        # the result is the same as with one transaction per chunk; a failure rolls back
        # the whole transaction, and importing the file again completes it.
        pending: list[tuple[list[PreparedRow], datetime]] = []
        last = utcnow() - timedelta(seconds=1)
        commits = 0

        def commit() -> None:
            nonlocal stored, unchanged, rejected, commits
            if not pending:
                return
            with write_transaction(engine) as conn:
                results = [
                    store_chunk(conn, rows, source_id=source_id, channel=channel, key=key, at=at)
                    for rows, at in pending
                ]
            pending.clear()
            commits += 1
            if commits % 4 == 0:
                gc.collect(1)  # see _collect_per_transaction
            for s, u, refused in results:
                stored += s
                unchanged += u
                rejected += len(refused)
                for line in refused:
                    rejects.write(orjson.dumps({"line": line} | _ERASED) + b"\n")
            if on_progress:
                on_progress(raw.tell(), total)

        def cut(rows: list[PreparedRow]) -> None:
            nonlocal last
            # Each chunk its own time, later than the last one's (ties between two chunks'
            # observations would be broken differently).
            last = max(utcnow(), last + timedelta(microseconds=1))
            pending.append((rows, last))
            if len(pending) >= chunks_per_commit:
                commit()

        for rows, refused, lines in read_rows(reader, header, fields, region):
            n += lines
            rejected += len(refused)
            for item in refused:
                rejects.write(orjson.dumps(item) + b"\n")
            chunk.extend(rows)
            while len(chunk) >= chunk_rows:  # chunks of exactly chunk_rows valid rows
                cut(chunk[:chunk_rows])
                del chunk[:chunk_rows]
        if chunk:
            cut(chunk)
        commit()
    return RecordImportReport(
        str(path), n, stored, unchanged, rejected, str(rejects_path), time.perf_counter() - started
    )
