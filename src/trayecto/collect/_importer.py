"""Bulk import of events from files: Segment-style JSONL (optionally gzipped), CSV with a
column mapping, and Parquet (read by DuckDB, no Arrow stack needed).

Every row goes through the same validator as the HTTP API. Valid rows are appended in
transactions of ``chunk_rows``; bad rows go to a rejects file (JSONL) naming the line and
the reason. Re-running the same file stores nothing twice: each message is idempotent on
its ``messageId`` and timestamp, or on a hash of its content when it has none.

The work is a pipeline: the calling thread reads chunks of lines; worker processes parse,
validate and encode them into driver-ready rows (the CPU-bound part, so it runs on every
core, not under one interpreter lock); a writer thread appends each chunk in one
transaction while the next ones are prepared. Chunks come back in file order and at most
a few are in flight, so memory stays flat whatever the file's size.
"""

from __future__ import annotations

import csv
import gzip
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from sqlalchemy.engine import Engine

from trayecto.collect._contracts import Origin
from trayecto.collect._pipeline import (
    Bad,
    ChunkWriter,
    PrepareCall,
    chunks,
    no_cyclic_gc,
    prepared,
    worker_count,
)
from trayecto.db import engine_spec
from trayecto.kernel import ValidationError

__all__ = ["FORMATS", "ImportReport", "import_events", "parse_mapping"]

FORMATS = ("jsonl", "csv", "parquet")
Progress = Callable[[int, int], None]

# Top-level Segment fields a CSV or Parquet column may fill directly.
_TOP = frozenset(
    {
        "type",
        "messageId",
        "anonymousId",
        "userId",
        "event",
        "name",
        "timestamp",
        "originalTimestamp",
        "sentAt",
        "groupId",
        "previousId",
        "category",
    }
)
_OBJECTS = frozenset({"properties", "traits", "context", "integrations"})


@dataclass(frozen=True, slots=True)
class ImportReport:
    path: str
    format: str
    rows: int
    stored: int
    duplicates: int
    rejected: int
    rejects_path: str
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def parse_mapping(spec: str | None) -> dict[str, str]:
    """``"userId=customer,event=action"`` → ``{"customer": "userId", "action": "event"}``.

    The left side is the Segment field (``properties.sku`` and ``context.ip`` work too),
    the right side the file's column.
    """
    out: dict[str, str] = {}
    if not spec:
        return out
    for part in spec.split(","):
        if not part.strip():
            continue
        target, sep, column = part.partition("=")
        target, column = target.strip(), column.strip()
        if not sep or not target or not column:
            raise ValidationError(
                f"mapping {part!r} must look like FIELD=COLUMN", code="invalid_mapping", field="map"
            )
        head = target.split(".", 1)[0]
        if head not in _TOP and head not in _OBJECTS:
            raise ValidationError(
                f"{target!r} is not a Segment field; use one of "
                f"{', '.join(sorted(_TOP | _OBJECTS))} (objects take a .key)",
                code="invalid_mapping",
                field="map",
            )
        out[column] = target
    return out


