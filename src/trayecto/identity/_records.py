"""Customer records from files: ``trayecto import customers FILE.csv --source NAME``."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID

import orjson
from sqlalchemy.engine import Engine

from trayecto.db import write_transaction
from trayecto.identity._records_store import PreparedRow, prepare_row, store_chunk
from trayecto.kernel import ValidationError, utcnow

__all__ = ["RECORD_FIELDS", "RecordImportReport", "import_customer_records", "parse_record_mapping"]

RECORD_FIELDS = (
    "record_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "birth_date",
    "gender",
    "address_line1",
    "address_line2",
    "postcode",
    "city",
    "region",
    "country",
    "customer_number",
    "loyalty_card",
)


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
        path.open("rb") as raw,
        io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as fh,
        rejects_path.open("wb") as rejects,
    ):
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
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

        def commit() -> None:
            nonlocal stored, unchanged, rejected
            if not pending:
                return
            with write_transaction(engine) as conn:
                results = [
                    store_chunk(conn, rows, source_id=source_id, channel=channel, key=key, at=at)
                    for rows, at in pending
                ]
            pending.clear()
            for s, u, refused in results:
                stored += s
                unchanged += u
                rejected += len(refused)
                for line in refused:
                    rejects.write(
                        orjson.dumps(
                            {
                                "line": line,
                                "code": "erased_person",
                                "message": "this person asked to be erased; the record was not stored",
                                "field": None,
                            }
                        )
                        + b"\n"
                    )
            if on_progress:
                on_progress(raw.tell(), total)

        last = [utcnow() - timedelta(seconds=1)]

        def flush() -> None:
            if chunk:
                # Each chunk its own time, later than the last one's (ties between two
                # chunks' observations would be broken differently).
                last[0] = max(utcnow(), last[0] + timedelta(microseconds=1))
                pending.append((list(chunk), last[0]))
                chunk.clear()
            if len(pending) >= chunks_per_commit:
                commit()

        for row in reader:
            n += 1
            if None in row:
                rejected += 1
                rejects.write(
                    orjson.dumps(
                        {
                            "line": reader.line_num,
                            "code": "bad_row",
                            "message": "more cells than the header",
                            "field": None,
                        }
                    )
                    + b"\n"
                )
                continue
            own: dict[str, str] = {}
            traits: dict[str, str] = {}
            for col, value in row.items():
                value = (value or "").strip()
                if not value:
                    continue
                if fields[col] in RECORD_FIELDS:
                    own[fields[col]] = value
                else:
                    traits[col] = value
            if not own.get("record_id"):
                rejected += 1
                rejects.write(
                    orjson.dumps(
                        {
                            "line": reader.line_num,
                            "code": "missing_field",
                            "message": "record_id is empty",
                            "field": "record_id",
                        }
                    )
                    + b"\n"
                )
                continue
            chunk.append(prepare_row(reader.line_num, own, traits, region))
            if len(chunk) >= chunk_rows:
                flush()
        flush()
        commit()
    return RecordImportReport(
        str(path), n, stored, unchanged, rejected, str(rejects_path), time.perf_counter() - started
    )
