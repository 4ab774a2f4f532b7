"""Probabilistic matching, in batch: find customers who share no identifier but are likely
the same person, merge the near-certain ones, queue the doubtful ones for review.

A run (``run_matching``, what ``trayecto resolve`` calls after the deterministic sync):

1. reads every active customer (golden attributes, all emails and phones) into DuckDB and
   compares each one's fingerprint with ``id_match_index``: customers that are new or
   changed since the last run are the *new side*;
2. takes the latest learned model, or learns one (first run, ``full``, ``retrain``):
   ``_match_splink.train``;
3. scores the blocked pairs that have a new customer on at least one side (new against
   all), or every blocked pair with ``full``;
4. above ``upper`` merges through ``Graph.try_link(kind="probabilistic")`` (the graph's
   guard rails still apply; a refused merge is recorded); between ``lower`` and
   ``upper`` writes a pending ``id_match_candidates`` row with per-field evidence; below,
   nothing. A pair already decided (accepted, rejected, merged, refused) is never
   proposed again, whatever later runs score it;
5. records the fingerprints it scored and the run (model, thresholds, counts, time).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from trayecto.db import dialect_insert, write_transaction
from trayecto.identity._golden import refresh_customers
from trayecto.identity._graph import Graph
from trayecto.identity._match_data import (
    Customer,
    arrow_table,
    create_input,
    read_customers,
    read_index,
)
from trayecto.identity._match_model import BLOCKING_RULES, describe_model
from trayecto.identity._match_splink import Scored, score, train
from trayecto.identity._tables import links, match_candidates, match_index, match_runs
from trayecto.kernel import ValidationError, new_id, utcnow

__all__ = ["MatchReport", "Progress", "latest_model_row", "run_matching"]

#: ``on_progress(stage, done, total)``; total is None when unknown.
Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True, slots=True)
class MatchReport:
    run_id: UUID
    customers: int  # active customers read
    new_customers: int  # new or changed since the last run: the side that was scored
    pairs_scored: int  # blocked pairs compared by the model
    auto_merged: int
    queued: int
    refused: int  # above the upper threshold, but a graph rule refused the merge
    skipped: int  # already decided in an earlier run or review
    trained: bool
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)  # describe_model(): m, u, weights


def _weight(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log2(p / (1 - p))


def _check_thresholds(upper: float, lower: float) -> None:
    if not 0 < lower <= upper < 1:
        raise ValidationError(
            "thresholds must satisfy 0 < lower <= upper < 1",
            code="invalid_thresholds",
            field="lower",
        )


def latest_model_row(conn: Connection) -> Any:
    return conn.execute(
        sa.select(match_runs)
        .where(match_runs.c.status == "done", match_runs.c.model.is_not(None))
        .order_by(match_runs.c.started_at.desc(), match_runs.c.id.desc())
        .limit(1)
    ).first()


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


def run_matching(
    engine: Engine,
    home_dir: Path,
    *,
    upper: float = 0.99,
    lower: float = 0.8,
    full: bool = False,
    retrain: bool = False,
    on_progress: Progress | None = None,
    memory_limit: str = "4GB",
) -> MatchReport:
    """One matching run; see the module's docstring."""
    _check_thresholds(upper, lower)
    import duckdb

    progress = on_progress or (lambda _s, _d, _t: None)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    run_id = new_id()
    with write_transaction(engine) as conn:
        conn.execute(
            match_runs.insert().values(
                id=run_id,
                started_at=utcnow(),
                status="running",
                params={
                    "upper": upper,
                    "lower": lower,
                    "full": full,
                    "retrain": retrain,
                    "blocking_rules": list(BLOCKING_RULES),
                },
            )
        )
    home_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="match-", dir=home_dir))
    con = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": str(scratch)})
    try:
        # 1. export
        t = time.perf_counter()
        with engine.connect() as conn:
            index = {} if full else read_index(conn)
            prev = latest_model_row(conn)
            rows: list[Customer] = list(
                read_customers(conn, on_progress=lambda n: progress("reading customers", n, None))
            )
        new = {c.id for c in rows if index.get(c.id) != c.fingerprint}
        con.register("m_arrow", arrow_table(rows, new))
        con.execute("CREATE TABLE m_raw AS SELECT * FROM m_arrow")
        con.unregister("m_arrow")
        create_input(con, "m_raw")
        timings["export"] = time.perf_counter() - t

        # 2. model
        t = time.perf_counter()
        trained = False
        if prev is None or full or retrain:
            if len(rows) < 2:
                model: dict[str, Any] | None = None
            else:
                model = train(con, "m_input", on_step=lambda s: progress(f"learning: {s}", 0, None))
                trained = True
        else:
            model = prev.model["splink"]
        timings["train"] = time.perf_counter() - t

        # 3. score
        t = time.perf_counter()
        scored: list[Scored] = []
        pairs = 0
        if model is not None and new:
            progress("scoring pairs", 0, None)
            scored, pairs = score(
                con,
                model,
                table="m_input",
                new_only=not full and len(new) < len(rows),
                threshold_weight=_weight(lower),
            )
        timings["score"] = time.perf_counter() - t

        # 4. decide
        t = time.perf_counter()
        counts = _apply(engine, run_id, scored, model or {}, upper, lower, progress)
        timings["apply"] = time.perf_counter() - t

        # 5. remember what was scored; a customer this run merged is remembered as it is
        # now (its parts were both compared with everyone already).
        t = time.perf_counter()
        survivors = counts.pop("survivors")
        with engine.connect() as conn:
            merged = list(read_customers(conn, ids=sorted(survivors))) if survivors else []
        _remember(engine, [c for c in rows if c.id in new and c.id not in survivors] + merged)
        timings["index"] = time.perf_counter() - t
    except BaseException as exc:
        with write_transaction(engine) as conn:
            conn.execute(
                match_runs.update()
                .where(match_runs.c.id == run_id)
                .values(status="failed", finished_at=utcnow(), stats={"error": str(exc)[:500]})
            )
        raise
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)

    seconds = time.perf_counter() - started
    described = describe_model(model) if model else {}
    stats = {
        "customers": len(rows),
        "new_customers": len(new),
        "pairs_scored": pairs,
        "above_lower": len(scored),
        **counts,
        "trained": trained,
        "seconds": round(seconds, 3),
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    with write_transaction(engine) as conn:
        conn.execute(
            match_runs.update()
            .where(match_runs.c.id == run_id)
            .values(
                status="done",
                finished_at=utcnow(),
                model={"splink": model, "described": described, "trained_in_run": trained}
                if model
                else sa.null(),
                stats=stats,
            )
        )
    return MatchReport(
        run_id=run_id,
        customers=len(rows),
        new_customers=len(new),
        pairs_scored=pairs,
        auto_merged=counts["auto_merged"],
        queued=counts["queued"],
        refused=counts["refused"],
        skipped=counts["skipped"],
        trained=trained,
        seconds=seconds,
        timings=timings,
        model=described,
    )


def _apply(
    engine: Engine,
    run_id: UUID,
    scored: list[Scored],
    model: dict[str, Any],
    upper: float,
    lower: float,
    progress: Progress,
    chunk: int = 500,
) -> dict[str, Any]:
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
            for a, b, s in keyed:
                status = decided.get((a, b))
                if status is not None and status != "pending":
                    counts["skipped"] += 1
                    continue
                if graph.customer_of(a) == graph.customer_of(b):
                    continue  # joined by an earlier pair of this run
                evidence = _evidence(s)
                _label_evidence(evidence, model)
                details = {
                    "probability": round(s.probability, 6),
                    "match_weight": round(s.match_weight, 3),
                    "fields": evidence,
                    "run_id": str(run_id),
                }
                link_id = None
                if s.probability >= upper:
                    ok = graph.try_link(
                        a,
                        b,
                        [],
                        at,
                        kind="probabilistic",
                        reason=f"probabilistic match, p={s.probability:.4f}",
                        details=details,
                    )
                    new_status = "auto_merged" if ok else "refused"
                    counts["auto_merged" if ok else "refused"] += 1
                    if ok:
                        survivors.add(graph.customer_of(a))
                        graph.flush()  # the graph writes behind; the link must be stored
                        link_id = conn.execute(
                            sa.select(links.c.id)
                            .where(links.c.a_profile_id == a, links.c.b_profile_id == b)
                            .order_by(links.c.created_at.desc())
                            .limit(1)
                        ).scalar()
                elif s.probability >= lower:
                    new_status = "pending"
                    counts["queued"] += 1
                else:
                    continue
                row = {
                    "run_id": run_id,
                    "probability": s.probability,
                    "match_weight": s.match_weight,
                    "evidence": {"fields": evidence},
                    "status": new_status,
                    "link_id": link_id,
                }
                if status == "pending":
                    conn.execute(
                        match_candidates.update()
                        .where(
                            match_candidates.c.a_profile_id == a,
                            match_candidates.c.b_profile_id == b,
                        )
                        .values(
                            **row,
                            decided_by="matcher" if link_id else None,
                            decided_at=at if link_id else None,
                        )
                    )
                else:
                    ins = dialect_insert(conn, match_candidates).on_conflict_do_nothing()
                    conn.execute(
                        ins.values(
                            id=new_id(),
                            a_profile_id=a,
                            b_profile_id=b,
                            created_at=at,
                            decided_by="matcher" if new_status != "pending" else None,
                            decided_at=at if new_status != "pending" else None,
                            **row,
                        )
                    )
            graph.flush()
            refresh_customers(conn, graph.dirty - graph.retired, at)
        progress("merging and queueing", start + len(part), len(todo))
    counts["survivors"] = survivors
    return counts


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


def _remember(engine: Engine, scored: list[Customer], chunk: int = 5000) -> None:
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
