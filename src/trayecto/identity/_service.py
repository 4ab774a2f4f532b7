"""The identity domain's operations, each one transaction: stitch events from the log,
search, the customer view, unmerge, export."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from trayecto.db import write_transaction
from trayecto.identity._golden import refresh_customers
from trayecto.identity._graph import Graph
from trayecto.identity._rules import RULES, IdType, fold, normalize
from trayecto.identity._stitch import StitchResult, Touch, stitch_touches, write_observations
from trayecto.identity._tables import (
    checkpoints,
    customers,
    event_profiles,
    identities,
    links,
    profiles,
    records,
    refusals,
)
from trayecto.kernel import NotFoundError, ValidationError, utcnow

__all__ = [
    "CONSUMER",
    "CustomerSummary",
    "CustomerView",
    "EventRef",
    "Merge",
    "checkpoint",
    "customer_profiles",
    "event_refs",
    "export_identity_rows",
    "get_customer",
    "last_processed_event",
    "process_touches",
    "search_customers",
    "unmerge",
]

CONSUMER = "identity"


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    id: UUID
    display_name: str | None
    email: str | None
    phone: str | None
    city: str | None
    last_seen_at: datetime | None
    matched_on: str


@dataclass(frozen=True, slots=True)
class Merge:
    id: UUID
    kind: str
    reason: str
    evidence: dict[str, Any]
    a_profile_id: UUID
    b_profile_id: UUID
    created_at: datetime
    removed_at: datetime | None


@dataclass(frozen=True, slots=True)
class CustomerView:
    id: UUID
    status: str
    merged_into: UUID | None
    display_name: str | None
    golden: dict[str, dict[str, Any]]
    identities: list[dict[str, Any]]
    records: list[dict[str, Any]]
    channels: dict[str, dict[str, Any]]
    counts: dict[str, int]
    merges: list[Merge]
    refusals: list[dict[str, Any]]
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    profile_ids: list[UUID] = field(default_factory=list)


def checkpoint(conn: Connection, consumer: str = CONSUMER) -> UUID | None:
    return conn.execute(
        sa.select(checkpoints.c.last_event_id).where(checkpoints.c.consumer == consumer)
    ).scalar()


def last_processed_event(engine: Engine) -> UUID | None:
    """The id of the last event of the log that identity has stitched."""
    with engine.connect() as conn:
        return checkpoint(conn)


def _set_checkpoint(conn: Connection, last: UUID, consumer: str = CONSUMER) -> None:
    done = conn.execute(
        checkpoints.update()
        .where(checkpoints.c.consumer == consumer)
        .values(last_event_id=last, updated_at=utcnow())
    )
    if done.rowcount == 0:
        conn.execute(
            checkpoints.insert().values(consumer=consumer, last_event_id=last, updated_at=utcnow())
        )


def process_touches(
    engine: Engine, touches: Sequence[Touch], region: str, key: bytes
) -> StitchResult:
    """Stitch a batch of events read from the log, and move the checkpoint past them, in
    one transaction: a crash replays the batch, never skips it."""
    if not touches:
        return StitchResult()
    with write_transaction(engine) as conn:
        graph = Graph(conn)
        result = stitch_touches(conn, graph, touches, region, key)
        graph.flush()
        write_observations(conn, result.observations)
        refresh_customers(conn, graph.dirty - graph.retired, utcnow())
        _set_checkpoint(conn, max(t.event_id for t in touches))
    return result


def _resolve_id(conn: Connection, customer_id: UUID) -> tuple[UUID, Any]:
    row = conn.execute(sa.select(customers).where(customers.c.id == customer_id)).first()
    if row is None:
        raise NotFoundError("no such customer", code="customer_not_found", field="id")
    return customer_id, row


def customer_profiles(conn: Connection, customer_id: UUID) -> list[UUID]:
    return list(
        conn.execute(
            sa.select(profiles.c.id).where(profiles.c.customer_id == customer_id)
        ).scalars()
    )


def search_customers(engine: Engine, q: str, region: str, limit: int = 20) -> list[CustomerSummary]:
    """Find customers by any identifier (normalised the way it is stored) or by name."""
    text = q.strip()
    if not text:
        raise ValidationError("type something to search for", code="empty_query", field="q")
    limit = max(1, min(limit, 100))
    found: dict[UUID, str] = {}
    candidates: list[tuple[IdType, str]] = []
    for kind in (IdType.EMAIL, IdType.PHONE, IdType.WHATSAPP_ID):
        v = normalize(kind, text, region)
        if v:
            candidates.append((kind, v))
    for kind in (
        IdType.CUSTOMER_NUMBER,
        IdType.LOYALTY_CARD,
        IdType.ONLINE_ID,
        IdType.POS_ID,
        IdType.MARKETPLACE_ID,
        IdType.SOCIAL_HANDLE,
        IdType.CALL_CENTER_ID,
    ):
        v = normalize(kind, text, region)
        if v:
            candidates.append((kind, v))
    with engine.connect() as conn:
        if candidates:
            conds = [
                sa.and_(identities.c.type == k.value, identities.c.value == v)
                for k, v in candidates
            ]
            rows = conn.execute(
                sa.select(identities.c.type, profiles.c.customer_id)
                .join(profiles, profiles.c.id == identities.c.profile_id)
                .where(sa.or_(*conds))
            ).all()
            for r in rows:
                found.setdefault(r.customer_id, r.type)
        key = fold(text)
        if key and len(found) < limit:
            hi = key + "\uffff"
            for col in (customers.c.name_key, customers.c.name_key_rev):
                rows = conn.execute(
                    sa.select(customers.c.id)
                    .where(customers.c.status == "active", col >= key, col < hi)
                    .order_by(col)
                    .limit(limit)
                ).all()
                for r in rows:
                    found.setdefault(r.id, "name")
        if not found:
            return []
        rows = conn.execute(sa.select(customers).where(customers.c.id.in_(list(found)))).all()
        last_seen = dict(
            conn.execute(
                sa.select(profiles.c.customer_id, sa.func.max(event_profiles.c.occurred_at))
                .join(event_profiles, event_profiles.c.profile_id == profiles.c.id)
                .where(profiles.c.customer_id.in_(list(found)))
                .group_by(profiles.c.customer_id)
            ).all()
        )
    out = []
    for r in rows:
        g = r.golden or {}
        out.append(
            CustomerSummary(
                id=r.id,
                display_name=r.display_name,
                email=g.get("email", {}).get("value"),
                phone=g.get("phone", {}).get("value"),
                city=g.get("city", {}).get("value"),
                last_seen_at=last_seen.get(r.id),
                matched_on=found[r.id],
            )
        )
    out.sort(key=lambda s: (s.matched_on == "name", s.display_name or ""))
    return out[:limit]


def get_customer(engine: Engine, customer_id: UUID) -> CustomerView:
    with engine.connect() as conn:
        _, row = _resolve_id(conn, customer_id)
        # A merged customer redirects to the one it became (chains are not flattened, so
        # that an unmerge can restore them exactly).
        for _ in range(100):
            if row.status != "merged" or row.merged_into is None:
                break
            row = conn.execute(sa.select(customers).where(customers.c.id == row.merged_into)).one()
        cid = row.id
        pids = customer_profiles(conn, cid)
        ident_rows = conn.execute(
            sa.select(identities)
            .where(identities.c.profile_id.in_(pids))
            .order_by(identities.c.first_seen_at)
        ).all()
        rec_rows = conn.execute(sa.select(records).where(records.c.profile_id.in_(pids))).all()
        per_channel = conn.execute(
            sa.select(
                event_profiles.c.channel,
                sa.func.count(),
                sa.func.min(event_profiles.c.occurred_at),
                sa.func.max(event_profiles.c.occurred_at),
            )
            .where(event_profiles.c.profile_id.in_(pids))
            .group_by(event_profiles.c.channel)
        ).all()
        link_rows = conn.execute(
            sa.select(links)
            .where(sa.or_(links.c.a_profile_id.in_(pids), links.c.b_profile_id.in_(pids)))
            .order_by(links.c.created_at)
        ).all()
        refusal_rows = conn.execute(
            sa.select(refusals)
            .where(sa.or_(refusals.c.a_profile_id.in_(pids), refusals.c.b_profile_id.in_(pids)))
            .order_by(refusals.c.created_at.desc())
            .limit(50)
        ).all()
    channels = {
        ch: {"events": int(n), "first_seen_at": lo.isoformat(), "last_seen_at": hi.isoformat()}
        for ch, n, lo, hi in per_channel
    }
    idents = [
        {
            "type": r.type,
            "value": r.value,
            "channel": r.channel,
            "source_id": str(r.source_id) if r.source_id else None,
            "strong": RULES[IdType(r.type)].strong,
            "shared": r.shared,
            "first_seen_at": r.first_seen_at.isoformat(),
        }
        for r in ident_rows
    ]
    recs = [
        {
            "source_id": str(r.source_id),
            "record_id": r.record_id,
            "attributes": r.attributes,
            "traits": r.traits,
            "observed_at": r.observed_at.isoformat(),
        }
        for r in rec_rows
    ]
    by_type: dict[str, int] = defaultdict(int)
    for i in idents:
        by_type[i["type"]] += 1
    return CustomerView(
        id=cid,
        status=row.status,
        merged_into=row.merged_into,
        display_name=row.display_name,
        golden=row.golden or {},
        identities=idents,
        records=recs,
        channels=channels,
        counts={
            "events": sum(c["events"] for c in channels.values()),
            "profiles": len(pids),
            "identities": len(idents),
            "records": len(recs),
        },
        merges=[
            Merge(
                k.id,
                k.kind,
                k.reason,
                k.evidence,
                k.a_profile_id,
                k.b_profile_id,
                k.created_at,
                k.removed_at,
            )
            for k in link_rows
        ],
        refusals=[
            {
                "rule": r.rule,
                "reason": r.reason,
                "evidence": r.evidence,
                "at": r.created_at.isoformat(),
            }
            for r in refusal_rows
        ],
        first_seen_at=min((lo for _, _, lo, _ in per_channel), default=None),
        last_seen_at=max((hi for _, _, _, hi in per_channel), default=None),
        profile_ids=pids,
    )


@dataclass(frozen=True, slots=True)
class EventRef:
    event_id: UUID
    occurred_at: datetime
    channel: str
    type: str


def event_refs(
    engine: Engine,
    customer_id: UUID,
    *,
    channel: str | None = None,
    type_: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: tuple[datetime, UUID] | None = None,
    limit: int = 50,
) -> list[EventRef]:
    """The customer's events across every channel, newest first (keyset on time, id)."""
    ep = event_profiles.c
    with engine.connect() as conn:
        pids = customer_profiles(conn, customer_id)
        if not pids:
            raise NotFoundError("no such customer", code="customer_not_found", field="id")
        conds: list[sa.ColumnElement[bool]] = [ep.profile_id.in_(pids)]
        if channel:
            conds.append(ep.channel == channel)
        if type_:
            conds.append(ep.type == type_)
        if since:
            conds.append(ep.occurred_at >= since)
        if until:
            conds.append(ep.occurred_at < until)
        if before:
            t, eid = before
            conds.append(
                sa.or_(ep.occurred_at < t, sa.and_(ep.occurred_at == t, ep.event_id < eid))
            )
        rows = conn.execute(
            sa.select(ep.event_id, ep.occurred_at, ep.channel, ep.type)
            .where(*conds)
            .order_by(ep.occurred_at.desc(), ep.event_id.desc())
            .limit(limit)
        ).all()
    return [EventRef(r.event_id, r.occurred_at, r.channel, r.type) for r in rows]


def unmerge(engine: Engine, link_id: UUID, reason: str) -> list[UUID]:
    """Undo one merge; returns the customers it leaves."""
    with write_transaction(engine) as conn:
        graph = Graph(conn)
        result = graph.unlink(link_id, reason)
        refresh_customers(conn, graph.dirty - graph.retired, utcnow())
    return result


def export_identity_rows(engine: Engine) -> Iterator[tuple[UUID, str, UUID]]:
    """``(source_id, record_id, customer_id)`` for every source record."""
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=5000).execute(
            sa.select(records.c.source_id, records.c.record_id, profiles.c.customer_id)
            .join(profiles, profiles.c.id == records.c.profile_id)
            .order_by(records.c.source_id, records.c.record_id)
        )
        for r in result:
            yield r.source_id, r.record_id, r.customer_id
