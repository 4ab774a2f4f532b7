"""Order benchmark: (a) order intake over HTTP under 32 concurrent clients on PostgreSQL,
beside the raw rate of the same database's conditional single-row updates; (b) sourcing
cost and time against the optimum of an exact MILP (HiGHS) and a naive nearest-stock greedy.

    .venv/bin/python benchmarks/bench_orders.py [--quick] [--workers 2]
    .venv/bin/python benchmarks/bench_orders.py --only sourcing      # no database needed

Without ``TRAYECTO_TEST_DATABASE_URL`` the script re-runs itself under
``scripts/with-postgres.sh`` with ``PG_EXTRA_OPTS=''`` (a throwaway cluster with stock,
durable settings: fsync and synchronous_commit on), so ``make bench`` measures (a) too.

(a) A fresh database (project migrations) holds 50 locations, 200 SKUs and stock.
    ``trayecto serve --workers N`` serves it; ``wrk -t2 -c32`` (benchmarks/wrk_orders.lua,
    a native client: the benchmark is never bounded by its own client) POSTs 5-line
    home-delivery orders to ``/api/orders`` with an admin token for ``--seconds`` after a
    short warm-up: validation, sourcing over a snapshot, stock and capacity holds by
    conditional updates, the order's rows and history, in one statement. A tenth of the
    orders ask for a scarce SKU (40 units in all) so refusals (409 ``insufficient_stock``)
    happen under contention. Afterwards: reserved <= on hand everywhere, the ledger
    balances, the scarce SKU is reserved at most 40 times (zero oversell). The CPU time
    of the server processes and of PostgreSQL per answer says what bounds the rate.
    Baseline in the same run: pgbench, 32 clients, ``UPDATE stock SET reserved =
    reserved + 1 WHERE … AND on_hand - reserved >= 1`` on random rows of the same table,
    and on only 10 rows (hot rows).
(b) 2,000 random 5-line orders over 50 locations: the engine (``commerce.source``, with
    its explanation) and its optimiser alone, against HiGHS on the same model.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
import sqlalchemy as sa

import _common as c
from trayecto import access, commerce, db
from trayecto.commerce import LocationType, Method, Policy, Site

CLIENTS = 32
N_LOCATIONS = 50
N_SKUS = 200
TYPES = [
    ("central_warehouse", 2),
    ("ecommerce_warehouse", 3),
    ("dark_store", 5),
    ("shop", 35),
    ("supplier_dropship", 5),
]


def _spain(rng: random.Random) -> tuple[float, float]:
    return rng.uniform(36.5, 43.5), rng.uniform(-8.5, 3.0)


# --------------------------------------------------------------------------------------
# (b) sourcing against the MILP
# --------------------------------------------------------------------------------------


def _instance(rng: random.Random) -> tuple[list[Site], dict[tuple[str, str], int], dict[str, int]]:
    sites = []
    kinds = [t for t, n in TYPES for _ in range(n)]
    for i in range(N_LOCATIONS):
        lat, lon = _spain(rng)
        sites.append(
            Site(
                id=f"L{i:02d}",
                type=LocationType(kinds[i]),
                latitude=lat,
                longitude=lon,
                capabilities=frozenset({commerce.Capability.SHIP}),
            )
        )
    skus = [f"S{k}" for k in range(5)]
    available = {}
    for s in sites:
        for sku in skus:
            if rng.random() < 0.35:
                available[(s.id, sku)] = rng.randint(1, 6)
    demand = {sku: rng.randint(1, 2) for sku in skus}
    for sku, q in demand.items():  # at least one location holds each line whole
        if not any(available.get((s.id, sku), 0) >= q for s in sites):
            available[(rng.choice(sites).id, sku)] = q
    return sites, available, demand


def _model(
    sites: list[Site],
    available: dict[tuple[str, str], int],
    demand: dict[str, int],
    dest: tuple[float, float],
    policy: Policy,
) -> tuple[list[list[tuple[int, float]]], list[float]]:
    """The engine's cost model, written out independently for the MILP."""
    fixed = [
        policy.shipment_cost[s.type.value]
        + policy.per_km * commerce.haversine_km((s.latitude, s.longitude), dest)
        for s in sites
    ]
    options = []
    for sku, q in sorted(demand.items()):
        opts = []
        for j, s in enumerate(sites):
            a = available.get((s.id, sku), 0)
            if a >= q:
                v = policy.pick_cost[s.type.value] * q
                if s.type is LocationType.SHOP:
                    v += policy.walk_in_penalty * max(0, q - max(0, a - policy.walk_in_reserve))
                opts.append((j, v))
        options.append(opts)
    return options, fixed


