"""Bulk import: JSONL (plain and gzip), CSV with a mapping, Parquet; rejects; re-runs."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import duckdb
import orjson
import pytest

from trayecto import access, collect
from trayecto.bootstrap import Platform
from trayecto.kernel import ValidationError


@pytest.fixture
def origin(platform: Platform) -> collect.Origin:
    src = access.create_source(platform.engine, "Sevilla POS", "store", "SEV-CENTRO").record
    return collect.Origin(src.id, src.channel.value, src.location_id)


def msgs(n: int) -> list[dict[str, object]]:
    return [
        {
            "type": "track",
            "event": "Order Completed",
            "userId": f"C{i:04d}",
            "messageId": f"imp-{i}",
            "properties": {"total": "19.50", "currency": "EUR"},
            "timestamp": f"2026-03-01T10:{i % 60:02d}:00Z",
        }
        for i in range(n)
    ]


def write_jsonl(path: Path, rows: list[object], raw_lines: dict[int, bytes] | None = None) -> None:
    lines = [orjson.dumps(r) for r in rows]
    for at, raw in sorted((raw_lines or {}).items()):
        lines.insert(at, raw)
    path.write_bytes(b"\n".join(lines) + b"\n")


def rejects_of(report: collect.ImportReport) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in Path(report.rejects_path).read_bytes().splitlines()]


@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "two-workers"])
def test_jsonl_with_bad_lines_keeps_every_valid_row_and_names_the_bad(
    platform: Platform, origin: collect.Origin, tmp_path: Path, workers: int
) -> None:
    path = tmp_path / "events.jsonl"
    good = msgs(50)
    bad = {"type": "track", "userId": "x", "messageId": "no-event"}
    write_jsonl(path, [*good, bad], raw_lines={10: b"{not json", 20: b'"just a string"'})
    report = collect.import_events(
        platform.engine, path, origin=origin, chunk_rows=7, workers=workers
    )
    assert (report.rows, report.stored, report.rejected, report.duplicates) == (53, 50, 3, 0)
    rej = rejects_of(report)
    assert [(r["line"], r["code"]) for r in rej] == [
        (11, "malformed_json"),
        (21, "invalid_type"),
        (53, "missing_field"),
    ]
    assert rej[2]["field"] == "event"
    assert collect.message_ids(platform.engine, origin.source_id) == {f"imp-{i}" for i in range(50)}
    stored = collect.query_events(platform.engine, collect.EventFilter(user_id="C0003")).data
    assert stored[0].location_id == "SEV-CENTRO"
    assert stored[0].channel == "store"
    # Worker processes append chunks in turns: a follower reading the log by id from the
    # start, a chunk at a time, sees every event once.
    seen, after = [], None
    while page := collect.read_log(platform.engine, after, limit=7):
        seen += [e.message_id for e in page]
        after = page[-1].id
    assert sorted(seen) == sorted(f"imp-{i}" for i in range(50))


@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "two-workers"])
def test_rerun_is_idempotent_even_without_message_ids(
    platform: Platform, origin: collect.Origin, tmp_path: Path, workers: int
) -> None:
    rows = msgs(30)
    for r in rows[:10]:
        del r["messageId"]
    path = tmp_path / "events.jsonl.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    first = collect.import_events(
        platform.engine, path, origin=origin, chunk_rows=4, workers=workers
    )
    second = collect.import_events(
        platform.engine, path, origin=origin, chunk_rows=4, workers=workers
    )
    assert (first.stored, first.duplicates) == (30, 0)
    assert (second.stored, second.duplicates) == (0, 30)
    assert collect.count_events(platform.engine) == 30


def test_csv_with_mapping_and_loose_columns(
    platform: Platform, origin: collect.Origin, tmp_path: Path
) -> None:
    path = tmp_path / "pos.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["ticket", "cliente", "accion", "fecha", "sku", "importe", "context.store_clerk"]
        )
        w.writerow(
            ["T1", "C0001", "Order Completed", "2026-03-01T10:00:00Z", "AOVE-500", "12.90", "ana"]
        )
        w.writerow(["T2", "", "Order Completed", "2026-03-01T10:05:00Z", "JABON", "5.50", "ana"])
        w.writerow(["T3", "C0002", "Order Completed", "ayer", "JABON", "5.50", "luis"])
        w.writerow(
            ["T4", "C0003", "Order Completed", "2026-03-01T11:00:00Z", "PATE", "4.75", "luis"]
        )
    mapping = collect.parse_mapping("messageId=ticket,userId=cliente,event=accion,timestamp=fecha")
    report = collect.import_events(platform.engine, path, origin=origin, mapping=mapping)
    assert (report.stored, report.rejected) == (2, 2)
    assert [(r["line"], r["field"]) for r in rejects_of(report)] == [
        (3, "userId"),
        (4, "timestamp"),
    ]
    [e] = collect.query_events(platform.engine, collect.EventFilter(user_id="C0001")).data
    assert e.message_id == "T1"
    assert e.properties == {"sku": "AOVE-500", "importe": "12.90"}
    assert e.context == {"store_clerk": "ana"}


def test_csv_mapping_errors_are_clear(
    platform: Platform, origin: collect.Origin, tmp_path: Path
) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValidationError) as info:
        collect.import_events(
            platform.engine, path, origin=origin, mapping=collect.parse_mapping("userId=nope")
        )
    assert info.value.code == "unknown_column"
    with pytest.raises(ValidationError) as info:
        collect.parse_mapping("colour=a")
    assert info.value.code == "invalid_mapping"
    with pytest.raises(ValidationError):
        collect.import_events(platform.engine, tmp_path / "x.xlsx", origin=origin)


def test_parquet(platform: Platform, origin: collect.Origin, tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    con = duckdb.connect()
    con.execute(
        f"""
        COPY (
          SELECT 'pq-' || i AS messageId, 'track' AS type, 'Product Viewed' AS event,
                 CASE WHEN i = 7 THEN NULL ELSE 'C' || i END AS userId,
                 TIMESTAMPTZ '2026-03-01 10:00:00+00' + to_minutes(i) AS timestamp,
                 {{'sku': 'AOVE-' || i, 'price': 12.5::DECIMAL(6,2)}} AS properties
          FROM range(20) t(i)
        ) TO '{path}' (FORMAT parquet)
        """
    )
    con.close()
    report = collect.import_events(platform.engine, path, origin=origin)
    assert (report.format, report.rows, report.stored, report.rejected) == ("parquet", 20, 19, 1)
    assert rejects_of(report)[0]["line"] == 8
    [e] = collect.query_events(platform.engine, collect.EventFilter(user_id="C3")).data
    assert e.properties == {"sku": "AOVE-3", "price": "12.50"}
    assert e.occurred_at.isoformat() == "2026-03-01T10:03:00+00:00"


@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "two-workers"])
def test_an_oversize_or_nul_line_is_rejected_by_its_own_text(
    platform: Platform, origin: collect.Origin, tmp_path: Path, workers: int
) -> None:
    path = tmp_path / "events.jsonl"
    rows = msgs(3)
    rows[1]["properties"] = {"blob": "x" * 40_000}  # over the 32 KB a message may take
    rows[2]["properties"] = {"text": "a\u0000b"}
    write_jsonl(path, rows)
    report = collect.import_events(platform.engine, path, origin=origin, workers=workers)
    assert (report.stored, report.rejected) == (1, 2)
    assert [(r["line"], r["code"]) for r in rejects_of(report)] == [
        (2, "message_too_large"),
        (3, "invalid_character"),
    ]
