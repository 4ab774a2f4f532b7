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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from trayecto.db import write_transaction
from trayecto.identity._match_apply import Progress, apply_decisions, remember
from trayecto.identity._match_data import (
    create_input,
    load_population,
    read_customers,
    read_index,
)
from trayecto.identity._match_model import BLOCKING_RULES, describe_model
from trayecto.identity._match_splink import Scored, score, train
from trayecto.identity._tables import match_runs
from trayecto.kernel import ValidationError, new_id, utcnow

__all__ = ["MatchReport", "Progress", "latest_model_row", "run_matching"]


@dataclass(frozen=True, slots=True)
class MatchReport:
    run_id: UUID
    customers: int  # active customers read
    new_customers: int  # new or changed since the last run: the side that was scored
    customers_read: int  # read from the store this run (the rest were kept in DuckDB)
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


def _held_since(con: Any, engine: Engine) -> Any:
    """When the run that left the population in this DuckDB file started (None: there is
    none, or that run did not finish; everything is read again)."""
    try:
        held = con.execute("SELECT run_id FROM m_state").fetchall()
    except Exception:  # no state table: a new file, or a run that failed
        return None
    if not held:
        return None
    with engine.connect() as conn:
        return conn.execute(
            sa.select(match_runs.c.started_at).where(
                match_runs.c.id == UUID(held[0][0]), match_runs.c.status == "done"
            )
        ).scalar()


def _reset_state(con: Any) -> None:
    """Forget which run the file belongs to (written again only when this run finishes)
    and drop what Splink left behind."""
    con.execute("DROP TABLE IF EXISTS m_state")
    for name, kind in con.execute(
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_name LIKE '__splink%'"
    ).fetchall():
        con.execute(f'DROP {"VIEW" if kind == "VIEW" else "TABLE"} IF EXISTS "{name}"')


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
    # The population stays in a DuckDB file between runs, so an incremental run reads
    # back from the store only the customers updated since the last one.
    con = duckdb.connect(
        str(home_dir / "match.duckdb"),
        config={"memory_limit": memory_limit, "temp_directory": str(scratch)},
    )
    try:
        # 1. export
        t = time.perf_counter()
        since = None if full else _held_since(con, engine)
        _reset_state(con)
        with engine.connect() as conn:
            index = {} if full else read_index(conn)
            prev = latest_model_row(conn)
            try:
                rows, new, total = load_population(
                    con,
                    conn,
                    since=since,
                    index=index,
                    on_progress=lambda n: progress("reading customers", n, None),
                )
            except duckdb.Error:  # a file from another version: read everyone again
                if since is None:
                    raise
                rows, new, total = load_population(con, conn, since=None, index=index)
        create_input(con, "m_raw")
        timings["export"] = time.perf_counter() - t

        # 2. model
        t = time.perf_counter()
        trained = False
        if prev is None or full or retrain:
            if total < 2:
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
                new_only=not full and len(new) < total,
                threshold_weight=_weight(lower),
            )
        timings["score"] = time.perf_counter() - t

        # 4. decide
        t = time.perf_counter()
        counts = apply_decisions(engine, run_id, scored, model or {}, upper, lower, progress)
        timings["apply"] = time.perf_counter() - t

        # 5. remember what was scored; a customer this run merged is remembered as it is
        # now (its parts were both compared with everyone already).
        t = time.perf_counter()
        survivors = counts.pop("survivors")
        with engine.connect() as conn:
            merged = list(read_customers(conn, ids=sorted(survivors))) if survivors else []
        remember(engine, [c for c in rows if c.id in new and c.id not in survivors] + merged)
        timings["index"] = time.perf_counter() - t
        con.execute("CREATE TABLE m_state AS SELECT ? AS run_id", [str(run_id)])
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
        "customers": total,
        "new_customers": len(new),
        "customers_read": len(rows),
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
        customers=total,
        new_customers=len(new),
        customers_read=len(rows),
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
