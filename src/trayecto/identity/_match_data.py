"""What the matcher reads: one row per active customer, exported from the operational
store into DuckDB, with the normalised columns the model compares and a fingerprint that
says whether the customer changed since it was last matched."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from trayecto.identity._tables import customers, identities, match_index, profiles

__all__ = [
    "ATTRS",
    "Customer",
    "create_input",
    "fingerprint",
    "load_population",
    "read_customers",
    "read_index",
]

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
    text = "\x1f".join((*(v or "" for v in values), "|".join(emails), "|".join(phones)))
    return hashlib.sha256(text.encode()).hexdigest()


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
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[Customer]:
    """Every active customer (or those of ``ids``) with its golden attributes and all its
    emails and phones. The whole population is read in two streaming scans (contacts,
    then customers), never one query per page: a join per page costs SQLite a second per
    20,000 customers."""
    if ids is not None:
        wanted = sorted(set(ids))
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            contacts = _contacts(conn, part)
            rows = conn.execute(
                sa.select(customers.c.id, customers.c.golden).where(
                    customers.c.status == "active", customers.c.id.in_(part)
                )
            ).all()
            yield from (_customer(r.id, r.golden, contacts.get(r.id)) for r in rows)
        return
    contacts = _all_contacts(conn)
    result = conn.execution_options(yield_per=20_000).execute(
        sa.select(customers.c.id, _raw(customers.c.id).label("raw"), customers.c.golden).where(
            customers.c.status == "active"
        )
    )
    for n, r in enumerate(result, 1):
        yield _customer(r.id, r.golden, contacts.get(r.raw))
        if on_progress and n % 20_000 == 0:
            on_progress(n)


def _customer(cid: UUID, golden: Any, contacts: dict[str, list[str]] | None) -> Customer:
    values = _golden_values(golden)
    c = contacts or {}
    emails = tuple(sorted(set(c.get("email", ()))))
    phones = tuple(sorted(set(c.get("phone", ()))))
    return Customer(cid, values, emails, phones, fingerprint(values, emails, phones))


def _raw(col: Any) -> Any:
    return sa.type_coerce(col, sa.String)


def _all_contacts(conn: Connection) -> dict[Any, dict[str, list[str]]]:
    """Everyone's emails and phones: two plain scans joined here (a join in SQLite probes
    the profiles index once per identifier, in random order)."""
    # Ids as the driver gives them (no UUID object per row: a million of them cost seconds).
    owner = {
        pid: cid
        for pid, cid in conn.execution_options(yield_per=100_000).execute(
            sa.select(_raw(profiles.c.id), _raw(profiles.c.customer_id))
        )
    }
    out: dict[Any, dict[str, list[str]]] = {}
    result = conn.execution_options(yield_per=100_000).execute(
        sa.select(_raw(identities.c.profile_id), identities.c.type, identities.c.value).where(
            identities.c.type.in_(("email", "phone", "whatsapp_id"))
        )
    )
    for pid, kind, value in result:
        cid = owner.get(pid)
        if cid is None:
            continue
        entry = out.get(cid)
        if entry is None:
            entry = out[cid] = {"email": [], "phone": []}
        entry["email" if kind == "email" else "phone"].append(value)
    return out


def _contacts(conn: Connection, ids: list[UUID]) -> dict[UUID, dict[str, list[str]]]:
    """Emails and phones of the customers ``ids``: their profiles, then those profiles'
    identifiers (two index lookups; a join lets SQLite scan every identifier)."""
    owner = {
        pid: cid
        for pid, cid in conn.execute(
            sa.select(profiles.c.id, profiles.c.customer_id).where(profiles.c.customer_id.in_(ids))
        )
    }
    out: dict[UUID, dict[str, list[str]]] = {}
    pids = list(owner)
    for start in range(0, len(pids), 500):
        for pid, kind, value in conn.execute(
            sa.select(identities.c.profile_id, identities.c.type, identities.c.value).where(
                identities.c.profile_id.in_(pids[start : start + 500])
            )
        ):
            if kind not in ("email", "phone", "whatsapp_id"):
                continue
            entry = out.setdefault(owner[pid], {"email": [], "phone": []})
            entry["email" if kind == "email" else "phone"].append(value)
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


def _ids(con: Any, table: str) -> set[str]:
    return {r[0] for r in con.execute(f"SELECT unique_id FROM {table}").fetchall()}


def load_population(
    con: Any,
    conn: Connection,
    *,
    since: datetime | None,
    index: dict[UUID, str],
    on_progress: Callable[[int], None] | None = None,
) -> tuple[list[Customer], set[UUID], int]:
    """Fill the DuckDB table ``m_raw`` with every active customer; return the customers
    read, those new or changed since they were last matched, and how many there are.

    With ``since`` (when the run that left ``m_raw`` in this DuckDB file started), only
    customers updated since then are read again, plus any active one the file lacks;
    customers no longer active (merged, erased) are dropped. Otherwise everyone is read.
    """
    if since is None:
        rows = list(read_customers(conn, on_progress=on_progress))
        new = {c.id for c in rows if index.get(c.id) != c.fingerprint}
        con.register("m_arrow", arrow_table(rows, new))
        con.execute("CREATE OR REPLACE TABLE m_raw AS SELECT * FROM m_arrow")
        con.unregister("m_arrow")
        return rows, new, len(rows)
    active = {
        str(i)
        for i in conn.execute(sa.select(customers.c.id).where(customers.c.status == "active"))
        .scalars()
        .all()
    }
    changed = {
        str(i)
        for i in conn.execute(
            sa.select(customers.c.id).where(customers.c.updated_at >= since)
        ).scalars()
    }
    held = _ids(con, "m_raw")
    reread = (changed & active) | (active - held)
    rows = list(read_customers(conn, ids=[UUID(i) for i in reread]))
    new = {c.id for c in rows if index.get(c.id) != c.fingerprint}
    gone = (held - active) | reread
    con.execute("UPDATE m_raw SET is_new = false")
    if gone:
        con.register("m_gone", pa.table({"unique_id": sorted(gone)}))
        con.execute("DELETE FROM m_raw WHERE unique_id IN (SELECT unique_id FROM m_gone)")
        con.unregister("m_gone")
    if rows:
        con.register("m_arrow", arrow_table(rows, new))
        con.execute("INSERT INTO m_raw SELECT * FROM m_arrow")
        con.unregister("m_arrow")
    total = int(con.execute("SELECT count(*) FROM m_raw").fetchall()[0][0])
    return rows, new, total
