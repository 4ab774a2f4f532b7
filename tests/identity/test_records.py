"""Customer records: import with a mapping, duplicates, rejects, re-runs, export."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest

from tests.helpers import run_cli
from tests.identity._helpers import KEY, customer_of
from trayecto import access, identity
from trayecto.bootstrap import Platform
from trayecto.kernel import ValidationError

HEADER = [
    "rec_id",
    "given_name",
    "surname",
    "mail",
    "tel",
    "dob",
    "cp",
    "ciudad",
    "num_cliente",
    "tarjeta",
    "club",
]
ROWS = [
    [
        "R1",
        "Lucía",
        "García",
        "lucia@x.es",
        "600 11 22 33",
        "1990-02-03",
        "28013",
        "Madrid",
        "N1",
        "",
        "oro",
    ],
    [
        "R2",
        "lucia",
        "garcia",
        "LUCIA@x.es",
        "",
        "",
        "28013",
        "Madrid",
        "",
        "",
        "",
    ],  # same person again
    ["R3", "Pedro", "García", "familia@x.es", "", "1960-01-01", "28013", "Madrid", "N3", "", ""],
    [
        "R4",
        "Marta",
        "García",
        "familia@x.es",
        "",
        "1962-01-01",
        "28013",
        "Madrid",
        "N4",
        "",
        "",
    ],  # household
    ["", "Sin", "Id", "sinid@x.es", "", "", "", "", "", "", ""],
    ["R6", "Fecha", "Rara", "", "", "31/02/1990", "", "", "", "T-6", ""],
]
MAP = "record_id=rec_id,first_name=given_name,last_name=surname,email=mail,phone=tel,birth_date=dob,postcode=cp,city=ciudad,customer_number=num_cliente,loyalty_card=tarjeta"


def write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


def test_import_links_duplicates_keeps_households_apart_and_reports_rejects(
    platform: Platform, tmp_path: Path
) -> None:
    e = platform.engine
    src = access.create_source(e, "CRM", "web").record
    path = write(tmp_path / "crm.csv", ROWS)
    report = identity.import_customer_records(
        e,
        path,
        source_id=src.id,
        channel="web",
        region="ES",
        key=KEY,
        mapping=identity.parse_record_mapping(MAP),
    )
    assert (report.rows, report.stored, report.rejected) == (6, 5, 1)
    [rej] = [orjson.loads(x) for x in Path(report.rejects_path).read_bytes().splitlines()]
    assert (rej["line"], rej["field"]) == (6, "record_id")

    rows = {r[1]: r[2] for r in identity.export_identity_rows(e)}
    assert set(rows) == {"R1", "R2", "R3", "R4", "R6"}
    assert rows["R1"] == rows["R2"]  # the sheet's own duplicate, found by the shared email
    assert rows["R3"] != rows["R4"]  # same email, two customer numbers: a household
    view = identity.get_customer(e, rows["R1"])
    assert view.golden["first_name"]["value"] == "Lucía"
    assert view.golden["first_name"]["origin"] == "record"
    assert view.golden["phone"]["value"] == "+34600112233"
    assert {r["record_id"] for r in view.records} == {"R1", "R2"}
    r1 = next(r for r in view.records if r["record_id"] == "R1")
    assert r1["traits"] == {"club": "oro"}
    r6 = identity.get_customer(e, rows["R6"]).records[0]
    assert r6["traits"] == {"birth_date_unparsed": "31/02/1990"}
    assert customer_of(e, "loyalty_card", "T6") == rows["R6"]

    again = identity.import_customer_records(
        e,
        path,
        source_id=src.id,
        channel="web",
        region="ES",
        key=KEY,
        mapping=identity.parse_record_mapping(MAP),
    )
    assert (again.stored, again.unchanged) == (0, 5)
    assert {r[1]: r[2] for r in identity.export_identity_rows(e)} == rows


def test_mapping_errors(platform: Platform, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        identity.parse_record_mapping("shoe_size=talla")
    assert info.value.code == "invalid_mapping"
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    src = access.create_source(platform.engine, "X", "web").record
    with pytest.raises(ValidationError) as info:
        identity.import_customer_records(
            platform.engine, path, source_id=src.id, channel="web", region="ES", key=KEY
        )
    assert info.value.field == "record_id"


def test_cli_import_resolve_and_export(env: dict[str, str], tmp_path: Path) -> None:
    run_cli(
        env, "sources", "add", "Tienda Serrano", "--channel", "store", "--location", "MAD-SERRANO"
    )
    path = write(tmp_path / "alta.csv", ROWS[:4])
    proc = run_cli(
        env, "import", "customers", str(path), "--source", "Tienda Serrano", "--map", MAP
    )
    assert "4 stored" in proc.stdout
    assert "stitched" in run_cli(env, "resolve").stdout
    out = tmp_path / "ids.csv"
    run_cli(env, "export", "identities", "--format", "csv", "--out", str(out))
    lines = out.read_text().splitlines()
    assert lines[0] == "source,record_id,customer_id"
    rows = [line.split(",") for line in lines[1:]]
    assert [r[:2] for r in rows] == [["Tienda Serrano", f"R{i}"] for i in range(1, 5)]
    assert rows[0][2] == rows[1][2] != rows[2][2] != rows[3][2]
    found = run_cli(env, "customers", "search", "+34 600 11 22 33").stdout
    assert "Lucía García" in found


def test_same_record_twice_in_one_file_keeps_the_later_row(
    platform: Platform, tmp_path: Path
) -> None:
    e = platform.engine
    src = access.create_source(e, "Hoja", "store", "SHOP-1").record
    path = write(
        tmp_path / "twice.csv",
        [
            ["R9", "Ana", "Pérez", "ana9@x.es", "", "", "", "", "", "", ""],
            ["R9", "Ana María", "Pérez", "ana9@x.es", "", "", "", "", "", "", "plata"],
        ],
    )
    report = identity.import_customer_records(
        e,
        path,
        source_id=src.id,
        channel="store",
        region="ES",
        key=KEY,
        mapping=identity.parse_record_mapping(MAP),
    )
    assert (report.rows, report.rejected) == (2, 0)
    [(_, record_id, cid)] = list(identity.export_identity_rows(e))
    assert record_id == "R9"
    [rec] = identity.get_customer(e, cid).records
    assert rec["attributes"]["first_name"] == "Ana María"
    assert rec["traits"] == {"club": "plata"}
