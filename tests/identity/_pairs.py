"""Probable duplicates for the review queue, made the way production makes them: customer
records imported, then a matching run whose thresholds queue every likely pair."""

from __future__ import annotations

import csv
from pathlib import Path

from trayecto import access, identity
from trayecto.bootstrap import Platform

HEADER = [
    "record_id", "source", "first_name", "last_name", "email", "phone", "birth_date",
    "gender", "address_line1", "postcode", "city", "region", "country",
    "customer_number", "loyalty_card", "created_at",
]  # fmt: skip

#: Two pairs that share no identifier (so nothing merges them deterministically) and two
#: people alone. Lucía's pair agrees on name and birth date; Pedro's on name and address,
#: with a typo in the surname.
RECORDS = [
    {"record_id": "A1", "first_name": "Lucía", "last_name": "García Pérez", "email": "lucia@example.es", "phone": "600112233", "birth_date": "1990-02-03", "address_line1": "Calle Serrano 10", "postcode": "28001", "city": "Madrid"},
    {"record_id": "A2", "first_name": "Lucia", "last_name": "Garcia Perez", "email": "lgarcia@correo.es", "phone": "", "birth_date": "1990-02-03", "address_line1": "C/ Serrano 10", "postcode": "28001", "city": "Madrid"},
    {"record_id": "B1", "first_name": "Pedro", "last_name": "Sanz Gil", "email": "pedro@example.es", "phone": "611223344", "birth_date": "1985-06-07", "address_line1": "Gran Vía 3", "postcode": "48001", "city": "Bilbao"},
    {"record_id": "B2", "first_name": "Pedro", "last_name": "Snaz Gil", "email": "psanz@otro.es", "phone": "", "birth_date": "", "address_line1": "Gran Via 3", "postcode": "48001", "city": "Bilbao"},
    {"record_id": "C1", "first_name": "Marta", "last_name": "López Ruiz", "email": "marta@example.es", "phone": "622334455", "birth_date": "1977-11-12", "address_line1": "Calle Sierpes 4", "postcode": "41004", "city": "Sevilla"},
    {"record_id": "D1", "first_name": "Jorge", "last_name": "Martín Díaz", "email": "jorge@example.es", "phone": "633445566", "birth_date": "1969-01-30", "address_line1": "Av. Diagonal 200", "postcode": "08018", "city": "Barcelona"},
]  # fmt: skip

#: Certain enough to merge only with overwhelming evidence: every likely pair is queued.
STRICT = 1 - 1e-12


def queue_pairs(p: Platform, tmp_path: Path) -> list[identity.Candidate]:
    """Import ``RECORDS`` and run the matcher; the pending candidates, in queue order."""
    path = tmp_path / "crm-customers.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=HEADER, restval="")
        w.writeheader()
        w.writerows({**r, "source": "CRM", "country": "ES"} for r in RECORDS)
    src = access.create_source(p.engine, "CRM", "store", "MAD-SERRANO").record
    identity.import_customer_records(
        p.engine, path, source_id=src.id, channel="store", region="ES", key=p.secret_key
    )
    report = identity.run_matching(p.engine, p.settings.resolved_home, upper=STRICT, lower=0.5)
    assert report.queued == 2, report
    pending, _ = identity.review_queue(p.engine)
    return pending
