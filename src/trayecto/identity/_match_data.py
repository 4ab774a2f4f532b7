"""What the matcher reads: one row per active customer, exported from the operational
store into DuckDB, with the normalised columns the model compares and a fingerprint that
says whether the customer changed since it was last matched."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from trayecto.identity._tables import customers, identities, match_index, profiles

__all__ = ["ATTRS", "Customer", "create_input", "fingerprint", "read_customers"]

#: Golden attributes the model compares.
ATTRS = (
    "first_name",
    "last_name",
    "birth_date",
    "postcode",
    "city",
    "address_line1",
    "email",
    "phone",
)


@dataclass(frozen=True, slots=True)
class Customer:
    id: UUID
    values: tuple[str | None, ...]  # ATTRS, in order
    emails: tuple[str, ...]
    phones: tuple[str, ...]
    fingerprint: str


def fingerprint(
    values: tuple[str | None, ...], emails: tuple[str, ...], phones: tuple[str, ...]
) -> str:
    h = hashlib.sha256()
    for v in (*values, "|".join(emails), "|".join(phones)):
        h.update((v or "").encode())
        h.update(b"\x1f")
    return h.hexdigest()


def _golden_values(golden: dict[str, Any] | None) -> tuple[str | None, ...]:
    g = golden or {}
    out: list[str | None] = []
    for a in ATTRS:
        v = g.get(a)
        value = v.get("value") if isinstance(v, dict) else None
        out.append(str(value) if value else None)
    return tuple(out)


def read_customers(
    conn: Connection,
    *,
    ids: list[UUID] | None = None,
    batch: int = 20_000,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[Customer]:
    """Every active customer (or those of ``ids``) with its golden attributes and all its
    emails and phones, read in keyset pages so memory holds one page of rows at a time."""
    after: UUID | None = None
    done = 0
    wanted = sorted(set(ids)) if ids is not None else None
    while True:
        q = sa.select(customers.c.id, customers.c.golden).where(customers.c.status == "active")
        if wanted is not None:
            part = wanted[done : done + 500]
            if not part:
                return
            q = q.where(customers.c.id.in_(part))
            done += len(part)
        else:
            q = q.order_by(customers.c.id).limit(batch)
            if after is not None:
                q = q.where(customers.c.id > after)
        rows = conn.execute(q).all()
        if not rows:
            if wanted is None:
                return
            continue
        contacts = _contacts(conn, [r.id for r in rows] if wanted is not None else None, rows)
        for r in rows:
            values = _golden_values(r.golden)
            c = contacts.get(r.id, {})
            emails = tuple(sorted(set(c.get("email", ()))))
            phones = tuple(sorted(set(c.get("phone", ()))))
            yield Customer(r.id, values, emails, phones, fingerprint(values, emails, phones))
        if wanted is None:
            done += len(rows)
            after = rows[-1].id
        if on_progress:
            on_progress(done)


def _contacts(
    conn: Connection, ids: list[UUID] | None, rows: Any
) -> dict[UUID, dict[str, list[str]]]:
    """Emails and phones per customer: of ``ids``, or of the id range ``rows`` spans."""
    q = (
        sa.select(profiles.c.customer_id, identities.c.type, identities.c.value)
        .join(identities, identities.c.profile_id == profiles.c.id)
        .where(identities.c.type.in_(("email", "phone", "whatsapp_id")))
    )
    if ids is not None:
        q = q.where(profiles.c.customer_id.in_(ids))
    else:
        q = q.where(profiles.c.customer_id >= rows[0].id, profiles.c.customer_id <= rows[-1].id)
    out: dict[UUID, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for cid, kind, value in conn.execute(q):
        out[cid]["email" if kind == "email" else "phone"].append(value)
    return out


def read_index(conn: Connection) -> dict[UUID, str]:
    return {
        r.customer_id: r.fingerprint
        for r in conn.execute(sa.select(match_index.c.customer_id, match_index.c.fingerprint))
    }


_SCHEMA = pa.schema(
    [
        ("unique_id", pa.string()),
        *[(a, pa.string()) for a in ATTRS],
        ("emails", pa.list_(pa.string())),
        ("phones", pa.list_(pa.string())),
        ("is_new", pa.bool_()),
    ]
)


def arrow_table(rows: list[Customer], new: set[UUID]) -> pa.Table:
    cols: dict[str, list[Any]] = {name: [] for name in _SCHEMA.names}
    for c in rows:
        cols["unique_id"].append(str(c.id))
        for a, v in zip(ATTRS, c.values, strict=True):
            cols[a].append(v)
        cols["emails"].append(list(c.emails))
        cols["phones"].append(list(c.phones))
        cols["is_new"].append(c.id in new)
    return pa.table(cols, schema=_SCHEMA)


def _fold(col: str) -> str:
    """``identity._rules.fold`` in SQL: lower case, no accents or punctuation."""
    return (
        "nullif(trim(regexp_replace(regexp_replace(lower(strip_accents("
        f"{col})), '[^a-z0-9 ]', ' ', 'g'), '\\s+', ' ', 'g')), '')"
    )


def create_input(con: Any, raw: str, name: str = "m_input") -> None:
    """``name`` ← ``raw`` with the columns the model compares (DuckDB SQL)."""
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {name} AS
        SELECT
            unique_id,
            {_fold("first_name")} AS first_name,
            {_fold("last_name")} AS last_name,
            first_name AS first_name_raw,
            last_name AS last_name_raw,
            CASE WHEN regexp_matches(birth_date, '^\\d{{4}}-\\d{{2}}-\\d{{2}}$')
                 THEN birth_date END AS birth_date,
            nullif(regexp_replace(postcode, '\\s', '', 'g'), '') AS postcode,
            {_fold("city")} AS city,
            city AS city_raw,
            {_fold("address_line1")} AS address,
            address_line1 AS address_raw,
            email,
            nullif(split_part(email, '@', 1), '') AS email_local,
            emails,
            phone,
            right(phone, 6) AS phone_tail,
            phones,
            list_transform(phones, lambda x: right(x, 6)) AS phone_tails,
            is_new
        FROM {raw}
        """
    )
