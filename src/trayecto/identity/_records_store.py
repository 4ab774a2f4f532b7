"""Storing a chunk of customer records: the graph, the records, observations and golden
records, with a handful of bulk statements per chunk.

A chunk is read in a few queries (which records exist, which identifiers are suppressed,
who owns the identifiers), placed in the graph row by row in memory, and written in bulk.
Its observations are merged as they come (a chunk has one source and one time), and the
golden record of each customer it touched is computed once; a customer that had no
observations stored before the chunk (a new one, the usual case) is computed from what the
chunk writes, without reading it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from trayecto.db import bulk_insert
from trayecto.identity._consent import consents_from_record, write_consents
from trayecto.identity._golden import ObservedRow, customers_observed, refresh_customers
from trayecto.identity._graph import Graph
from trayecto.identity._privacy import suppressed
from trayecto.identity._rules import (
    Identifier,
    attributes_from_traits,
    fold,
    identifiers_from_record,
)
from trayecto.identity._stitch import better_spelling, place, upsert_observations
from trayecto.identity._tables import observations, records
from trayecto.kernel import new_id

__all__ = ["PreparedRow", "prepare_row", "store_chunk"]

#: Record fields that are identifiers only, not observed attributes.
_NOT_OBSERVED = frozenset({"customer_number", "loyalty_card"})


@dataclass(slots=True)
class PreparedRow:
    """One row of a file, normalised (identifiers, attributes) before its chunk's
    transaction begins."""

    line: int
    record_id: str
    ids: list[Identifier]
    attributes: dict[str, str]
    traits: dict[str, str]


def prepare_row(line: int, own: dict[str, str], traits: dict[str, str], region: str) -> PreparedRow:
    """``own``: the row's customer fields (``RECORD_FIELDS``) by name, ``traits``: the
    other columns; both without empty values."""
    attributes = attributes_from_traits(own, region)
    for name in ("customer_number", "loyalty_card"):
        if name in own:
            attributes[name] = own[name]
    if own.get("birth_date") and "birth_date" not in attributes:
        traits["birth_date_unparsed"] = own["birth_date"]
    return PreparedRow(
        line, own["record_id"][:200], identifiers_from_record(own, region), attributes, traits
    )


class _Observed:
    """A chunk's observations, merged as they arrive: one row per (profile, attribute,
    folded value), as ``merge_observations`` would make them (one source, one time)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[UUID, str, str], list[Any]] = {}  # key → [value, count]

    def add(self, profile: UUID, attributes: dict[str, str]) -> None:
        rows = self.rows
        for attr, value in attributes.items():
            if attr in _NOT_OBSERVED:
                continue
            text = value[:320]
            key = (profile, attr, fold(value)[:320] or text)
            row = rows.get(key)
            if row is None:
                rows[key] = [text, 1]
            else:
                row[0] = better_spelling(row[0], text)
                row[1] += 1


def store_chunk(
    conn: Connection,
    rows: list[PreparedRow],
    *,
    source_id: UUID,
    channel: str,
    key: bytes,
    at: datetime,
) -> tuple[int, int, list[int]]:
    """Store ``rows`` in the caller's transaction. Returns (stored, unchanged, lines
    refused because the person was erased)."""
    stored = unchanged = 0
    refused: list[int] = []
    graph = Graph(conn)
    existing = {
        r.record_id: r
        for r in conn.execute(
            sa.select(
                records.c.record_id, records.c.attributes, records.c.traits, records.c.profile_id
            ).where(
                records.c.source_id == source_id,
                records.c.record_id.in_([row.record_id for row in rows]),
            )
        ).all()
    }
    seen = _Observed()
    every = {i for row in rows for i in row.ids}
    erased = suppressed(conn, key, every)
    graph.prefetch(every - erased)
    new_records: dict[str, dict[str, Any]] = {}  # inserted in bulk at the end
    changed: list[dict[str, Any]] = []  # updated in bulk, in order, at the end
    for row in rows:
        if erased and any(i in erased for i in row.ids):
            refused.append(row.line)
            continue
        record_id, attributes, traits = row.record_id, row.attributes, row.traits
        old = existing.get(record_id)
        if old is not None and old.attributes == attributes and (old.traits or {}) == traits:
            unchanged += 1
            continue
        ids = row.ids
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
            changed.append({"rid": record_id, "attributes": attributes, "traits": traits or None})
            profile = old.profile_id
        seen.add(profile, attributes)
        cid = graph.customer_of(profile)
        graph.dirty.add(cid)
        graph.known.add(cid, attributes)
        changes = consents_from_record(traits)
        if changes:
            write_consents(
                conn,
                profile,
                graph.profiles_of(cid),
                changes,
                origin="import",
                source_id=source_id,
                at=at,
                evidence={"record_id": record_id},
            )
        stored += 1
    graph.flush()
    bulk_insert(conn, records, list(new_records.values()))
    if changed:
        conn.execute(
            records.update()
            .where(records.c.source_id == source_id, records.c.record_id == sa.bindparam("rid"))
            .values(
                attributes=sa.bindparam("attributes"), traits=sa.bindparam("traits"), observed_at=at
            ),
            changed,
        )
    _refresh(conn, graph, seen, source_id, channel, at)
    return stored, unchanged, refused


def _refresh(
    conn: Connection, graph: Graph, seen: _Observed, source_id: UUID, channel: str, at: datetime
) -> None:
    """Write the chunk's observations and refresh the golden record of every customer it
    touched, once each."""
    dirty = graph.dirty - graph.retired
    had = customers_observed(conn, dirty)
    known: dict[UUID, list[ObservedRow]] = {cid: [] for cid in dirty - had}
    first: list[dict[str, Any]] = []  # nothing stored to add to: plain inserts
    more: list[dict[str, Any]] = []
    customer: dict[UUID, UUID] = {}
    for (profile, attr, folded), (value, count) in seen.rows.items():
        cid = customer.get(profile)
        if cid is None:
            cid = customer[profile] = graph.customer_of(profile)
        row = {
            "profile_id": profile,
            "attribute": attr,
            "folded": folded,
            "source_id": source_id,
            "value": value,
            "channel": channel,
            "origin": "record",
            "count": count,
            "first_seen_at": at,
            "last_seen_at": at,
        }
        mine = known.get(cid)
        if mine is None:
            more.append(row)
        else:
            first.append(row)
            mine.append(
                ObservedRow(
                    profile, attr, folded, source_id, value, channel, "record", count, at, at
                )
            )
    bulk_insert(conn, observations, first)
    upsert_observations(conn, more)
    for mine in known.values():
        if len(mine) > 1:
            # The order a read gives (profile, then the key): ties are broken alike.
            mine.sort(key=lambda r: (r.profile_id, r.attribute, r.folded))
    refresh_customers(conn, dirty, at, known=known)