def _detect(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    if name.endswith(".parquet"):
        return "parquet"
    raise ValidationError(
        f"cannot tell the format of {path.name}; pass --format jsonl|csv|parquet",
        code="unknown_format",
        field="format",
    )


class _Counting(io.RawIOBase):
    """Counts bytes read from the file on disk (for progress on compressed input too)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.done = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._raw.readinto(b)  # type: ignore[attr-defined]
        self.done += n or 0
        return n or 0


def _open(path: Path) -> tuple[BinaryIO, _Counting]:
    counter = _Counting(path.open("rb"))
    buffered: BinaryIO = io.BufferedReader(counter, 1 << 20)
    if path.name.lower().endswith(".gz"):
        buffered = gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[assignment]
    return buffered, counter


def _jsonl(path: Path, counter_out: list[_Counting]) -> Iterator[tuple[int, Any]]:
    """Lines as bytes: they are parsed where they are validated (``_prepare``)."""
    fh, counter = _open(path)
    counter_out.append(counter)
    with fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            yield line_no, line


def _set(msg: dict[str, Any], target: str, value: Any) -> None:
    head, _, rest = target.partition(".")
    if not rest:
        msg[head] = value
        return
    sub = msg.setdefault(head, {})
    if isinstance(sub, dict):
        sub[rest] = value


def _tabular_message(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any] | Bad:
    msg: dict[str, Any] = {}
    loose: dict[str, Any] = {}
    for column, value in row.items():
        if value is None or value == "":
            continue
        target = mapping.get(column, column)
        head = target.split(".", 1)[0]
        if target in _OBJECTS:
            if isinstance(value, str):
                try:
                    value = orjson.loads(value)
                except orjson.JSONDecodeError:
                    return Bad("malformed_json", f"column {column!r} is not a JSON object", target)
            if isinstance(value, dict):
                msg.setdefault(target, {}).update(value)
                continue
            return Bad("invalid_type", f"column {column!r} must hold a JSON object", target)
        if head in _TOP or head in _OBJECTS:
            _set(msg, target, value)
        else:
            loose[column] = value
    msg.setdefault("type", "track")
    if loose:
        bucket = "traits" if msg["type"] in ("identify", "group") else "properties"
        merged = dict(loose)
        existing = msg.get(bucket)
        if isinstance(existing, dict):
            merged.update(existing)
        msg[bucket] = merged
    return msg


def _csv(
    path: Path, mapping: dict[str, str], counter_out: list[_Counting]
) -> Iterator[tuple[int, Any]]:
    fh, counter = _open(path)
    counter_out.append(counter)
    delimiter = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    with io.TextIOWrapper(fh, encoding="utf-8-sig", newline="") as text:
        reader = csv.DictReader(text, delimiter=delimiter)
        missing = [c for c in mapping if reader.fieldnames and c not in reader.fieldnames]
        if missing:
            raise ValidationError(
                f"mapped column(s) not in the file's header: {', '.join(missing)}",
                code="unknown_column",
                field="map",
            )
        for row in reader:
            if None in row:
                yield reader.line_num, Bad("bad_row", "row has more cells than the header", None)
                continue
            yield reader.line_num, _tabular_message(row, mapping)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def _parquet(path: Path, mapping: dict[str, str], progress: list[int]) -> Iterator[tuple[int, Any]]:
    import duckdb  # local import: only the Parquet path needs it

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        schema = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
        # Zoned timestamps come out as ISO text in UTC (no pytz needed, no zone lost).
        select = ", ".join(
            f'CAST("{n}" AS VARCHAR) AS "{n}"' if t == "TIMESTAMP WITH TIME ZONE" else f'"{n}"'
            for n, t, *_ in ((r[0].replace('"', '""'), r[1]) for r in schema)
        )
        cur = con.execute(f"SELECT {select} FROM read_parquet(?)", [str(path)])
        names = [d[0] for d in cur.description]
        missing = [c for c in mapping if c not in names]
        if missing:
            raise ValidationError(
                f"mapped column(s) not in the file: {', '.join(missing)}",
                code="unknown_column",
                field="map",
            )
        row_no = 0
        while batch := cur.fetchmany(10_000):
            for values in batch:
                row_no += 1
                row = {n: _plain(v) for n, v in zip(names, values, strict=True)}
                yield row_no, _tabular_message(row, mapping)
            progress[0] = row_no
    finally:
        con.close()


def _parquet_rows(path: Path) -> int:
    import duckdb

    con = duckdb.connect()
    try:
        row = con.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def import_events(
    engine: Engine,
    path: Path,
    *,
    origin: Origin,
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
    rejects_path: Path | None = None,
    max_message_bytes: int = 32 * 1024,
    chunk_rows: int = 5000,
    workers: int | None = None,
    on_progress: Progress | None = None,
) -> ImportReport:
    """Import ``path`` into the event log for ``origin``; see the module docstring.

    ``workers``: processes that parse and validate (None: one per core, up to 4, for files
    of ``PARALLEL_MIN_BYTES`` or more; 0: all in this process)."""
    if not path.is_file():
        raise ValidationError(f"no such file: {path}", code="file_not_found", field="file")
    fmt = fmt or _detect(path)
    if fmt not in FORMATS:
        raise ValidationError(
            f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}",
            code="unknown_format",
            field="format",
        )
    mapping = mapping or {}
    rejects_path = rejects_path or path.with_name(path.name + ".rejects.jsonl")
    started = time.perf_counter()

    counters: list[_Counting] = []
    parquet_done = [0]
    if fmt == "jsonl":
        rows: Iterator[tuple[int, Any]] = _jsonl(path, counters)
        total = path.stat().st_size
    elif fmt == "csv":
        rows = _csv(path, mapping, counters)
        total = path.stat().st_size
    else:
        rows = _parquet(path, mapping, parquet_done)
        total = _parquet_rows(path)

    def done() -> int:
        return counters[0].done if counters else parquet_done[0]

    processes = worker_count(workers, path.stat().st_size)
    # With worker processes each appends its own chunks (to its own engine of this store).
    store = engine_spec(engine) if processes else None
    work = PrepareCall(origin, max_message_bytes, engine.dialect.name, store)
    n_rows = valid = rejected = appended = 0
    parts = prepared(chunks(rows, chunk_rows), work, processes, store)
    with rejects_path.open("wb") as rejects, no_cyclic_gc():
        # The first chunk before the writer thread starts: with the "fork" start method the
        # pool forks all its workers at its first task, and a fork is safest single-threaded.
        chunk = next(parts, None)
        with ChunkWriter(engine) as writer:
            while chunk is not None:
                n_rows += chunk.lines
                valid += chunk.valid
                rejected += len(chunk.rejects)
                for bad in chunk.rejects:
                    rejects.write(orjson.dumps(bad) + b"\n")
                if chunk.stored is not None:
                    appended += chunk.stored
                elif chunk.rows:
                    writer.put(chunk.rows)
                if on_progress:
                    on_progress(done(), total)
                chunk = next(parts, None)
        stored = writer.stored + appended

    return ImportReport(
        path=str(path),
        format=fmt,
        rows=n_rows,
        stored=stored,
        duplicates=valid - stored,
        rejected=rejected,
        rejects_path=str(rejects_path),
        seconds=time.perf_counter() - started,
    )
