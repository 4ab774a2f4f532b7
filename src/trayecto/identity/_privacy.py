"""Erasure and suppression: what identity knows about a person, and forgetting it.

Erasing runs in steps across domains (see ``Platform.erase_customer``): identity first
*plans* (which profiles, identifiers, values and events belong to the person), the other
domains anonymise their copies, and identity deletes its own rows last and keeps only
keyed hashes of the identifiers, so the same email or phone arriving again is recognised
and not stored. Because identity's rows go last, an interrupted erasure can simply be run
again.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from trayecto.db import dialect_insert, write_transaction
from trayecto.identity._rules import Identifier, IdType
from trayecto.identity._tables import (
    consents,
    customers,
    erasures,
    event_profiles,
    identities,
    links,
    match_candidates,
    match_index,
    observations,
    profiles,
    records,
    refusals,
    suppressions,
)
from trayecto.kernel import NotFoundError, new_id, utcnow

__all__ = ["ErasurePlan", "digest", "erase_identity", "plan_erasure", "suppressed"]


def digest(key: bytes, kind: str, value: str) -> str:
    """HMAC-SHA256 of an identifier: recognisable with the key, unreadable without it."""
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def suppressed(conn: Connection, key: bytes, ids: Iterable[Identifier]) -> set[Identifier]:
    """Which of ``ids`` belong to someone who was erased."""
    if conn.execute(sa.select(suppressions.c.digest).limit(1)).first() is None:
        return set()  # nobody was ever erased: no digest to compute (a batch has thousands)
    by_digest = {digest(key, k.value, v): (k, v) for k, v in ids}
    found: set[Identifier] = set()
    keys = list(by_digest)
    for start in range(0, len(keys), 500):
        part = keys[start : start + 500]
        for d in conn.execute(
            sa.select(suppressions.c.digest).where(suppressions.c.digest.in_(part))
        ).scalars():
            found.add(by_digest[d])
    return found


@dataclass
class ErasurePlan:
    customer_id: UUID
    profile_ids: list[UUID]
    identifiers: list[Identifier]
    event_ids: list[UUID]
    #: Every readable value that identifies the person (identifiers, names, addresses…),
    #: for scrubbing free text elsewhere.
    pii_values: set[str] = field(default_factory=set)

    def of_type(self, kind: IdType) -> list[str]:
        return [v for k, v in self.identifiers if k is kind]


def plan_erasure(engine: Engine, customer_id: UUID) -> ErasurePlan:
    with engine.connect() as conn:
        row = conn.execute(sa.select(customers).where(customers.c.id == customer_id)).first()
        if row is None:
            raise NotFoundError("no such customer", code="customer_not_found", field="id")
        while row.status == "merged" and row.merged_into is not None:
            row = conn.execute(sa.select(customers).where(customers.c.id == row.merged_into)).one()
        pids = list(
            conn.execute(sa.select(profiles.c.id).where(profiles.c.customer_id == row.id)).scalars()
        )
        idents = [
            (IdType(t), v)
            for t, v in conn.execute(
                sa.select(identities.c.type, identities.c.value).where(
                    identities.c.profile_id.in_(pids)
                )
            ).all()
        ]
        event_ids = list(
            conn.execute(
                sa.select(event_profiles.c.event_id).where(event_profiles.c.profile_id.in_(pids))
            ).scalars()
        )
        values: set[str] = {v for _, v in idents}
        for v in conn.execute(
            sa.select(observations.c.value).where(observations.c.profile_id.in_(pids))
        ).scalars():
            values.add(v)
        for attrs, traits in conn.execute(
            sa.select(records.c.attributes, records.c.traits).where(records.c.profile_id.in_(pids))
        ).all():
            values.update(str(v) for v in (attrs or {}).values())
            values.update(str(v) for v in (traits or {}).values())
    # Phones also as their national digits ("600112233"), as people type them.
    for k, v in idents:
        if k in (IdType.PHONE, IdType.WHATSAPP_ID) and len(v) > 6:
            values.add(v[-9:])
    values = {v for v in values if len(v.strip()) >= 3}
    return ErasurePlan(row.id, pids, idents, event_ids, values)


def erase_identity(
    engine: Engine, plan: ErasurePlan, key: bytes, requested_by: str
) -> dict[str, int]:
    """Delete everything identity holds on the person; keep suppression hashes and an
    audit row without PII. Returns what was deleted, by table."""
    pids = plan.profile_ids
    counts: dict[str, int] = {}
    with write_transaction(engine) as conn:
        for name, table, cond in (
            ("event_attributions", event_profiles, event_profiles.c.profile_id.in_(pids)),
            ("identities", identities, identities.c.profile_id.in_(pids)),
            ("records", records, records.c.profile_id.in_(pids)),
            ("observations", observations, observations.c.profile_id.in_(pids)),
            ("consents", consents, consents.c.profile_id.in_(pids)),
            (
                "merges",
                links,
                sa.or_(links.c.a_profile_id.in_(pids), links.c.b_profile_id.in_(pids)),
            ),
            (
                "refused_merges",
                refusals,
                sa.or_(refusals.c.a_profile_id.in_(pids), refusals.c.b_profile_id.in_(pids)),
            ),
            (
                "match_candidates",
                match_candidates,
                sa.or_(
                    match_candidates.c.a_profile_id.in_(pids),
                    match_candidates.c.b_profile_id.in_(pids),
                ),
            ),
            ("match_index", match_index, match_index.c.customer_id.in_(pids)),
            ("customers", customers, customers.c.id.in_(pids)),
            ("profiles", profiles, profiles.c.id.in_(pids)),
        ):
            counts[name] = max(conn.execute(table.delete().where(cond)).rowcount, 0)
        # Customers merged into this one long ago point at it: they are the same person.
        counts["customers"] += max(
            conn.execute(customers.delete().where(customers.c.merged_into.in_(pids))).rowcount, 0
        )
        rows = [
            {"digest": digest(key, k.value, v), "created_at": utcnow()}
            for k, v in plan.identifiers
            if k is not IdType.ANONYMOUS_ID and k is not IdType.DEVICE_ID
        ]
        if rows:
            conn.execute(dialect_insert(conn, suppressions).on_conflict_do_nothing(), rows)
        counts["suppressed_identifiers"] = len(rows)
        audit: dict[str, Any] = dict(counts)
        conn.execute(
            erasures.insert().values(
                id=new_id(),
                customer_id=plan.customer_id,
                requested_by=requested_by[:200],
                counts=audit,
                created_at=utcnow(),
            )
        )
    return counts