def _milp(options: list[list[tuple[int, float]]], fixed: list[float], pen: float) -> float:
    import highspy
    import numpy as np

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    idx: dict[tuple[int, int], int] = {}
    cost: list[float] = []
    for li, opts in enumerate(options):
        for j, v in opts:
            idx[(li, j)] = len(cost)
            cost.append(v)
    y0 = len(cost)
    cost += [f + pen for f in fixed]
    n = len(cost)
    cols = np.arange(n, dtype=np.int32)
    h.addVars(n, np.zeros(n), np.ones(n))
    h.changeColsCost(n, cols, np.array(cost))
    h.changeColsIntegrality(n, cols, np.ones(n, dtype=np.uint8))
    for li, opts in enumerate(options):
        ix = np.array([idx[(li, j)] for j, _ in opts], dtype=np.int32)
        h.addRow(1.0, 1.0, len(ix), ix, np.ones(len(ix)))
        for j, _ in opts:
            h.addRow(
                -highspy.kHighsInf, 0.0, 2, np.array([idx[(li, j)], y0 + j], dtype=np.int32),
                np.array([1.0, -1.0]),
            )  # fmt: skip
    h.run()
    return float(h.getInfo().objective_function_value) - pen


def bench_sourcing(n: int, seed: int = 11) -> dict[str, Any]:
    """Each method in its own pass over the same instances (so HiGHS does not evict the
    engine's working set between calls), collected garbage before each pass."""
    rng = random.Random(seed)
    policy = Policy()
    instances = []
    for _ in range(n):
        sites, available, demand = _instance(rng)
        instances.append((sites, available, demand, _spain(rng)))
    models = [_model(*inst, policy) for inst in instances]

    def timed(call: Any) -> tuple[list[float], list[Any]]:
        gc.collect()
        ms, out = [], []
        for args in instances:
            t = time.perf_counter()
            out.append(call(*args))
            ms.append((time.perf_counter() - t) * 1e3)
        return ms, out

    engine_ms, plans = timed(
        lambda sites, available, demand, dest: commerce.source(
            demand, sites, available, method=Method.DELIVERY, policy=policy, destination=dest
        )
    )
    models_iter = iter(models)
    opt_ms, opt_costs = timed(
        lambda *_: commerce.optimise(*next(models_iter), policy.split_penalty)[0]
    )
    models_iter = iter(models)
    milp_ms, bests = timed(lambda *_: _milp(*next(models_iter), policy.split_penalty))
    gaps, naive_gaps = [], []
    for plan, cost, best, (options, fixed) in zip(plans, opt_costs, bests, models, strict=True):
        assert abs(cost - plan.cost) < 1e-9
        gaps.append((plan.cost - best) / best * 100)
        # naive: each line from the nearest location holding it whole
        used: set[int] = set()
        naive = 0.0
        for opts in options:
            j, v = min(opts, key=lambda o: fixed[o[0]])
            naive += v
            used.add(j)
        naive += sum(fixed[j] for j in used) + policy.split_penalty * (len(used) - 1)
        naive_gaps.append((naive - best) / best * 100)
    q = statistics.quantiles
    return {
        "orders": n,
        "locations": N_LOCATIONS,
        "lines": 5,
        "engine_ms": {"mean": statistics.mean(engine_ms), "median": statistics.median(engine_ms),
                      "p99": q(engine_ms, n=100)[98]},
        "optimiser_ms": {"mean": statistics.mean(opt_ms), "median": statistics.median(opt_ms),
                         "p99": q(opt_ms, n=100)[98]},
        "milp_ms": {"mean": statistics.mean(milp_ms), "median": statistics.median(milp_ms),
                    "p99": q(milp_ms, n=100)[98]},
        "gap_pct": {"mean": statistics.mean(gaps), "max": max(gaps)},
        "naive_gap_pct": {"mean": statistics.mean(naive_gaps), "max": max(naive_gaps)},
    }  # fmt: skip


