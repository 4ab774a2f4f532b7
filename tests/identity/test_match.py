"""Probabilistic matching, on a real database (SQLite and PostgreSQL): a small simulated
population (300 people with their noisy records) plus planted cases — duplicates that
share no identifier, a household, a father and son, namesakes in two cities."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import sqlalchemy as sa

from tests.helpers import Server, run_cli
from tests.identity._helpers import snapshot
from trayecto import access, identity, sim
from trayecto.bootstrap import Platform
from trayecto.kernel import ConflictError

HEADER = [
    "record_id", "source", "first_name", "last_name", "email", "phone", "birth_date",
    "gender", "address_line1", "postcode", "city", "region", "country",
    "customer_number", "loyalty_card", "created_at",
]  # fmt: skip

#: Certain enough to merge only with overwhelming evidence: everything else is queued.
STRICT = 1 - 1e-12


def _swap_letters(text: str) -> str:
    i = len(text) // 2
    return text[: i - 1] + text[i] + text[i - 1] + text[i + 1 :]


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The simulator's records of 300 people, and duplicates of some of them planted with
    no identifier in common (another email, no phone, a typo, swapped names...)."""
    out = tmp_path_factory.mktemp("sim")
    sim.simulate(out, customers=300, days=7, seed=11)
    with (out / "customers.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with (out / "truth" / "records.csv").open(encoding="utf-8") as fh:
        truth = {r["record_id"]: r["person_id"] for r in csv.DictReader(fh)}
    seen_people: set[str] = set()
    originals = []
    for r in rows:
        person = truth[r["record_id"]]
        if r["birth_date"] and person not in seen_people and len(r["last_name"]) > 8:
            seen_people.add(person)
            originals.append(r)
    dups = []
    for i, r in enumerate(originals[:6]):
        d = dict(r, record_id=f"DUP-{i}", email=f"otra.direccion{i}@correo.es", phone="")
        d.update(customer_number="", loyalty_card="", source="shop-sheet")
        if i % 3 == 0:
            d["last_name"] = _swap_letters(r["last_name"])  # a typo
        elif i % 3 == 1:
            d["first_name"], d["last_name"] = r["last_name"], r["first_name"]  # swapped
        else:
            d["birth_date"] = ""  # no birth date, accents dropped
            d["first_name"] = r["first_name"].upper().replace("Á", "A").replace("É", "E")
        dups.append(d)
        truth[d["record_id"]] = truth[r["record_id"]]
    return {"rows": rows, "dups": dups, "truth": truth, "originals": originals}


def person(rid: str, first: str, last: str, born: str, address: str, postcode: str, city: str, email: str, phone: str) -> dict[str, str]:  # fmt: skip
    return {
        "record_id": rid, "source": "planted", "first_name": first, "last_name": last,
        "email": email, "phone": phone, "birth_date": born, "gender": "", "address_line1": address,
        "postcode": postcode, "city": city, "region": "", "country": "ES",
        "customer_number": "", "loyalty_card": "", "created_at": "",
    }  # fmt: skip


#: Never one person: a couple and their son at one address (same surnames, landline-like
#: phones next to each other), a father and son with the same name, namesakes in two cities.
HOUSEHOLD = [
    person("HH-1", "Carmen", "Ortega Ruiz", "1970-03-04", "Calle Mayor 5, 3º B", "28013", "Madrid", "carmen.o@hogar.es", "911000001"),
    person("HH-2", "Pablo", "Ortega Ruiz", "1998-07-21", "Calle Mayor 5, 3º B", "28013", "Madrid", "pablito98@hogar.es", "911000002"),
    person("HH-3", "Juan", "Ortega Ruiz", "1945-01-11", "Calle Mayor 5, 3º B", "28013", "Madrid", "juan45@hogar.es", "600000003"),
    person("HH-4", "Juan", "Ortega Ruiz", "1975-05-05", "Calle Mayor 5, 3º B", "28013", "Madrid", "juanito@hogar.es", "600000004"),
    person("NS-1", "Lucía", "Fernández Gómez", "", "Calle Sierpes 10", "41004", "Sevilla", "lucia.fg@sur.es", "655123456"),
    person("NS-2", "Lucía", "Fernández Gómez", "", "Gran Vía 3", "48001", "Bilbao", "lfgomez@norte.es", "688765432"),
]  # fmt: skip


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=HEADER)
        w.writeheader()
        w.writerows(rows)
    return path


def load(p: Platform, path: Path, source: str = "CRM") -> None:
    e = p.engine
    found = [s for s in access.list_sources(e) if s.name == source]
    src = found[0] if found else access.create_source(e, source, "store", "MAD-SERRANO").record
    identity.import_customer_records(
        e, path, source_id=src.id, channel="store", region="ES", key=p.secret_key
    )


def owners(p: Platform) -> dict[str, UUID]:
    return {rid: cid for _src, rid, cid in identity.export_identity_rows(p.engine)}


