"""Customer-records import rate: ``identity.import_customer_records`` alone, records/s.

    .venv/bin/python benchmarks/bench_records.py                       # 20,000 and 100,000 people
    .venv/bin/python benchmarks/bench_records.py --people 20000 --baseline-src /tmp/old/src

``trayecto simulate`` writes ``customers.csv`` (the accuracy benchmark's noisy records,
about 1.18 records per person; kept under ``--work`` between runs), which is imported with
every column mapped (as ``bench_identity.py``'s ``all_identifiers``) into a fresh SQLite
store, each import in a child process of its own. ``--baseline-src`` names the ``src``
folder of another version of trayecto (e.g. ``git archive`` of the previous commit): the
same file is then imported by it in the same run, and both stores are compared — the
partition of records into customers (customer ids aside), each customer's golden record
(values, rules, counts; not timestamps or source ids) and the number of rows per identity
table — so a faster importer is shown to give the same result.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson

import _common as c

TARGET_RECORDS_PER_S = 5000
_TABLES = (
    "id_profiles",
    "id_customers",
    "id_identities",
    "id_links",
    "id_refusals",
    "id_observations",
    "id_consents",
    "id_records",
)


def _canonical(engine: Any) -> dict[str, Any]:
    """What the import produced, without the ids and clocks that differ between runs."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        members: dict[str, list[str]] = defaultdict(list)
        for rid, cid in conn.execute(
            sa.text(
                "SELECT r.record_id, p.customer_id FROM id_records r "
                "JOIN id_profiles p ON p.id = r.profile_id"
            )
        ):
            members[str(cid)].append(rid)
        name = {cid: min(rids) for cid, rids in members.items()}
        golden: dict[str, Any] = {}
        for cid, doc in conn.execute(
            sa.text("SELECT id, golden FROM id_customers WHERE status = 'active'")
        ):
            if str(cid) in name:
                doc = orjson.loads(doc) if isinstance(doc, str | bytes) else doc
                golden[name[str(cid)]] = {
                    attr: {k: v for k, v in g.items() if k not in ("source_id", "observed_at")}
                    for attr, g in doc.items()
                }
        counts = {
            t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in _TABLES
        }
    partition = sorted(sorted(rids) for rids in members.values())
    return {"partition": partition, "golden": golden, "counts": counts}


def _digest(data: Any) -> str:
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def child(csv_path: Path, out: Path, canonical: Path | None) -> None:
    from trayecto import access, identity

    with c.temp_home() as home:
        p = c.fresh_platform(home)
        try:
            src = access.create_source(p.engine, "CRM", "store", "MAD-SERRANO").record
            t, cpu = time.perf_counter(), time.process_time()
            report = identity.import_customer_records(
                p.engine, csv_path, source_id=src.id, channel="store", region="ES", key=p.secret_key
            )
            seconds = time.perf_counter() - t
            cpu = time.process_time() - cpu
            t = time.perf_counter()
            again = identity.import_customer_records(
                p.engine, csv_path, source_id=src.id, channel="store", region="ES", key=p.secret_key
            )
            again_s = time.perf_counter() - t
            result: dict[str, Any] = {
                "rows": report.rows,
                "stored": report.stored,
                "seconds": round(seconds, 2),
                "records_per_s": round(report.rows / seconds),
                # On a machine shared with other work the wall time depends on how much
                # of a core the import got; CPU time much less so.
                "cpu_s": round(cpu, 2),
                "records_per_cpu_s": round(report.rows / cpu),
                "reimport_stored": again.stored,
                "reimport_unchanged": again.unchanged,
                "reimport_s": round(again_s, 2),
            }
            if canonical is not None:
                data = _canonical(p.engine)
                canonical.write_bytes(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
                result["counts"] = data["counts"]
                result["digest"] = {k: _digest(data[k]) for k in ("partition", "golden")}
        finally:
            p.close()
    out.write_bytes(orjson.dumps(result))


def _run(src: Path, csv_path: Path, work: Path, label: str) -> dict[str, Any]:
    out = work / f"{label}.json"
    canonical = work / f"{label}.canonical.json"
    env = dict(os.environ, PYTHONPATH=str(src))
    cmd = [sys.executable, __file__, "--child", str(csv_path), str(out), str(canonical)]
    subprocess.run(cmd, check=True, env=env)
    result: dict[str, Any] = orjson.loads(out.read_bytes())
    result["canonical"] = str(canonical)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--people", default=None, help="simulated people per size (20000,100000; 5000 quick)"
    )
    ap.add_argument("--quick", action="store_true", help="one small size (make bench --quick)")
    ap.add_argument("--baseline-src", type=Path, help="src folder of the version to compare")
    ap.add_argument("--work", type=Path, default=Path("/tmp/trayecto-bench-records"))
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), Path(args.child[2]))
        return 0

    from trayecto import sim

    args.work.mkdir(parents=True, exist_ok=True)
    load_before = c.machine_load()
    rows, runs = [], []
    sizes = args.people or ("5000" if args.quick else "20000,100000")
    for people in (int(x) for x in sizes.split(",")):
        data = args.work / f"sim{people}"
        if not (data / "customers.csv").is_file():
            sim.simulate(data, customers=people, days=30, seed=2026)
        csv_path = data / "customers.csv"
        variants = [("current", c.ROOT / "src")]
        if args.baseline_src:
            variants.insert(0, ("baseline", args.baseline_src.resolve()))
        found: dict[str, dict[str, Any]] = {}
        for label, src in variants:
            found[label] = r = _run(src, csv_path, args.work, f"{label}-{people}")
            rows.append(
                [
                    f"{label}, {people:,} people",
                    f"{r['rows']:,}",
                    f"{r['seconds']:.1f}",
                    c.fmt_rate(r["records_per_s"]),
                    f"{r['cpu_s']:.1f}",
                    c.fmt_rate(r["records_per_cpu_s"]),
                    f"{r['reimport_s']:.1f} ({r['reimport_stored']} stored)",
                ]
            )
        same = None
        if "baseline" in found:
            a = orjson.loads(Path(found["baseline"]["canonical"]).read_bytes())
            b = orjson.loads(Path(found["current"]["canonical"]).read_bytes())
            same = {k: a[k] == b[k] for k in ("partition", "golden", "counts")}
            rows[-1].append("yes" if all(same.values()) else f"NO: {same}")
        runs.append({"people": people, **found, "same_result": same})
    columns = [
        "import",
        "records",
        "seconds",
        "records/s",
        "CPU s",
        "records/CPU s",
        "re-import s",
    ]
    if args.baseline_src:
        columns.append("same result")
        rows = [r + [""] * (len(columns) - len(r)) for r in rows]
    c.print_table("Customer-records import (SQLite)", columns, rows)
    load = c.machine_load()
    if warn := c.busy_warning(load):
        c.console.print(warn)
    path = c.write_results(
        "records",
        {"runs": runs, "target_records_per_s": TARGET_RECORDS_PER_S, "load_before": load_before},
    )
    c.console.print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
