"""Identity resolution benchmark: accuracy against the simulator's ground truth beside a
plain exact-match baseline, time per 100,000 profiles at two sizes, peak memory, and
customer search latency on a large store.

    .venv/bin/python benchmarks/bench_identity.py            # 20,000 people; 200k and 1M profiles
    .venv/bin/python benchmarks/bench_identity.py --quick    # 3,000 people; 50k and 200k profiles
    .venv/bin/python benchmarks/bench_identity.py --skip-scale  # (a) only; (b) and (c) kept

(a) Accuracy. ``trayecto simulate`` writes ``customers.csv`` (noisy records: typos, dropped
    accents, swapped names and dates, second emails, six phone formats, households, shared
    web accounts) and ``truth/records.csv`` (record → person). The records are imported
    with ``identity.import_customer_records`` (deterministic stitching as they arrive), then
    ``identity.run_matching`` (probabilistic matching); ``identity.export_identity_rows``
    gives record → customer. Precision, recall and F1 are over record pairs: a pair is
    predicted when both records end in one customer, true when both are one person.
    Baseline in the same run: records linked only when they share a normalised email or
    phone (union-find). Two variants: all columns mapped (account numbers and loyalty cards
    are identifiers), and with those withheld (email and phone are then the only
    identifiers, as for the baseline, so what matching adds is visible).
(b) Scale. A synthetic population (es_ES names, 10 % duplicates with typos, swaps and
    missing values, no shared identifier) is bulk-loaded into a fresh store at two sizes;
    each size runs in its own process: a full matching run, then an incremental one after
    1 % new customers. Peak RSS per process.
(c) Search. On the larger store: ``identity.search_customers`` for phones written four
    ways, emails and names; baseline: the raw indexed lookup of one phone in
    ``id_identities``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import random
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
import sqlalchemy as sa

import _common as c
from trayecto import access, identity, kernel, sim

TARGET_F1 = 0.97
TARGET_1M_SECONDS = 300
TARGET_P99_MS = 50


# --------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------


def _pairs(groups: dict[Any, list[str]]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for members in groups.values():
        out.update(itertools.combinations(sorted(members), 2))
    return out


def score(predicted: dict[str, Any], truth: dict[str, str]) -> dict[str, float]:
    """Pairwise precision, recall and F1 of a record → cluster assignment."""
    by_cluster: dict[Any, list[str]] = defaultdict(list)
    by_person: dict[str, list[str]] = defaultdict(list)
    for rid, cluster in predicted.items():
        by_cluster[cluster].append(rid)
    for rid, person in truth.items():
        by_person[person].append(rid)
    pred, true = _pairs(by_cluster), _pairs(by_person)
    tp = len(pred & true)
    p = tp / len(pred) if pred else 1.0
    r = tp / len(true) if true else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4), "pairs": len(pred)}


def baseline(rows: list[dict[str, str]]) -> dict[str, str]:
    """Exact match on a normalised email or phone, transitively (union-find)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    first_owner: dict[tuple[str, str], str] = {}
    for r in rows:
        rid = r["record_id"]
        for kind, raw in ((identity.IdType.EMAIL, r["email"]), (identity.IdType.PHONE, r["phone"])):
            value = identity.normalize(kind, raw, "ES")
            if not value:
                continue
            other = first_owner.setdefault((kind.value, value), rid)
            a, b = find(rid), find(other)
            if a != b:
                parent[a] = b
    return {r["record_id"]: find(r["record_id"]) for r in rows}


# --------------------------------------------------------------------------------------
# (a) accuracy on simulated data
# --------------------------------------------------------------------------------------


