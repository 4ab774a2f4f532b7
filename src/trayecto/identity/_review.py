"""The review queue of probabilistic matching: pairs scored between the two thresholds,
shown with their per-field evidence; an agent accepts (the customers merge, as a manual
link that ``unmerge`` can undo) or rejects (never proposed again)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from trayecto.db import write_transaction
from trayecto.identity._golden import refresh_customers
from trayecto.identity._graph import Graph
from trayecto.identity._match import latest_model_row
from trayecto.identity._tables import customers, links, match_candidates, match_runs, profiles
from trayecto.kernel import ConflictError, NotFoundError, ValidationError, utcnow

__all__ = [
    "STATUSES",
    "Candidate",
    "CustomerBrief",
    "MatchModel",
    "decide_candidate",
    "get_candidate",
    "latest_model",
    "review_queue",
]

STATUSES = ("pending", "accepted", "rejected", "auto_merged", "refused")


@dataclass(frozen=True, slots=True)
class CustomerBrief:
    id: UUID
    status: str
    display_name: str | None
    email: str | None
    phone: str | None
    birth_date: str | None
    address: str | None
    postcode: str | None
    city: str | None


@dataclass(frozen=True, slots=True)
class Candidate:
    id: UUID
    run_id: UUID
    status: str
    probability: float
    match_weight: float
    evidence: list[dict[str, Any]]  # per field: left, right, level, weight
    a: CustomerBrief  # the customers the two profiles belong to now
    b: CustomerBrief
    a_profile_id: UUID
    b_profile_id: UUID
    link_id: UUID | None
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None


@dataclass(frozen=True, slots=True)
class MatchModel:
    run_id: UUID
    trained_at: datetime
    params: dict[str, Any]
    stats: dict[str, Any]
    described: dict[str, Any]  # prior and, per field and level, m, u and weight
    splink: dict[str, Any]  # the full Splink model (settings with m and u)


def _briefs(conn: Connection, profile_ids: set[UUID]) -> dict[UUID, CustomerBrief]:
    if not profile_ids:
        return {}
    rows = conn.execute(
        sa.select(profiles.c.id.label("pid"), customers)
        .join(customers, customers.c.id == profiles.c.customer_id)
        .where(profiles.c.id.in_(list(profile_ids)))
    ).all()
    out = {}
    for r in rows:
        g = r.golden or {}

        def v(attr: str, g: dict[str, Any] = g) -> str | None:
            x = g.get(attr)
            return x.get("value") if isinstance(x, dict) else None

        out[r.pid] = CustomerBrief(
            id=r.id,
            status=r.status,
            display_name=r.display_name,
            email=v("email"),
            phone=v("phone"),
            birth_date=v("birth_date"),
            address=v("address_line1"),
            postcode=v("postcode"),
            city=v("city"),
        )
    return out


def _candidates(conn: Connection, rows: list[Any]) -> list[Candidate]:
    briefs = _briefs(conn, {r.a_profile_id for r in rows} | {r.b_profile_id for r in rows})
    return [
        Candidate(
            id=r.id,
            run_id=r.run_id,
            status=r.status,
            probability=r.probability,
            match_weight=r.match_weight,
            evidence=list((r.evidence or {}).get("fields", [])),
            a=briefs[r.a_profile_id],
            b=briefs[r.b_profile_id],
            a_profile_id=r.a_profile_id,
            b_profile_id=r.b_profile_id,
            link_id=r.link_id,
            created_at=r.created_at,
            decided_by=r.decided_by,
            decided_at=r.decided_at,
        )
        for r in rows
    ]


def review_queue(
    engine: Engine, status: str = "pending", *, after: UUID | None = None, limit: int = 50
) -> tuple[list[Candidate], UUID | None]:
    """Candidates with ``status``, oldest first (keyset on id); returns the page and the
    cursor for the next one (None at the end)."""
    if status not in STATUSES:
        raise ValidationError(
            f"status must be one of {', '.join(STATUSES)}", code="invalid_status", field="status"
        )
    limit = max(1, min(limit, 200))
    q = sa.select(match_candidates).where(match_candidates.c.status == status)
    if after is not None:
        q = q.where(match_candidates.c.id > after)
    with engine.connect() as conn:
        rows = conn.execute(q.order_by(match_candidates.c.id).limit(limit + 1)).all()
        page = _candidates(conn, list(rows[:limit]))
    return page, (page[-1].id if len(rows) > limit else None)


def get_candidate(engine: Engine, candidate_id: UUID) -> Candidate:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(match_candidates).where(match_candidates.c.id == candidate_id)
        ).first()
        if row is None:
            raise NotFoundError("no such candidate", code="candidate_not_found", field="id")
        return _candidates(conn, [row])[0]


def decide_candidate(engine: Engine, candidate_id: UUID, *, accept: bool, by: str) -> Candidate:
    """Accept (merge the two customers, a ``manual`` link with the evidence) or reject (the
    pair is never proposed again). Only a pending candidate can be decided."""
    if not by.strip():
        raise ValidationError("say who decides", code="missing_field", field="by")
    at = utcnow()
    with write_transaction(engine) as conn:
        row = conn.execute(
            sa.select(match_candidates).where(match_candidates.c.id == candidate_id)
        ).first()
        if row is None:
            raise NotFoundError("no such candidate", code="candidate_not_found", field="id")
        if row.status != "pending":
            raise ConflictError(
                f"this candidate was already decided ({row.status})",
                code="candidate_decided",
                field="id",
            )
        status, link_id = "rejected", None
        if accept:
            graph = Graph(conn)
            a, b = row.a_profile_id, row.b_profile_id
            already = graph.customer_of(a) == graph.customer_of(b)
            ok = graph.try_link(
                a,
                b,
                [],
                at,
                kind="manual",
                reason=f"accepted in review by {by.strip()[:100]}",
                details={
                    "candidate_id": str(row.id),
                    "probability": row.probability,
                    "match_weight": row.match_weight,
                    "fields": (row.evidence or {}).get("fields", []),
                    "decided_by": by.strip()[:200],
                },
            )
            graph.flush()  # the graph writes behind
            status = "accepted" if ok else "refused"
            if ok and not already:
                link_id = conn.execute(
                    sa.select(links.c.id)
                    .where(links.c.a_profile_id == a, links.c.b_profile_id == b)
                    .order_by(links.c.created_at.desc())
                    .limit(1)
                ).scalar()
            refresh_customers(conn, graph.dirty - graph.retired, at)
        conn.execute(
            match_candidates.update()
            .where(match_candidates.c.id == candidate_id)
            .values(status=status, link_id=link_id, decided_by=by.strip()[:200], decided_at=at)
        )
    return get_candidate(engine, candidate_id)


def latest_model(engine: Engine) -> MatchModel | None:
    """The model of the latest finished run (learned then, or reused from before)."""
    with engine.connect() as conn:
        row = latest_model_row(conn)
        if row is None:
            return None
        trained = row
        if not row.model.get("trained_in_run"):
            found = conn.execute(
                sa.select(match_runs)
                .where(match_runs.c.status == "done", match_runs.c.model.is_not(None))
                .order_by(match_runs.c.started_at.desc())
            ).all()
            trained = next((r for r in found if r.model.get("trained_in_run")), row)
    return MatchModel(
        run_id=row.id,
        trained_at=trained.started_at,
        params=row.params,
        stats=row.stats or {},
        described=row.model.get("described", {}),
        splink=row.model.get("splink", {}),
    )
