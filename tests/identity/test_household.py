"""A household's shared identifiers (web account, customer number, phone) never fuse two
people whose names or birth dates contradict; the same person still stitches (SQLite and
PostgreSQL)."""

from __future__ import annotations

import csv
from pathlib import Path
from uuid import UUID

import sqlalchemy as sa

from tests.identity._helpers import KEY, active_customers, customer_of, run, touch
from trayecto import access, identity
from trayecto.bootstrap import Platform
from trayecto.identity._tables import refusals as t

FIELDS = ["record_id", "first_name", "last_name", "email", "phone", "birth_date"]
FIELDS += ["customer_number", "loyalty_card"]


def load(p: Platform, tmp_path: Path, *rows: list[str], name: str = "crm.csv") -> dict[str, UUID]:
    """Import records (one CSV), return record id → customer id."""
    path = tmp_path / name
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(FIELDS)
        w.writerows(rows)
    src = access.create_source(p.engine, f"CRM {name}", "store", "MAD-SERRANO").record
    identity.import_customer_records(
        p.engine, path, source_id=src.id, channel="store", region="ES", key=KEY
    )
    return {rid: cid for _s, rid, cid in identity.export_identity_rows(p.engine)}


def refusals(p: Platform) -> list[sa.Row[tuple[object, ...]]]:
    with p.engine.connect() as conn:
        return conn.execute(
            sa.select(t.c.rule, t.c.reason, t.c.evidence).order_by(t.c.created_at)
        ).all()


OVIDIO = ["WEB-1", "Ovidio", "Benavent Folch", "ovidio@x.es", "", "1979-08-12", "C1", ""]


def test_household_sharing_a_customer_number_stays_two_people(
    platform: Platform, tmp_path: Path
) -> None:
    heriberto = [
        "LOY-2",
        "HERIBERTO",
        "VILLENA GRAS",
        "heriberto@x.es",
        "694015913",
        "1968-07-08",
        "C1",  # the account he shares with Ovidio
        "2900309102680",
    ]
    cust = load(platform, tmp_path, OVIDIO, heriberto)
    assert cust["WEB-1"] != cust["LOY-2"]
    # His own identifiers are his; the shared number stays where it was first seen.
    assert customer_of(platform.engine, "email", "heriberto@x.es") == cust["LOY-2"]
    assert customer_of(platform.engine, "loyalty_card", "2900309102680") == cust["LOY-2"]
    assert customer_of(platform.engine, "customer_number", "C1") == cust["WEB-1"]
    [r] = refusals(platform)
    assert r.rule == "conflicting_attributes"
    assert "customer_number" in r.reason
    assert "HERIBERTO" in r.reason
    ev = r.evidence
    assert isinstance(ev, dict)
    assert ev["identifiers"] == ["customer_number:C1"]
    assert ev["first_name"] == "HERIBERTO ≠ ovidio"
    assert {c["attribute"] for c in ev["conflicts"]} == {"first_name", "birth_date"}
    # Both customers show the refusal (console and API read it from the customer view).
    for cid in (cust["WEB-1"], cust["LOY-2"]):
        [shown] = identity.get_customer(platform.engine, cid).refusals
        assert shown["rule"] == "conflicting_attributes"


def test_household_kept_apart_across_imports(platform: Platform, tmp_path: Path) -> None:
    # The customer's names come from what earlier imports stored, not only this batch.
    load(platform, tmp_path, OVIDIO, name="web.csv")
    cust = load(
        platform,
        tmp_path,
        ["LOY-2", "Heriberto", "Villena", "", "", "", "C1", "2900309102680"],
        name="club.csv",
    )
    assert cust["WEB-1"] != cust["LOY-2"]
    assert [r.rule for r in refusals(platform)] == ["conflicting_attributes"]


