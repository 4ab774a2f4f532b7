"""The decisions of a matching run, written to the operational store: merges through the
identity graph (its guard rails apply), candidates for review, the fingerprints scored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from trayecto.db import dialect_insert, write_transaction
from trayecto.identity._golden import refresh_customers
from trayecto.identity._graph import Graph
from trayecto.identity._match_data import Customer
from trayecto.identity._match_splink import Scored
from trayecto.identity._tables import links, match_candidates, match_index
from trayecto.kernel import new_id, utcnow

__all__ = ["Progress", "apply_decisions", "remember"]

#: ``on_progress(stage, done, total)``; total is None when unknown.
Progress = Callable[[str, int, int | None], None]


def _evidence(s: Scored) -> list[dict[str, Any]]:
    return [
        {
            "field": f["field"],
            "left": f["left"] or None,
            "right": f["right"] or None,
            "level": f["level"],
            "weight": round(f["weight"], 2),
        }
        for f in s.fields
    ]


def _label_evidence(evidence: list[dict[str, Any]], model: dict[str, Any]) -> None:
    """Name each comparison level (Splink reports a number, counted from the least alike)."""
    labels: dict[str, dict[int, str]] = {}
    for comp in model.get("comparisons", []):
        levels = comp.get("comparison_levels", [])
        non_null = [lv for lv in levels if not lv.get("is_null_level")]
        names = {
            len(non_null) - 1 - i: lv.get("label_for_charts", "") for i, lv in enumerate(non_null)
        }
        names[-1] = "missing on either side"
        labels[comp.get("output_column_name", "")] = names
    for e in evidence:
        gamma = e.pop("level")
        e["level"] = labels.get(e["field"], {}).get(
            int(gamma) if gamma is not None else -1, str(gamma)
        )


def apply_decisions(
    engine: Engine,
    run_id: UUID,
    scored: list[Scored],
    model: dict[str, Any],
    upper: float,
    lower: float,
    progress: Progress,
    chunk: int = 2000,
) -> dict[str, Any]:
    """Merge, queue or skip each pair, strongest first, one transaction per chunk."""
    counts: dict[str, Any] = {"auto_merged": 0, "queued": 0, "refused": 0, "skipped": 0}
    survivors: set[UUID] = set()
    todo = sorted(scored, key=lambda s: -s.match_weight)
    for start in range(0, len(todo), chunk):
        part = todo[start : start + chunk]
        with write_transaction(engine) as conn:
            graph = Graph(conn)
            at = utcnow()
            keyed = [
                (min(UUID(s.left), UUID(s.right)), max(UUID(s.left), UUID(s.right)), s)
                for s in part
            ]
            decided = _existing(conn, [(a, b) for a, b, _ in keyed])
            graph.prefetch_customers({x for a, b, _ in keyed for x in (a, b)})
            fresh: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            merged: list[tuple[UUID, UUID]] = []
            for a, b, s in keyed:
                status = decided.get((a, b))
                if status is not None and status != "pending":
                    counts["skipped"] += 1
                    continue
                if s.probability < lower:
                    continue
                if graph.customer_of(a) == graph.customer_of(b):
                    continue  # joined by an earlier pair of this run
                evidence = _evidence(s)
                _label_evidence(evidence, model)
                new_status = "pending"
                if s.probability >= upper:
                    ok = graph.try_link(
                        a,
                        b,
                        [],
                        at,
                        kind="probabilistic",
                        reason=f"probabilistic match, p={s.probability:.4f}",
                        details={
                            "probability": round(s.probability, 6),
                            "match_weight": round(s.match_weight, 3),
                            "fields": evidence,
                            "run_id": str(run_id),
                        },
                    )
                    new_status = "auto_merged" if ok else "refused"
                    if ok:
                        survivors.add(graph.customer_of(a))
                        merged.append((a, b))
                counts["queued" if new_status == "pending" else new_status] += 1
                row: dict[str, Any] = {
                    "a": a,
                    "b": b,
                    "run_id": run_id,
                    "probability": s.probability,
                    "match_weight": s.match_weight,
                    "evidence": {"fields": evidence},
                    "status": new_status,
                    "decided_by": None if new_status == "pending" else "matcher",
                    "decided_at": None if new_status == "pending" else at,
                }
                (updates if status == "pending" else fresh).append(row)
            graph.flush()  # the graph writes behind: links and merges go out here
            link_ids = _link_ids(conn, merged)
            for row in fresh + updates:
                row["link_id"] = link_ids.get((row["a"], row["b"]))
            if fresh:
                ins = dialect_insert(conn, match_candidates).on_conflict_do_nothing()
                conn.execute(
                    ins,
                    [
                        {
                            "id": new_id(),
                            "a_profile_id": r.pop("a"),
                            "b_profile_id": r.pop("b"),
                            "created_at": at,
                            **r,
                        }
                        for r in fresh
                    ],
                )
            if updates:
                c = match_candidates.c
                conn.execute(
                    match_candidates.update()
                    .where(c.a_profile_id == sa.bindparam("a"), c.b_profile_id == sa.bindparam("b"))
                    .values(
                        {
                            k: sa.bindparam(k)
                            for k in (
                                "run_id",
                                "probability",
                                "match_weight",
                                "evidence",
                                "status",
                                "decided_by",
                                "decided_at",
                                "link_id",
                            )
                        }
                    ),
                    updates,
                )
            refresh_customers(conn, graph.dirty - graph.retired, at)
        progress("merging and queueing", start + len(part), len(todo))
    counts["survivors"] = survivors
    return counts


def _link_ids(conn: Connection, merged: list[tuple[UUID, UUID]]) -> dict[tuple[UUID, UUID], UUID]:
    out: dict[tuple[UUID, UUID], UUID] = {}
    for start in range(0, len(merged), 400):
        part = merged[start : start + 400]
        rows = conn.execute(
            sa.select(links.c.id, links.c.a_profile_id, links.c.b_profile_id).where(
                links.c.removed_at.is_(None),
                links.c.kind == "probabilistic",
                links.c.a_profile_id.in_([a for a, _ in part]),
            )
        ).all()
        wanted = set(part)
        for r in rows:
            if (r.a_profile_id, r.b_profile_id) in wanted:
                out[(r.a_profile_id, r.b_profile_id)] = r.id
    return out


def _existing(conn: Connection, pairs: list[tuple[UUID, UUID]]) -> dict[tuple[UUID, UUID], str]:
    if not pairs:
        return {}
    a_ids = list({a for a, _ in pairs})
    rows = conn.execute(
        sa.select(
            match_candidates.c.a_profile_id,
            match_candidates.c.b_profile_id,
            match_candidates.c.status,
        ).where(match_candidates.c.a_profile_id.in_(a_ids))
    ).all()
    wanted = set(pairs)
    return {
        (r.a_profile_id, r.b_profile_id): r.status
        for r in rows
        if (r.a_profile_id, r.b_profile_id) in wanted
    }


def remember(engine: Engine, scored: list[Customer], chunk: int = 5000) -> None:
    at = utcnow()
    for start in range(0, len(scored), chunk):
        part = scored[start : start + chunk]
        with write_transaction(engine) as conn:
            ins = dialect_insert(conn, match_index)
            stmt = ins.on_conflict_do_update(
                index_elements=["customer_id"],
                set_={
                    "fingerprint": ins.excluded.fingerprint,
                    "matched_at": ins.excluded.matched_at,
                },
            )
            conn.execute(
                stmt,
                [
                    {"customer_id": c.id, "fingerprint": c.fingerprint, "matched_at": at}
                    for c in part
                ],
            )
