"""The bulk paths of the customer-records importer: driver-level inserts and updates, the
CSV reader, golden records computed without reading observations back."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from tests.identity._helpers import KEY
from trayecto import access, db, identity, sim
from trayecto.bootstrap import Platform
from trayecto.identity._golden import golden_for
from trayecto.identity._records_read import prepare_lines
from trayecto.identity._tables import customers, refusals
from trayecto.kernel import new_id


def test_bulk_insert_and_update_store_what_sqlalchemy_stores(platform: Platform) -> None:
    at = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    rows = [
        {
            "id": new_id(),
            "a_profile_id": new_id(),
            "b_profile_id": new_id(),
            "rule": "max_per_profile",
            "reason": f"reason {i} «ñ»",
            "evidence": {"identifiers": [f"email:x{i}@y.es"], "n": i, "none": None},
            "created_at": at,
        }
        for i in range(250)  # more than one multi-row statement
    ]
    with db.write_transaction(platform.engine) as conn:
        db.bulk_insert(conn, refusals, rows[:130])
        conn.execute(refusals.insert(), rows[130:])
    with platform.engine.connect() as conn:
        stored = {r.id: r._asdict() for r in conn.execute(sa.select(refusals))}
        # Stored as SQLAlchemy stores them: found by the same bound values.
        found = conn.execute(
            sa.select(sa.func.count()).where(
                refusals.c.id.in_([r["id"] for r in rows[::7]]), refusals.c.created_at == at
            )
        ).scalar_one()
    assert stored == {r["id"]: r for r in rows}
    assert found == len(rows[::7])

    ids = [new_id() for _ in range(3)]
    with db.write_transaction(platform.engine) as conn:
        conn.execute(
            customers.insert(),
            [{"id": c, "status": "active", "golden": {}, "updated_at": at} for c in ids],
        )
        db.bulk_update(
            conn,
            customers,
            "id",
            [
                {"id": c, "golden": {"first_name": {"value": f"Ana {i}"}}, "name_key": f"ana {i}"}
                for i, c in enumerate(ids[:2])
            ],
        )
    with platform.engine.connect() as conn:
        got = {
            r.id: (r.golden, r.name_key)
            for r in conn.execute(sa.select(customers).where(customers.c.id.in_(ids)))
        }
    assert got == {
        ids[0]: ({"first_name": {"value": "Ana 0"}}, "ana 0"),
        ids[1]: ({"first_name": {"value": "Ana 1"}}, "ana 1"),
        ids[2]: ({}, None),
    }


def test_reading_rows_is_csv_dictreader(tmp_path: Path) -> None:
    text = (
        "rec,first_name,email,rec,note\r\n"
        "R1, Ana ,ana@x.es,R1b,hola\r\n"
        "\r\n"  # a blank line: skipped
        "R2,Luis\r\n"  # short: the rest is empty
        "R3,Eva,eva@x.es,R3,n,extra\r\n"  # long: rejected
        ",Sin,sin@x.es,,\r\n"  # no record id: rejected
        '"R5","Multi\nline",m@x.es,R5,""\r\n'
    )
    fields = {"rec": "record_id", "first_name": "first_name", "email": "email", "note": "note"}
    dict_reader = csv.DictReader(io.StringIO(text, newline=""))
    expected = [(dict_reader.line_num, row) for row in dict_reader]
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    lines = [(reader.line_num, cells) for cells in reader if cells]
    rows, rejects, n = prepare_lines(lines, header, fields, "ES")
    assert n == len(expected) == 5
    assert [(r["line"], r["code"]) for r in rejects] == [(5, "bad_row"), (6, "missing_field")]
    # A repeated column: the later cell wins, as in the dict csv.DictReader makes.
    assert [(r.line, r.record_id) for r in rows] == [(2, "R1b"), (4, "R2"), (8, "R5")]
    assert [line for line, _ in expected] == [2, 4, 5, 6, 8]
    assert rows[0].attributes == {"first_name": "Ana", "email": "ana@x.es"}
    assert rows[0].traits == {"note": "hola"}
    assert rows[2].attributes["first_name"] == "Multi line"


def test_golden_records_equal_those_recomputed_from_the_store(
    platform: Platform, tmp_path: Path
) -> None:
    """Customers new in a chunk get a golden record computed from what the chunk writes;
    customers seen in earlier chunks (small chunks here, so many are) from the store:
    both must be what reading every observation back gives."""
    sim.simulate(tmp_path / "sim", customers=300, days=10, seed=7)
    src = access.create_source(platform.engine, "CRM", "store", "MAD-SERRANO").record
    report = identity.import_customer_records(
        platform.engine,
        tmp_path / "sim" / "customers.csv",
        source_id=src.id,
        channel="store",
        region="ES",
        key=KEY,
        chunk_rows=40,
        chunks_per_commit=3,
    )
    assert report.stored > 300
    with platform.engine.connect() as conn:
        stored = {
            r.id: r.golden
            for r in conn.execute(
                sa.select(customers.c.id, customers.c.golden).where(customers.c.status == "active")
            )
        }
        assert len(stored) > 250
        for cid, golden in stored.items():
            assert golden == golden_for(conn, cid), cid