def accuracy(people: int, work: Path) -> dict[str, Any]:
    out = work / "sim"
    t = time.perf_counter()
    sim.simulate(out, customers=people, days=30, seed=2026)
    sim_s = time.perf_counter() - t
    with (out / "customers.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with (out / "truth" / "records.csv").open(encoding="utf-8") as fh:
        truth = {r["record_id"]: r["person_id"] for r in csv.DictReader(fh)}
    t = time.perf_counter()
    base = baseline(rows)
    base_s = time.perf_counter() - t
    result: dict[str, Any] = {
        "people": people,
        "records": len(rows),
        "simulate_s": round(sim_s, 2),
        "baseline": {**score(base, truth), "seconds": round(base_s, 3)},
    }
    withheld = work / "withheld.csv"
    with withheld.open("w", newline="", encoding="utf-8") as fh:
        header = [
            {"customer_number": "account_ref", "loyalty_card": "card_ref"}.get(k, k)
            for k in rows[0]
        ]
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows([list(r.values()) for r in rows])
    for name, path in (("all_identifiers", out / "customers.csv"), ("email_phone_only", withheld)):
        with c.temp_home() as home:
            p = c.fresh_platform(home)
            try:
                src = access.create_source(p.engine, "CRM", "store", "MAD-SERRANO").record
                t = time.perf_counter()
                identity.import_customer_records(
                    p.engine, path, source_id=src.id, channel="store", region="ES", key=p.secret_key
                )
                import_s = time.perf_counter() - t
                det = {rid: cid for _s, rid, cid in identity.export_identity_rows(p.engine)}
                with p.engine.connect() as conn:
                    refused = dict(
                        conn.execute(
                            sa.text("SELECT rule, count(*) FROM id_refusals GROUP BY rule")
                        ).all()
                    )
                t = time.perf_counter()
                report = identity.run_matching(p.engine, home)
                match_s = time.perf_counter() - t
                final = {rid: cid for _s, rid, cid in identity.export_identity_rows(p.engine)}
            finally:
                p.close()
        result[name] = {
            "deterministic_only": score(det, truth),
            "resolved": score(final, truth),
            "import_s": round(import_s, 2),
            "matching_s": round(match_s, 2),
            "per_100k_s": round((import_s + match_s) / len(rows) * 100_000, 1),
            "customers": report.customers,
            "pairs_scored": report.pairs_scored,
            "auto_merged": report.auto_merged,
            "queued": report.queued,
            "refused_while_stitching": {str(k): int(v) for k, v in sorted(refused.items())},
            "timings": {k: round(v, 2) for k, v in report.timings.items()},
            "model": report.model,
        }
    # ru_maxrss is in KiB on Linux: the peak of this process over simulate, both imports
    # and both matching runs.
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return result


# --------------------------------------------------------------------------------------
# (b) scale: synthetic profiles, bulk-loaded, in a child process per size
# --------------------------------------------------------------------------------------


def _names() -> tuple[list[str], list[str]]:
    from faker.providers.person.es_ES import Provider

    firsts = list(Provider.first_names_male) + list(Provider.first_names_female)
    return firsts, list(Provider.last_names)


def _typo(text: str, rng: random.Random) -> str:
    if len(text) < 4:
        return text
    i = rng.randrange(1, len(text) - 1)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def synth(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` customer profiles: people, and about 10 % duplicates of them that share no
    identifier (another email, no phone) and differ by a typo, a swap or a missing value."""
    rng = random.Random(seed)
    firsts, lasts = _names()
    out: list[dict[str, Any]] = []
    people = int(n / 1.1)
    for i in range(people):
        first = rng.choice(firsts)
        last = f"{rng.choice(lasts)} {rng.choice(lasts)}"
        born = (date(1940, 1, 1) + timedelta(days=rng.randrange(0, 60 * 365))).isoformat()
        area = rng.randrange(1, 53)
        out.append(
            {
                "person": i,
                "first_name": first,
                "last_name": last,
                "birth_date": born if rng.random() < 0.7 else None,
                "postcode": f"{area:02d}{rng.randrange(0, 1000):03d}",
                "city": f"Ciudad {area}",
                "address_line1": f"Calle {rng.choice(lasts)} {rng.randrange(1, 300)}",
                "email": f"{first.lower().replace(' ', '')}.{i}@correo.es",
                "phone": f"+346{i:08d}",
            }
        )
    for j in range(n - people):
        orig = out[rng.randrange(0, people)]
        d = dict(orig, email=f"otra.{j}@correo.es", phone=None)
        noise = rng.randrange(3)
        if noise == 0:
            d["last_name"] = _typo(orig["last_name"], rng)
        elif noise == 1:
            d["first_name"], d["last_name"] = orig["last_name"], orig["first_name"]
        else:
            d["birth_date"] = None
        out.append(d)
    rng.shuffle(out)
    return out


def bulk_load(engine: sa.Engine, profiles: list[dict[str, Any]], at: datetime) -> int:
    """Profiles, customers (golden record, search keys) and identities written straight
    into a SQLite store, in the encoding the store uses (hex UUIDs, epoch microseconds,
    JSON text): the importer is not what this part measures."""
    from trayecto.db import to_epoch_us
    from trayecto.identity._rules import fold  # the search keys, as the store writes them

    us = to_epoch_us(at)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for start in range(0, len(profiles), 50_000):
            prof, cust, ident = [], [], []
            for d in profiles[start : start + 50_000]:
                pid = kernel.new_id().hex
                golden = {
                    k: {"value": d[k]}
                    for k in ("first_name", "last_name", "birth_date", "postcode", "city", "address_line1", "email", "phone")
                    if d.get(k)
                }  # fmt: skip
                name = f"{d['first_name']} {d['last_name']}"
                prof.append((pid, pid, us))
                cust.append(
                    (pid, "active", name, fold(name), fold(f"{d['last_name']} {d['first_name']}"),
                     orjson.dumps(golden).decode(), us)
                )  # fmt: skip
                for kind in ("email", "phone"):
                    if d.get(kind):
                        ident.append((kind, d[kind], pid, "web", 0, us))
            cur.execute("BEGIN")
            cur.executemany(
                "INSERT INTO id_profiles (id, customer_id, created_at) VALUES (?, ?, ?)", prof
            )
            cur.executemany(
                "INSERT INTO id_customers (id, status, display_name, name_key, name_key_rev, golden, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                cust,
            )
            cur.executemany(
                "INSERT INTO id_identities (type, value, profile_id, channel, shared, first_seen_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                ident,
            )
            cur.execute("COMMIT")
    finally:
        raw.close()
    return len(profiles)


def scale_child(n: int, search: bool) -> dict[str, Any]:
    """One size, in this process: load, a full run, an incremental run, maybe search."""
    result: dict[str, Any] = {"profiles": n}
    with c.temp_home() as home:
        p = c.fresh_platform(home)
        try:
            t = time.perf_counter()
            data = synth(int(n * 1.01))
            fresh, extra = data[:n], data[n:]
            result["generate_s"] = round(time.perf_counter() - t, 1)
            t = time.perf_counter()
            bulk_load(p.engine, fresh, datetime.now(UTC))
            result["bulk_load_s"] = round(time.perf_counter() - t, 1)
            t = time.perf_counter()
            first = identity.run_matching(p.engine, home, memory_limit="8GB")
            result["full_run_s"] = round(time.perf_counter() - t, 1)
            result["full_run"] = {
                "pairs_scored": first.pairs_scored,
                "auto_merged": first.auto_merged,
                "queued": first.queued,
                "timings": {k: round(v, 1) for k, v in first.timings.items()},
            }
            bulk_load(p.engine, extra, datetime.now(UTC))
            t = time.perf_counter()
            inc = identity.run_matching(p.engine, home, memory_limit="8GB")
            result["incremental_run_s"] = round(time.perf_counter() - t, 1)
            result["incremental_run"] = {
                "new_customers": inc.new_customers,
                "customers_read": inc.customers_read,
                "pairs_scored": inc.pairs_scored,
                "auto_merged": inc.auto_merged,
                "timings": {k: round(v, 1) for k, v in inc.timings.items()},
            }
            if search:
                result["search"] = search_latency(p, fresh)
        finally:
            p.close()
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return result


# --------------------------------------------------------------------------------------
# (c) search latency
# --------------------------------------------------------------------------------------


def _phone_forms(e164: str) -> list[str]:
    n = e164.removeprefix("+34")
    return [e164, f"+34 {n[:3]} {n[3:5]} {n[5:7]} {n[7:]}", n, "0034" + n]


def search_latency(p: Any, profiles: list[dict[str, Any]], queries: int = 600) -> dict[str, Any]:
    from trayecto.identity._tables import identities  # the raw store, for the baseline

    rng = random.Random(3)
    sample = [d for d in rng.sample(profiles, min(len(profiles), queries)) if d.get("phone")]
    texts: list[tuple[str, str]] = []
    for i, d in enumerate(sample):
        kind = i % 4
        if kind < 2:
            texts.append(("phone", rng.choice(_phone_forms(d["phone"]))))
        elif kind == 2:
            texts.append(("email", d["email"]))
        else:
            texts.append(("name", f"{d['first_name']} {d['last_name'].split()[0]}"))
    lat: dict[str, list[float]] = defaultdict(list)
    found = 0
    for kind, q in texts:
        t = time.perf_counter()
        hits = identity.search_customers(p.engine, q, "ES")
        lat[kind].append((time.perf_counter() - t) * 1000)
        found += bool(hits)
    raw: list[float] = []
    with p.engine.connect() as conn:
        for d in sample[:200]:
            t = time.perf_counter()
            conn.execute(
                sa.select(identities.c.profile_id).where(
                    identities.c.type == "phone", identities.c.value == d["phone"]
                )
            ).all()
            raw.append((time.perf_counter() - t) * 1000)
    every = [x for xs in lat.values() for x in xs]

    def pct(xs: list[float], q: float) -> float:
        return round(statistics.quantiles(xs, n=100)[int(q) - 1], 2) if len(xs) > 1 else 0.0

    return {
        "queries": len(every),
        "found": found,
        "p50_ms": pct(every, 50),
        "p99_ms": pct(every, 99),
        "by_kind_p99_ms": {k: pct(v, 99) for k, v in lat.items()},
        "raw_lookup_p50_ms": pct(raw, 50),
        "raw_lookup_p99_ms": pct(raw, 99),
    }


# --------------------------------------------------------------------------------------


def run_child(n: int, search: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", str(n)] + (["--search"] if search else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"scale run {n} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3,000 people; 50k and 200k profiles")
    ap.add_argument("--people", type=int, help="people for the accuracy run")
    ap.add_argument("--sizes", help="profile counts for the scale runs, e.g. 200000,1000000")
    ap.add_argument(
        "--skip-scale",
        action="store_true",
        help="measure accuracy only; keep the scale and search figures of the previous "
        "results (marked with when they were measured)",
    )
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--search", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(scale_child(args.child, args.search)))
        return 0
    people = args.people or (3_000 if args.quick else 20_000)
    sizes = [
        int(x)
        for x in (args.sizes or ("50000,200000" if args.quick else "200000,1000000")).split(",")
    ]

    with c.temp_home("trayecto-bench-identity-") as work:
        acc = accuracy(people, work)
    b = acc["baseline"]
    rows = [
        [
            "exact email/phone (baseline)",
            b["precision"],
            b["recall"],
            b["f1"],
            "—",
            f"{b['seconds']:.2f} s",
        ]
    ]
    for name in ("all_identifiers", "email_phone_only"):
        v = acc[name]
        for stage in ("deterministic_only", "resolved"):
            s = v[stage]
            rows.append(
                [
                    f"trayecto, {name.replace('_', ' ')}: {stage.replace('_', ' ')}",
                    s["precision"],
                    s["recall"],
                    s["f1"],
                    f"{v['per_100k_s']} s" if stage == "resolved" else "—",
                    f"{v['import_s'] + (v['matching_s'] if stage == 'resolved' else 0):.1f} s",
                ]
            )
    c.print_table(
        f"Identity resolution accuracy: {people:,} simulated people, {acc['records']:,} records "
        f"(pairwise, against truth/records.csv; target F1 ≥ {TARGET_F1})",
        ["method", "precision", "recall", "F1", "per 100k records", "time"],
        rows,
    )

    if args.skip_scale:
        previous = orjson.loads((c.RESULTS_DIR / "identity.json").read_bytes())
        measured_at = previous.get("scale_measured_at") or previous["machine"]["timestamp"]
        c.console.print(f"scale and search figures kept from the run of {measured_at}")
        scale = previous["scale"]
    else:
        measured_at = None
        scale = [run_child(n, search=(n == max(sizes))) for n in sizes]
    srows = []
    for s in scale:
        srows.append(
            [
                f"{s['profiles']:,}",
                f"{s['bulk_load_s']} s",
                f"{s['full_run_s']} s",
                f"{s['full_run_s'] / s['profiles'] * 100_000:.1f} s",
                f"{s['full_run']['pairs_scored']:,}",
                f"{s['incremental_run']['new_customers']:,} → {s['incremental_run_s']} s",
                f"{s['peak_rss_mb']:,} MB",
            ]
        )
    c.print_table(
        "Probabilistic matching at scale (synthetic profiles, 10 % duplicates; full run, then "
        f"1 % new customers; target 1,000,000 in ≤ {TARGET_1M_SECONDS} s)",
        [
            "profiles",
            "bulk load",
            "full run",
            "per 100k",
            "pairs scored",
            "incremental",
            "peak RSS",
        ],
        srows,
    )
    a, z = scale[0], scale[-1]
    # cost ~ size**k: k = 1 is linear; the 1M figure is measured when 1M was run.
    k = math.log(z["full_run_s"] / a["full_run_s"]) / math.log(z["profiles"] / a["profiles"])
    est_1m = z["full_run_s"] * (1_000_000 / z["profiles"]) ** max(k, 1.0)
    search = z.get("search", {})
    if search:
        c.print_table(
            f"Customer search at {z['profiles']:,} profiles (target p99 ≤ {TARGET_P99_MS} ms)",
            ["queries", "p50", "p99", "p99 by kind", "raw phone lookup p50 / p99"],
            [
                [
                    search["queries"],
                    f"{search['p50_ms']} ms",
                    f"{search['p99_ms']} ms",
                    ", ".join(f"{k} {v} ms" for k, v in search["by_kind_p99_ms"].items()),
                    f"{search['raw_lookup_p50_ms']} / {search['raw_lookup_p99_ms']} ms",
                ]
            ],
        )
    resolved = acc["all_identifiers"]["resolved"]
    path = c.write_results(
        "identity",
        {
            "quick": args.quick,
            "accuracy": acc,
            "scale": scale,
            "scale_measured_at": measured_at,
            "cost_exponent": round(k, 3),
            "estimated_1m_full_run_s": round(est_1m, 1),
            "targets": {
                "f1": TARGET_F1,
                "f1_reached": resolved["f1"] >= TARGET_F1,
                "f1_email_phone_only_reached": acc["email_phone_only"]["resolved"]["f1"]
                >= TARGET_F1,
                "one_million_s": TARGET_1M_SECONDS,
                "search_p99_ms": TARGET_P99_MS,
            },
        },
    )
    c.console.print(
        f"cost grows as size^{k:.2f} (1.00 = linear); 1,000,000 profiles "
        f"{'measured' if z['profiles'] >= 1_000_000 else 'estimated'}: "
        f"{z['full_run_s'] if z['profiles'] >= 1_000_000 else round(est_1m)} s · results: {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
