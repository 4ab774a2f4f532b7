"""Customer records from files: ``trayecto import customers FILE.csv --source NAME``."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from trayecto.db import write_transaction
from trayecto.identity._consent import consents_from_record, write_consents
from trayecto.identity._golden import refresh_customers
from trayecto.identity._graph import Graph
from trayecto.identity._privacy import suppressed
from trayecto.identity._rules import attributes_from_traits, identifiers_from_record
from trayecto.identity._stitch import Observation, place, write_observations
from trayecto.identity._tables import records
from trayecto.kernel import ValidationError, new_id, utcnow

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
        chunk: list[tuple[int, dict[str, str], dict[str, str]]] = []

        def flush() -> None:
            nonlocal stored, unchanged, rejected
            s, u, refused = _store_chunk(engine, chunk, source_id, channel, region, key)
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
            chunk.clear()
            if on_progress:
                on_progress(raw.tell(), total)

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
            chunk.append((reader.line_num, own, traits))
            if len(chunk) >= chunk_rows:
                flush()
        flush()
    return RecordImportReport(
        str(path), n, stored, unchanged, rejected, str(rejects_path), time.perf_counter() - started
    )


def _store_chunk(
    engine: Engine,
    chunk: list[tuple[int, dict[str, str], dict[str, str]]],
    source_id: UUID,
    channel: str,
    region: str,
    key: bytes,
) -> tuple[int, int, list[int]]:
    if not chunk:
        return 0, 0, []
    at = utcnow()
    stored = unchanged = 0
    refused: list[int] = []
    with write_transaction(engine) as conn:
        graph = Graph(conn)
        ids_in_chunk = [own["record_id"][:200] for _, own, _ in chunk]
        existing = {
            r.record_id: r
            for r in conn.execute(
                sa.select(
                    records.c.record_id,
                    records.c.attributes,
                    records.c.traits,
                    records.c.profile_id,
                ).where(records.c.source_id == source_id, records.c.record_id.in_(ids_in_chunk))
            ).all()
        }
        seen: list[Observation] = []
        every = [i for _, own, _ in chunk for i in identifiers_from_record(own, region)]
        erased = suppressed(conn, key, every)
        graph.prefetch(set(every) - erased)
        new_records: dict[str, dict[str, Any]] = {}  # inserted in bulk at the end
        for line, own, traits in chunk:
            if erased and any(i in erased for i in identifiers_from_record(own, region)):
                refused.append(line)
                continue
            record_id = own["record_id"][:200]
            attributes = attributes_from_traits(own, region)
            for name in ("customer_number", "loyalty_card"):
                if name in own:
                    attributes[name] = own[name]
            if own.get("birth_date") and "birth_date" not in attributes:
                traits["birth_date_unparsed"] = own["birth_date"]
            old = existing.get(record_id)
            if old is not None and old.attributes == attributes and (old.traits or {}) == traits:
                unchanged += 1
                continue
            ids = identifiers_from_record(own, region)
            profile = place(graph, ids, at, channel, source_id, attributes) if ids else None
            if profile is None:
                profile = old.profile_id if old is not None else graph.new_profile(at)
            if old is None and record_id in new_records:
                # The same record twice in one file: the later row wins.
                pending = new_records[record_id]
                pending.update(attributes=attributes, traits=traits or None)
                profile = pending["profile_id"]
            elif old is None:
                new_records[record_id] = {
                    "id": new_id(),
                    "source_id": source_id,
                    "record_id": record_id,
                    "profile_id": profile,
                    "attributes": attributes,
                    "traits": traits or None,
                    "observed_at": at,
                }
            else:
                conn.execute(
                    records.update()
                    .where(records.c.source_id == source_id, records.c.record_id == record_id)
                    .values(attributes=attributes, traits=traits or None, observed_at=at)
                )
                profile = old.profile_id
            for attr, value in attributes.items():
                if attr in ("customer_number", "loyalty_card"):
                    continue
                seen.append(Observation(profile, attr, value, source_id, channel, "record", at))
            graph.dirty.add(graph.customer_of(profile))
            graph.known.add(graph.customer_of(profile), attributes)
            changes = consents_from_record(traits)
            if changes:
                write_consents(
                    conn,
                    profile,
                    graph.profiles_of(graph.customer_of(profile)),
                    changes,
                    origin="import",
                    source_id=source_id,
                    at=at,
                    evidence={"record_id": record_id},
                )
            stored += 1
        graph.flush()
        if new_records:
            conn.execute(records.insert(), list(new_records.values()))
        write_observations(conn, seen)
        refresh_customers(conn, graph.dirty - graph.retired, at)
    return stored, unchanged, refused