def test_same_person_with_a_typo_or_swap_still_stitches(platform: Platform, tmp_path: Path) -> None:
    rows = [
        OVIDIO,
        # Reached only through the customer number (another email, no phone before):
        ["LOY-2", "OVIDO", "BENAVENT FOLCH", "obenavent@work.es", "", "", "C1", "2900309102681"],
        ["LOY-3", "Benavent Folch", "Ovidio", "", "", "1979-12-08", "C1", ""],  # swapped
        ["LOY-4", "Ovídio", "Benavent", "", "", "1997-08-12", "C1", ""],  # accent, year slip
    ]
    cust = load(platform, tmp_path, *rows)
    assert len({cust[r[0]] for r in rows}) == 1
    assert refusals(platform) == []


def test_missing_first_name_does_not_block(platform: Platform, tmp_path: Path) -> None:
    rows = [
        OVIDIO,
        ["LOY-2", "", "Benavent Folch", "", "", "", "C1", "2900309102680"],
        ["WEB-9", "Ana", "Roca", "ana@x.es", "", "", "C9", ""],
        ["LOY-9", "", "", "", "", "", "C9", "2900309102690"],  # no name, no date
        ["WEB-7", "", "", "", "", "", "C7", ""],  # the customer has no name yet
        ["LOY-7", "Pilar", "Roca", "pilar@x.es", "", "", "C7", ""],
    ]
    cust = load(platform, tmp_path, *rows)
    assert cust["WEB-1"] == cust["LOY-2"]
    assert cust["WEB-9"] == cust["LOY-9"]
    assert cust["WEB-7"] == cust["LOY-7"]
    assert refusals(platform) == []


def test_another_strong_identifier_vouches(platform: Platform, tmp_path: Path) -> None:
    # The same email as well as the customer number: one person, whatever the first name
    # says (a loyalty card in the partner's name is not evidence of two people).
    rows = [OVIDIO, ["LOY-2", "Heriberto", "Villena", "ovidio@x.es", "", "", "C1", "29003"]]
    cust = load(platform, tmp_path, *rows)
    assert cust["WEB-1"] == cust["LOY-2"]


def test_same_name_and_shared_landline_other_generation(platform: Platform, tmp_path: Path) -> None:
    father = ["R1", "Juan", "Roca Pons", "juan@x.es", "91 555 12 34", "1958-03-01", "", ""]
    son = ["R2", "Juan", "Roca Pons", "juanito@x.es", "915551234", "1991-06-20", "", ""]
    again = ["R3", "JUAN", "ROCA PONS", "", "+34915551234", "1958-01-03", "", ""]  # slip
    cust = load(platform, tmp_path, father, son, again)
    assert cust["R1"] != cust["R2"]
    assert cust["R1"] == cust["R3"]
    [r] = refusals(platform)
    assert "birth date" in r.reason


def test_shared_web_account_in_events(platform: Platform) -> None:
    e = platform.engine
    run(e, touch("web", "identify", user="C1", traits={"firstName": "Malena", "email": "m@x.es"}))
    signup = touch(
        "web",
        "identify",
        user="C1",
        traits={"firstName": "Bernardino", "email": "b@x.es", "loyalty_card": "2901"},
    )
    browse = touch("web", "track", user="C1")
    run(e, signup, browse)
    malena = customer_of(e, "online_id", "C1")
    bernardino = customer_of(e, "email", "b@x.es")
    assert malena != bernardino
    assert customer_of(e, "loyalty_card", "2901") == bernardino
    assert active_customers(e) == 2
    refs = {r.event_id for r in identity.event_refs(e, bernardino, limit=10)}
    assert signup.event_id in refs
    # Activity on the shared account that says nothing about who it is: the account's.
    assert browse.event_id in {r.event_id for r in identity.event_refs(e, malena, limit=10)}
    # The account holder herself, by a short form of her name, stays the account's.
    run(e, touch("web", "identify", user="C1", traits={"firstName": "Male", "phone": "611223344"}))
    assert customer_of(e, "phone", "+34611223344") == malena