# --------------------------------------------------------------------------------------
# (a) order intake on PostgreSQL
# --------------------------------------------------------------------------------------


def _load_catalogue(engine: Any, tmp: Path, rng: random.Random) -> None:
    kinds = [t for t, n in TYPES for _ in range(n)]
    loc_lines = ["id,name,type,latitude,longitude,capabilities,opening_hours,daily_capacity"]
    for i in range(N_LOCATIONS):
        lat, lon = _spain(rng)
        hours = "mon-sat 10:00-21:00" if kinds[i] == "shop" else ""
        caps = "ship|click_and_collect" if kinds[i] == "shop" else "ship"
        loc_lines.append(f"L{i:02d},Loc {i},{kinds[i]},{lat:.4f},{lon:.4f},{caps},{hours},")
    prod = ["sku,name,price,currency"] + [f"S{k:03d},Producto {k},19.95,EUR" for k in range(N_SKUS)]
    stock = ["sku,location_id,on_hand"]
    for k in range(N_SKUS):
        for i in range(N_LOCATIONS):
            if k == 0:  # the scarce SKU: 40 units in all
                if i < 10:
                    stock.append(f"S000,L{i:02d},4")
            elif rng.random() < 0.4:
                stock.append(f"S{k:03d},L{i:02d},{rng.randint(200, 2000)}")
    for kind, rows in (("locations", loc_lines), ("products", prod), ("stock", stock)):
        path = tmp / f"{kind}.csv"
        path.write_text("\n".join(rows) + "\n")
        report = commerce.import_catalogue(engine, kind, path)
        assert report.rejected == 0, kind


