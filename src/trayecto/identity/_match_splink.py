"""Training and scoring with Splink on DuckDB: the only module that talks to Splink."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trayecto.identity._match_model import (
    DETERMINISTIC_RULES,
    FIELDS,
    TRAINING_BLOCKS,
    block_sql,
    regularise,
    settings_dict,
)

__all__ = ["Scored", "score", "train"]

# Splink logs every SQL step at INFO; the CLI shows its own progress.
logging.getLogger("splink").setLevel(logging.ERROR)
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Scored:
    left: str
    right: str
    match_weight: float
    probability: float
    fields: list[dict[str, Any]]


def _linker(con: Any, table: str, model: dict[str, Any]) -> Any:
    from splink import DuckDBAPI, Linker

    api = DuckDBAPI(connection=con)
    return Linker(api.register(table), model, log_level=None)


def train(
    con: Any,
    table: str,
    *,
    seed: int = 7,
    max_pairs: float = 3e5,
    recall: float = 0.7,
    min_em_pairs: int = 50,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """A model learned from ``table`` alone: the prior from near-certain rules, ``u`` by
    random sampling, ``m`` by expectation maximisation over a few blocking rules."""
    step = on_step or (lambda _s: None)
    linker = _linker(con, table, settings_dict())
    step("prior")
    n = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    try:
        linker.training.estimate_probability_two_random_records_match(
            list(DETERMINISTIC_RULES), recall=recall
        )
    except Exception as exc:  # a population too small to count near-certain pairs in
        log.info("prior not estimated: %s", exc)
    # No near-certain pair at all (deterministic stitching already joined them) must not
    # mean "no two customers are ever the same": assume one in fifty has a duplicate.
    floor = 1 / (50 * max(n, 2))
    settings = linker._settings_obj
    if not settings._probability_two_random_records_match >= floor:
        settings._probability_two_random_records_match = floor
    step("u by random sampling")
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    for cols in TRAINING_BLOCKS:
        rule = block_sql(cols)
        pairs = _pairs_under(con, table, cols)
        if pairs < min_em_pairs:
            log.info("EM on %s skipped: %d pairs", rule, pairs)
            continue
        step(f"m by EM: {rule}")
        snapshot = linker.misc.save_model_to_json()
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
        except Exception as exc:  # a failed session leaves the linker half-changed
            log.warning("EM on %s failed, its estimates discarded: %s", rule, exc)
            linker = _linker(con, table, snapshot)
    model: dict[str, Any] = linker.misc.save_model_to_json()
    return regularise(model)


def _pairs_under(con: Any, table: str, cols: tuple[str, ...]) -> int:
    """How many pairs an equi-join on ``cols`` makes (nulls never join)."""
    keys = ", ".join(cols)
    not_null = " AND ".join(f"{c} IS NOT NULL" for c in cols)
    sql = (
        f"SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM "
        f"(SELECT count(*) AS n FROM {table} WHERE {not_null} GROUP BY {keys})"
    )
    return int(con.execute(sql).fetchall()[0][0])


def score(
    con: Any,
    model: dict[str, Any],
    *,
    table: str,
    new_only: bool,
    threshold_weight: float,
) -> tuple[list[Scored], int]:
    """Score the blocked pairs of ``table``, or (with ``new_only``) only the pairs with at
    least one new or changed customer: the new ones against the rest, and among
    themselves. Returns the pairs at or above ``threshold_weight`` and how many pairs were
    scored in all."""
    from splink import DuckDBAPI, Linker

    api = DuckDBAPI(connection=con)
    if not new_only:
        linker = Linker(api.register(table), model, log_level=None)
        frames = [linker.inference.predict(warning_mode="never")]
    else:
        con.execute(f"CREATE OR REPLACE VIEW m_new AS SELECT * FROM {table} WHERE is_new")
        con.execute(f"CREATE OR REPLACE VIEW m_old AS SELECT * FROM {table} WHERE NOT is_new")
        new, old = api.register("m_new"), api.register("m_old")
        linker = Linker(new, model, log_level=None)
        frames = [
            linker.inference.predict_within(new, warning_mode="never"),
            linker.inference.predict_between(new, old, warning_mode="never"),
        ]
    out: list[Scored] = []
    pairs = 0
    for df in frames:
        name = df.physical_name
        pairs += int(con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0])
        out += _rows(con, name, threshold_weight)
        df.drop_table_from_database_and_remove_from_cache()
    return out, pairs


def _rows(con: Any, physical: str, threshold_weight: float) -> list[Scored]:
    rel = con.execute(f"SELECT * FROM {physical} WHERE match_weight >= ?", [threshold_weight])
    cols = [d[0] for d in rel.description]
    out: list[Scored] = []
    while chunk := rel.fetchmany(10_000):
        for row in chunk:
            r = dict(zip(cols, row, strict=True))
            fields = []
            for name, shown in FIELDS:
                mw = r.get(f"mw_{name}")
                fields.append(
                    {
                        "field": name,
                        "left": " · ".join(str(r[f"{c}_l"]) for c in shown if r.get(f"{c}_l")),
                        "right": " · ".join(str(r[f"{c}_r"]) for c in shown if r.get(f"{c}_r")),
                        "level": r.get(f"gamma_{name}"),
                        "weight": float(mw) if mw is not None else 0.0,
                    }
                )
            out.append(
                Scored(
                    left=r["unique_id_l"],
                    right=r["unique_id_r"],
                    match_weight=float(r["match_weight"]),
                    probability=float(r["match_probability"]),
                    fields=fields,
                )
            )
    return out
