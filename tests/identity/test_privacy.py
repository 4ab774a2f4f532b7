"""Consent, export and erasure — erasure that really erases: every table, the database
files' bytes, and re-ingestion of the same identifiers."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.commerce.conftest import LOCATIONS, PRODUCTS, STOCK, order_body, write
from trayecto import access, collect, commerce, db, identity
from trayecto.bootstrap import Platform
from trayecto.db import write_transaction
from trayecto.kernel import NotFoundError, ValidationError, utcnow

# A person nobody else resembles, so any trace of her is unmistakable.
EMAIL = "eufrasia.zq@ejemplo-unico.es"
PHONE_RAW = "611 987 654"
PHONE = "+34611987654"
FIRST, LAST = "Eufrasia", "Zurbarán-Quintanilla"
STREET = "Calle Inventada Ochentaisiete 42"
PII = [EMAIL, PHONE, "611987654", FIRST, LAST, STREET, "C-EUF-1", "203.0.113.77"]


def msg(**kw: Any) -> dict[str, Any]:
    return {"timestamp": "2026-05-01T10:00:00Z", **kw}


def ingest(p: Platform, source: access.Source, *messages: dict[str, Any]) -> None:
    origin = collect.Origin(source.id, source.channel.value, source.location_id)
    evs = [
        collect.check_message(m, origin=origin, received_at=utcnow(), max_bytes=32768)
        for m in messages
    ]
    with write_transaction(p.engine) as conn:
        collect.append_events(conn, evs)
    p.sync_identity()


@pytest.fixture
def world(platform: Platform, tmp_path: Path) -> dict[str, Any]:
    e = platform.engine
    web = access.create_source(e, "Web", "web").record
    shop = access.create_source(e, "TPV", "store", "SHOP-BCN").record
    ingest(
        platform,
        web,
        msg(type="page", anonymousId="anon-euf", name="Inicio", context={"ip": "203.0.113.77"}),
        msg(
            type="identify", anonymousId="anon-euf", userId="C-EUF-1",
            traits={"email": EMAIL, "phone": PHONE_RAW, "firstName": FIRST, "lastName": LAST,
                    "address": {"street": STREET, "postalCode": "08012", "city": "Barcelona"},
                    "consents": {"marketing": {"email": True}}},
            context={"ip": "203.0.113.77", "consent": {"categoryPreferences": {"Analytics": True}}},
        ),
        msg(type="track", userId="C-EUF-1", event="Contact Form", properties={"reply_to": EMAIL, "note": f"Llamar a {FIRST}"}),
        msg(type="identify", userId="C-OTHER", traits={"email": "otro@x.es", "firstName": "Bartolo"}),
        msg(type="track", userId="C-OTHER", event="Contact Form", properties={"reply_to": "otro@x.es"}),
    )  # fmt: skip
    ingest(
        platform,
        shop,
        msg(
            type="track",
            userId="POS-77",
            event="Store Visit",
            traits=None,
            context={"traits": {"phone": PHONE}},
        ),
    )
    path = tmp_path / "crm.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "record_id",
                "first_name",
                "last_name",
                "email",
                "address_line1",
                "consent_marketing_sms",
            ]
        )
        w.writerow(["R-EUF", FIRST, LAST, EMAIL, STREET, "no"])
        w.writerow(["R-OTHER", "Bartolo", "Ruiz", "otro@x.es", "Calle Real 1", "yes"])
    identity.import_customer_records(
        e, path, source_id=web.id, channel="web", region="ES", key=platform.secret_key
    )
    for kind, text in (("locations", LOCATIONS), ("products", PRODUCTS), ("stock", STOCK)):
        commerce.import_catalogue(e, kind, write(tmp_path, f"{kind}.csv", text))
    body = order_body("W-EUF")
    body["customer"] = {"email": EMAIL, "phone": PHONE_RAW}
    body["fulfilment"]["address"]["line1"] = STREET  # type: ignore[index]
    commerce.place_order(e, commerce.check_order(body))
    [hit] = identity.search_customers(e, EMAIL, "ES")
    return {"id": hit.id, "web": web, "path": path}


def test_consents_from_events_imports_and_api(platform: Platform, world: dict[str, Any]) -> None:
    e, cid = platform.engine, world["id"]
    got = identity.get_consents(e, cid)
    current = {(c["purpose"], c["channel"]): (c["granted"], c["origin"]) for c in got["current"]}
    assert current == {
        ("analytics", "all"): (True, "event"),
        ("marketing", "email"): (True, "event"),
        ("marketing", "sms"): (False, "import"),
    }
    assert identity.may_contact(e, cid, "marketing", "email")
    assert not identity.may_contact(e, cid, "marketing", "sms")
    assert not identity.may_contact(e, cid, "marketing", "push")  # opt-in: silence is no
    assert identity.record_consent(e, cid, "marketing", "all", False, evidence={"by": "agent"})
    assert not identity.record_consent(e, cid, "marketing", "all", False)  # no change
    assert not identity.may_contact(e, cid, "marketing", "push")
    history = identity.get_consents(e, cid)["history"]
    assert next(h["origin"] for h in history) == "api"
    assert len(history) == 4
    with pytest.raises(ValidationError):
        identity.record_consent(e, cid, "astrology", "all", True)


def test_export_holds_everything(platform: Platform, world: dict[str, Any]) -> None:
    data = platform.export_customer(world["id"])
    text = orjson.dumps(data).decode()
    for value in (EMAIL, PHONE, FIRST, STREET, "R-EUF", "W-EUF"):
        assert value in text, value
    assert {e["event"] for e in data["events"]} >= {"Inicio", "Contact Form", "Store Visit"}
    assert len(data["orders"]) == 1
    assert data["consents"]["current"]
    assert "otro@x.es" not in text
    assert "Bartolo" not in text


def _all_rows(p: Platform) -> str:
    out = []
    with p.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            out.append(repr(conn.execute(sa.select(table)).all()))
    return "\n".join(out).casefold()


def test_erasure_really_erases(platform: Platform, world: dict[str, Any]) -> None:
    e = platform.engine
    before = _all_rows(platform)
    assert all(v.casefold() in before for v in PII)  # the scan can see her before
    counts = platform.erase_customer(world["id"], requested_by="dpo@retailer.es")
    assert counts["events_anonymised"] >= 4
    assert counts["orders_anonymised"] == 1
    assert counts["suppressed_identifiers"] >= 3

    rows = _all_rows(platform)
    for value in PII:
        assert value.casefold() not in rows, f"{value!r} survived in a table"
    assert "otro@x.es" in rows
    assert "bartolo" in rows
    with pytest.raises(NotFoundError):
        identity.get_customer(e, world["id"])
    assert identity.search_customers(e, EMAIL, "ES") == []
    # Events are kept, anonymised: the shop still knows a contact form was sent.
    forms = collect.query_events(e, collect.EventFilter(event="Contact Form")).data
    assert len(forms) == 2
    erased = next(f for f in forms if f.user_id is None)
    assert erased.properties == {"reply_to": collect.ERASED, "note": collect.ERASED}
    assert erased.traits is None
    assert erased.context is None

    if e.dialect.name == "sqlite":
        path = Path(e.url.database or "")
        raw = b"".join(f.read_bytes() for f in (path, Path(f"{path}-wal")) if f.exists()).lower()
        for value in PII:
            for enc in (value.encode(), value.lower().encode()):
                assert enc not in raw, f"{value!r} survived in the database file's bytes"

    # She comes back through every door: nothing of her is stored again.
    ingest(
        platform,
        world["web"],
        msg(
            type="identify",
            userId="C-EUF-1",
            traits={"email": EMAIL, "firstName": FIRST},
            messageId="again-1",
        ),
    )
    assert identity.search_customers(e, EMAIL, "ES") == []
    [again] = collect.query_events(e, collect.EventFilter(), limit=1).data
    assert again.message_id == "again-1"
    assert (again.user_id, again.traits) == (None, None)
    report = identity.import_customer_records(
        e,
        world["path"],
        source_id=world["web"].id,
        channel="web",
        region="ES",
        key=platform.secret_key,
    )
    assert report.rejected == 1
    assert (
        orjson.loads(Path(report.rejects_path).read_bytes().splitlines()[0])["code"]
        == "erased_person"
    )
    assert FIRST.casefold() not in _all_rows(platform)
    with e.connect() as conn:
        audit = conn.execute(sa.text("SELECT requested_by, counts FROM id_erasures")).one()
    assert audit[0] == "dpo@retailer.es"