def candidate_pairs(p: Platform) -> dict[frozenset[str], str]:
    """Status of every candidate, keyed by the record ids on each side."""
    sql = sa.text(
        "SELECT r1.record_id AS a, r2.record_id AS b, c.status FROM id_match_candidates c "
        "JOIN id_records r1 ON r1.profile_id = c.a_profile_id "
        "JOIN id_records r2 ON r2.profile_id = c.b_profile_id"
    )
    with p.engine.connect() as conn:
        return {frozenset((r.a, r.b)): r.status for r in conn.execute(sql)}


@pytest.fixture
def loaded(platform: Platform, tmp_path: Path, population: dict[str, Any]) -> Platform:
    load(platform, write(tmp_path / "all.csv", population["rows"] + population["dups"] + HOUSEHOLD))
    return platform


def test_duplicates_without_a_shared_identifier_merge_households_and_namesakes_do_not(
    loaded: Platform, population: dict[str, Any]
) -> None:
    p = loaded
    before = owners(p)
    for d in population["dups"]:  # nothing deterministic joins them
        orig = next(
            r
            for r in population["originals"]
            if r["email"] != d["email"]
            and population["truth"][r["record_id"]] == population["truth"][d["record_id"]]
        )
        assert before[d["record_id"]] != before[orig["record_id"]]

    report = identity.run_matching(p.engine, p.settings.resolved_home, upper=0.99, lower=0.8)
    assert report.trained
    assert report.customers > 200
    assert report.pairs_scored > 0
    after = owners(p)
    truth = population["truth"]
    for d in population["dups"]:
        same = [
            r for r, pid in truth.items() if pid == truth[d["record_id"]] and r != d["record_id"]
        ]
        assert any(after[r] == after[d["record_id"]] for r in same), d
    ids = {after[r["record_id"]] for r in HOUSEHOLD}
    assert len(ids) == len(HOUSEHOLD)
    queued = candidate_pairs(p)
    assert not any(k <= {r["record_id"] for r in HOUSEHOLD} for k in queued)
    # Every probabilistic merge joins records of one true person.
    with p.engine.connect() as conn:
        merges = conn.execute(
            sa.text(
                "SELECT a_profile_id, b_profile_id, evidence FROM id_links WHERE kind = 'probabilistic'"
            )
        ).all()
        recs = conn.execute(sa.text("SELECT record_id, profile_id FROM id_records")).all()
    by_profile: dict[Any, set[str]] = {}
    for r in recs:
        by_profile.setdefault(r.profile_id, set()).add(truth.get(r.record_id, r.record_id))
    assert len(merges) >= len(population["dups"])
    for m in merges:
        assert by_profile[m.a_profile_id] & by_profile[m.b_profile_id]
        ev = m.evidence if isinstance(m.evidence, dict) else __import__("json").loads(m.evidence)
        assert ev["probability"] >= 0.99
        assert {f["field"] for f in ev["fields"]} >= {"first_name", "last_name", "birth_date"}
    model = identity.latest_model(p.engine)
    assert model is not None
    assert model.run_id == report.run_id
    first = next(f for f in model.described["fields"] if f["field"] == "first_name")
    veto = first["levels"][-1]
    assert veto["fixed"]
    assert veto["weight"] < -30


def test_review_queue_follows_the_thresholds_and_decisions_over_the_api(
    loaded: Platform, population: dict[str, Any], server: Server
) -> None:
    p = loaded
    report = identity.run_matching(p.engine, p.settings.resolved_home, upper=STRICT, lower=0.5)
    with p.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT status, probability FROM id_match_candidates")).all()
    assert rows
    assert report.queued == sum(r.status == "pending" for r in rows) >= 3
    for r in rows:
        assert r.probability >= 0.5
        assert (r.status == "pending") == (r.probability < STRICT)
    status = candidate_pairs(p)
    dup_ids = {d["record_id"] for d in population["dups"]}
    assert sum(1 for k, s in status.items() if s == "pending" and k & dup_ids) >= 3

    agent = access.create_token(p.engine, "ana", "agent").secret
    marketing = access.create_token(p.engine, "mk", "marketing").secret
    http = httpx.Client(base_url=server.url, timeout=30)
    auth = {"Authorization": f"Bearer {agent}"}
    assert (
        http.get("/api/review", headers={"Authorization": f"Bearer {marketing}"}).status_code == 403
    )
    page = http.get("/api/review", params={"limit": 2}, headers=auth).json()
    assert len(page["data"]) == 2
    assert page["next_cursor"]
    rest = http.get(
        "/api/review", params={"cursor": page["next_cursor"], "limit": 200}, headers=auth
    ).json()
    pending = page["data"] + rest["data"]
    assert len(pending) == report.queued
    assert rest["next_cursor"] is None
    c = pending[0]
    assert c["a"]["id"] != c["b"]["id"]
    assert c["a"]["display_name"]
    fields = {f["field"]: f for f in c["evidence"]}
    assert set(fields) == {"first_name", "last_name", "birth_date", "address", "email", "phone"}
    assert all({"left", "right", "level", "weight"} <= set(f) for f in fields.values())

    ok = http.post(f"/api/review/{c['id']}/accept", headers=auth)
    assert ok.status_code == 200, ok.text
    done = ok.json()
    assert done["status"] == "accepted"
    assert done["decided_by"] == "token:ana"
    assert done["a"]["id"] == done["b"]["id"]
    assert done["merge_id"]
    view = identity.get_customer(p.engine, UUID(done["a"]["id"]))
    assert any(m.kind == "manual" and str(m.id) == done["merge_id"] for m in view.merges)
    again = http.post(f"/api/review/{c['id']}/reject", headers=auth)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "candidate_decided"

    r = pending[1]
    no = http.post(f"/api/review/{r['id']}/reject", headers=auth)
    assert no.status_code == 200
    assert no.json()["status"] == "rejected"
    assert no.json()["a"]["id"] != no.json()["b"]["id"]
    assert (
        http.post(
            "/api/review/00000000-0000-7000-8000-000000000000/accept", headers=auth
        ).status_code
        == 404
    )
    # A rejected pair is never proposed again, not even by a full run.
    identity.run_matching(p.engine, p.settings.resolved_home, upper=STRICT, lower=0.5, full=True)
    after = identity.get_candidate(p.engine, UUID(r["id"]))
    assert after.status == "rejected"
    assert after.a.id != after.b.id
    with pytest.raises(ConflictError):
        identity.decide_candidate(p.engine, UUID(r["id"]), accept=True, by="x")