def _cpu_seconds(pid: int | None) -> float:
    """CPU seconds (user + system) of ``pid`` and all its descendants, live or reaped."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid] if pid else []
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / tick
    return total


def _serve(url: str, home: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = c.free_port()
    env = {
        **os.environ,
        "TRAYECTO_HOME": str(home),
        "TRAYECTO_DATABASE_URL": url,
        "TRAYECTO_LOG_LEVEL": "WARNING",
    }
    exe = c.VENV_BIN / "trayecto"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "trayecto"]
    with (home / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [*cmd, "serve", "--no-access-log", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((home / "server.log").read_text())
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1):  # noqa: S310
                return proc, base
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start:\n" + (home / "server.log").read_text())


def _wrk(base: str, token: str, seconds: float, run: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "WRK_AUTH": f"Bearer {token}",
        "WRK_SKUS": str(N_SKUS),
        "WRK_RUN": run,
        "WRK_SEED": "5",
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CLIENTS}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
         "-s", str(c.BENCH_DIR / "wrk_orders.lua"), base],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRK_JSON "))
    result: dict[str, Any] = orjson.loads(line.removeprefix("WRK_JSON "))
    result["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def bench_intake(admin_url: str, seconds: float, workers: int) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    name = "bench_orders"
    admin = sa.create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        # count the calls of trayecto_place(): one a batch of orders, from every process
        conn.exec_driver_sql(f"ALTER DATABASE \"{name}\" SET track_functions = 'pl'")
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(False)
    engine = db.create_db_engine(url)
    db.upgrade(engine)
    with tempfile.TemporaryDirectory() as tmp:
        _load_catalogue(engine, Path(tmp), random.Random(5))
    token = access.create_token(engine, "bench-orders").secret
    with engine.connect() as conn:
        backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
    postmaster = int(fields[1])  # the backend's parent
    with c.temp_home("trayecto-bench-orders-") as home:
        proc, base = _serve(url, home, workers)
        try:
            _wrk(base, token, 3, "warmup")
            cpu0 = (_cpu_seconds(proc.pid), _cpu_seconds(postmaster))
            w = _wrk(base, token, seconds, "measure")
            cpu1 = (_cpu_seconds(proc.pid), _cpu_seconds(postmaster))
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    bad = commerce.check_ledger(engine)
    levels = commerce.stock_levels(engine)
    scarce = [lv for lv in levels if lv.sku == "S000"]
    oversold = sum(1 for lv in levels if lv.reserved > lv.on_hand)
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT count(*) FROM orders").scalar()
        batches = int(
            conn.exec_driver_sql(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions"
                " WHERE funcname = 'trayecto_place'"
            ).scalar()
        )
    engine.dispose()
    pgb = {rows: _pgbench(url, rows, seconds) for rows in (N_SKUS * N_LOCATIONS, 10)}
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()
    secs = w["duration_us"] / 1e6
    answers = w["requests"]
    lat = w["latency_us"]
    return {
        "clients": CLIENTS,
        "server_workers": workers,
        "seconds": secs,
        "answers": {k: w[k] for k in ("created", "duplicate", "refused", "other")},
        "errors": w["errors"],
        "orders_per_s": w["created"] / secs,
        "answers_per_s": answers / secs,
        "p50_ms": lat["p50"] / 1e3,
        "p90_ms": lat["p90"] / 1e3,
        "p99_ms": lat["p99"] / 1e3,
        "cpu_ms_per_answer": {
            "server": (cpu1[0] - cpu0[0]) / answers * 1e3,
            "postgresql": (cpu1[1] - cpu0[1]) / answers * 1e3,
            "wrk": w["cpu_s"] / answers * 1e3,
        },
        "cpus": os.cpu_count(),
        "orders_stored": stored,
        "batches": batches,
        "orders_per_batch": stored / max(1, batches),  # warm-up and measure, both processes
        "scarce_sku_reserved": sum(lv.reserved for lv in scarce),
        "scarce_sku_on_hand": sum(lv.on_hand for lv in scarce),
        "oversold_rows": oversold,
        "ledger_mismatches": len(bad),
        "pgbench_random_rows_tps": pgb[N_SKUS * N_LOCATIONS],
        "pgbench_10_rows_tps": pgb[10],
    }


def _pgbench(url: str, rows: int, seconds: float) -> float:
    u = sa.engine.make_url(url)
    script = (
        f"\\set r random(0, {rows - 1})\n"
        "UPDATE stock SET reserved = reserved + 1 WHERE (location_id, sku) = "
        "(SELECT location_id, sku FROM pgb_rows WHERE n = :r) AND on_hand - reserved >= 1;\n"
    )
    setup = (
        "DROP TABLE IF EXISTS pgb_rows; "
        "CREATE TABLE pgb_rows AS SELECT (row_number() OVER () - 1)::int AS n, location_id, sku "
        f"FROM (SELECT location_id, sku FROM stock ORDER BY random() LIMIT {rows}) s; "
        "CREATE UNIQUE INDEX ON pgb_rows (n); "
        "UPDATE stock SET on_hand = on_hand + 1000000;"
    )
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "ALTER TABLE stock DROP CONSTRAINT IF EXISTS ck_stock_reserved_within_on_hand"
        )
        conn.exec_driver_sql(setup)
    engine.dispose()
    pgbench = next(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as fh:
        fh.write(script)
    out = subprocess.run(
        [str(pgbench), "-h", u.host or "127.0.0.1", "-p", str(u.port), "-U", u.username or "trayecto",
         "-n", "-c", str(CLIENTS), "-j", "2", "-T", str(int(seconds)), "-M", "prepared",
         "-f", fh.name, u.database or ""],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    os.unlink(fh.name)
    for line in out.splitlines():
        if line.startswith("tps"):
            return float(line.split("=")[1].split()[0])
    raise RuntimeError(out)


def _under_postgres() -> None:
    """Re-run this script under a throwaway PostgreSQL cluster with durable settings."""
    script = c.ROOT / "scripts" / "with-postgres.sh"
    if os.environ.get("TRAYECTO_BENCH_UNDER_PG") or not script.exists():
        return
    env = {**os.environ, "PG_EXTRA_OPTS": "", "TRAYECTO_BENCH_UNDER_PG": "1"}
    argv = ["bash", str(script), sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]]
    sys.stdout.flush()
    os.execvpe("bash", argv, env)  # noqa: S606 (our own script, fixed arguments)


def _print_sourcing(s: dict[str, Any]) -> None:
    c.print_table(
        f"(b) sourcing: {s['orders']:,} random 5-line orders over {s['locations']} locations",
        ["method", "mean ms", "median ms", "p99 ms", "mean gap %", "max gap %"],
        [
            ["trayecto engine (with explanation)", f"{s['engine_ms']['mean']:.3f}",
             f"{s['engine_ms']['median']:.3f}", f"{s['engine_ms']['p99']:.3f}",
             f"{s['gap_pct']['mean']:.3f}", f"{s['gap_pct']['max']:.3f}"],
            ["trayecto optimiser alone", f"{s['optimiser_ms']['mean']:.3f}",
             f"{s['optimiser_ms']['median']:.3f}", f"{s['optimiser_ms']['p99']:.3f}", "", ""],
            ["HiGHS MILP (baseline, optimum)", f"{s['milp_ms']['mean']:.3f}",
             f"{s['milp_ms']['median']:.3f}", f"{s['milp_ms']['p99']:.3f}", "0", "0"],
            ["naive nearest-stock per line", "", "", "",
             f"{s['naive_gap_pct']['mean']:.2f}", f"{s['naive_gap_pct']['max']:.2f}"],
        ],
    )  # fmt: skip


def _print_intake(a: dict[str, Any]) -> None:
    cpu = a["cpu_ms_per_answer"]
    total = cpu["server"] + cpu["postgresql"] + cpu["wrk"]
    c.print_table(
        f"(a) order intake over HTTP, wrk -c{a['clients']}, trayecto serve --workers "
        f"{a['server_workers']}, PostgreSQL (durable), {a['seconds']:.0f} s",
        ["what", "per s", "p50 ms", "p99 ms", "notes"],
        [
            ["orders placed (5 lines, sourced, reserved)", c.fmt_rate(a["orders_per_s"]),
             f"{a['p50_ms']:.1f}", f"{a['p99_ms']:.1f}",
             " ".join(f"{k}={v}" for k, v in a["answers"].items())],
            ["answers (201 + 409)", c.fmt_rate(a["answers_per_s"]), "", "", ""],
            ["pgbench conditional UPDATE, random rows", c.fmt_rate(a["pgbench_random_rows_tps"]),
             "", "", "baseline, same run"],
            ["pgbench conditional UPDATE, 10 hot rows", c.fmt_rate(a["pgbench_10_rows_tps"]),
             "", "", "baseline, same run"],
        ],
    )  # fmt: skip
    c.console.print(
        f"CPU per answer: server {cpu['server']:.2f} ms, PostgreSQL {cpu['postgresql']:.2f} ms, "
        f"wrk {cpu['wrk']:.2f} ms = {total:.2f} ms; {a['cpus']} CPUs fully used would answer "
        f"about {a['cpus'] * 1000 / total:,.0f}/s"
    )
    c.console.print(
        f"oversold rows: {a['oversold_rows']}, ledger mismatches: {a['ledger_mismatches']}, "
        f"scarce SKU reserved {a['scarce_sku_reserved']} of {a['scarce_sku_on_hand']}, "
        f"orders stored {a['orders_stored']:,} in {a['batches']:,} batches "
        f"({a['orders_per_batch']:.1f} orders a batch)"
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15, help="measured wrk and pgbench time")
    ap.add_argument("--orders", type=int, default=2000, help="sourcing instances")
    ap.add_argument("--workers", type=int, default=2, help="trayecto serve --workers")
    ap.add_argument("--only", choices=["intake", "sourcing"])
    ap.add_argument("--quick", action="store_true", help="5 s runs, 300 sourcing instances")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.orders = 5, 300
    url = os.environ.get("TRAYECTO_TEST_DATABASE_URL")
    if args.only != "sourcing" and not url:
        _under_postgres()  # returns only when it cannot
    results: dict[str, Any] = {}
    failed = False
    if args.only != "intake":
        results["sourcing"] = s = bench_sourcing(args.orders)
        _print_sourcing(s)
    if args.only != "sourcing":
        if not url:
            c.console.print("(a) skipped: no PostgreSQL (scripts/with-postgres.sh)")
        else:
            results["intake"] = a = bench_intake(url, args.seconds, args.workers)
            _print_intake(a)
            failed = bool(
                a["oversold_rows"]
                or a["ledger_mismatches"]
                or a["answers"]["other"]
                or a["scarce_sku_reserved"] > a["scarce_sku_on_hand"]
            )
    previous = c.RESULTS_DIR / "orders.json"
    if args.only and previous.exists():  # keep the other part's last figures
        kept = orjson.loads(previous.read_bytes())
        other = "intake" if args.only == "sourcing" else "sourcing"
        if other in kept:
            results[other] = kept[other]
    path = c.write_results("orders", results)
    c.console.print(f"results: {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