def test_runs_are_incremental(loaded: Platform, population: dict[str, Any], tmp_path: Path) -> None:
    p = loaded
    home = p.settings.resolved_home
    first = identity.run_matching(p.engine, home)
    assert first.new_customers == first.customers == first.customers_read
    assert first.auto_merged >= 6
    idle = identity.run_matching(p.engine, home)
    assert (idle.new_customers, idle.pairs_scored, idle.auto_merged, idle.trained) == (
        0,
        0,
        0,
        False,
    )

    # One new record (a duplicate of someone, again with no identifier in common) and one
    # changed record (a move to another street): only those two are scored.
    orig = population["originals"][10]
    new = dict(
        orig,
        record_id="DUP-NEW",
        email="nuevo@correo.es",
        phone="",
        customer_number="",
        loyalty_card="",
    )
    new["last_name"] = _swap_letters(orig["last_name"])
    moved = dict(HOUSEHOLD[5], address_line1="Alameda de Recalde 20", postcode="48009")
    load(
        p,
        write(
            tmp_path / "more.csv",
            [*population["rows"], *population["dups"], *HOUSEHOLD[:5], moved, new],
        ),
    )
    third = identity.run_matching(p.engine, home)
    assert third.new_customers == 2
    assert third.customers_read < first.customers / 4  # the rest is kept in DuckDB
    assert 0 < third.pairs_scored < first.pairs_scored
    ids = owners(p)
    assert third.auto_merged == 1
    assert not third.trained
    assert ids["DUP-NEW"] == ids[orig["record_id"]]
    with p.engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT status, stats FROM id_match_runs")).all()
    assert [r.status for r in runs] == ["done"] * 3


def test_unmerging_a_probabilistic_merge_restores_and_is_not_redone(loaded: Platform) -> None:
    p = loaded
    before = snapshot(p.engine)
    report = identity.run_matching(p.engine, p.settings.resolved_home)
    assert report.auto_merged >= 6
    assert snapshot(p.engine) != before
    with p.engine.connect() as conn:
        merges = list(
            conn.execute(sa.text("SELECT id FROM id_links WHERE kind = 'probabilistic'")).scalars()
        )
    for link in merges:
        identity.unmerge(p.engine, UUID(str(link)), "not the same person")
    assert snapshot(p.engine) == before
    again = identity.run_matching(p.engine, p.settings.resolved_home)
    assert again.auto_merged == 0
    assert again.skipped >= 1
    assert snapshot(p.engine) == before


def test_cli_resolve_review_and_decide(
    env: dict[str, str], tmp_path: Path, population: dict[str, Any]
) -> None:
    path = write(tmp_path / "all.csv", population["rows"][:120] + population["dups"] + HOUSEHOLD)
    run_cli(env, "sources", "add", "CRM", "--channel", "store", "--location", "MAD-SERRANO")
    run_cli(env, "import", "customers", str(path), "--source", "CRM")
    proc = run_cli(env, "resolve", "--upper", str(STRICT), "--lower", "0.5")
    assert "stitched" in proc.stdout
    assert "pairs scored" in proc.stdout
    assert "queued for review" in proc.stdout
    listing = run_cli(env, "customers", "review").stdout
    assert "first_name" in listing
    assert "birth_date" in listing
    cid = listing.split("p=")[0].split()[-1]
    UUID(cid)
    assert "rejected" in run_cli(env, "customers", "decide", cid, "--reject").stdout
    failed = run_cli(env, "customers", "decide", cid, "--accept", check=False)
    assert failed.returncode == 2
    assert "candidate_decided" in failed.stderr
    bad = run_cli(env, "resolve", "--upper", "0.5", "--lower", "0.9", check=False)
    assert bad.returncode == 2
    assert "invalid_thresholds" in bad.stderr
