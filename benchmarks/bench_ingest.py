"""Ingestion benchmark: events/s through the HTTP API and through bulk import, each beside
the raw insert rate of the same rows into the same store, measured in the same run.

    .venv/bin/python benchmarks/bench_ingest.py [--seconds N] [--rows N] [--quick]

Every measurement starts from a fresh SQLite store created by the project's migrations
(same schema, same pragmas: WAL, synchronous=FULL). Messages are realistic ~700-byte
Segment ``track`` messages with random (UUIDv4) messageIds and anonymousIds, as SDKs send
them. The raw rows are the very rows the project's append path stored (read back), with
fresh keys, so a change in the store's encoding is followed automatically.

(a) baselines: plain ``sqlite3.executemany`` into ``events`` in transactions of 100 and
    of 5000 with time-ordered (UUIDv7) keys, each measured just before and just after the
    path it is compared with (the machine drifts; both figures are printed), and at 100
    with random (UUIDv4) keys; the project's ``append_events`` at 5000 and 100 (rows
    already validated); the same rows with the random-key indexes the log had before
    migration 0007; and the issue's setup (a table with only a primary key) for context.
(b) HTTP: ``trayecto serve`` (with its identity worker stitching, then paused) driven by
    ``wrk -t2 -c16`` POSTing /v1/batch with 100 unique
    messages per request (benchmarks/wrk_batch.lua); events/s = 100 x 2xx/s; the stored
    row count is checked against the responses.
(c) bulk import: ``collect.import_events`` of a JSONL file (transactions of 5000).
(d) the CPU cost of one batch of 100 on the request path, beside the disk-backed insert.

Exits non-zero only if a correctness check fails (errors, lost or extra rows); missed
targets are reported in the table. ``benchmarks/profile_http.py`` profiles the HTTP path.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
from trayecto import access, collect, db
from trayecto.kernel import utcnow

BATCH = 100  # messages per HTTP request
IMPORT_TXN = 5000  # collect.import_events' default chunk_rows
HTTP_TARGET = 30_000
IMPORT_TARGET = 60_000
MAX_RATIO = 3.0
WRK_THREADS = 2
WRK_CONNECTIONS = 16
#: The indexes the log had before migration 0007, all on random keys: what one page write
#: per row per index costs, measured beside today's time-ordered indexes.
RANDOM_KEY_INDEXES = (
    "CREATE UNIQUE INDEX before_0007_message ON events (source_id, message_id)",
    "CREATE INDEX before_0007_user ON events (user_id)",
    "CREATE INDEX before_0007_anonymous ON events (anonymous_id)",
)


# --------------------------------------------------------------------------------------
# (a) baselines
# --------------------------------------------------------------------------------------


def raw_baseline(
    rows: list[tuple[Any, ...]],
    batch: int,
    *,
    time_ordered: bool = True,
    extra_ddl: tuple[str, ...] = (),
    budget: float | None = None,
) -> dict[str, Any]:
    """Plain ``sqlite3``: ``executemany`` of the store's own rows (fresh keys) into a fresh
    store made by the migrations, in transactions of ``batch`` (for at most ``budget``
    seconds, so that a busy machine cannot stretch the run)."""

    rows = c.rekey(rows, time_ordered=time_ordered)
    with c.temp_home() as home:
        c.fresh_platform(home).close()
        conn = c.sqlite_connect(home / "trayecto.sqlite3")
        try:
            for ddl in extra_ddl:
                conn.execute(ddl)
            n, seconds = c.raw_insert(conn, rows, batch, budget)
            stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        finally:
            conn.close()
    assert stored == n, (stored, n)
    return {"rows": n, "batch": batch, "seconds": seconds, "rate": n / seconds}


def pk_only_baseline(
    rows: list[tuple[Any, ...]], batch: int, *, time_ordered: bool, budget: float | None = None
) -> dict[str, Any]:
    """Context for the issue's figures: the same rows into a table with the same columns
    but only a primary key (no unique messageId, no secondary index), same pragmas."""
    rows = c.rekey(rows, time_ordered=time_ordered)
    cols = ", ".join(f"{name} PRIMARY KEY" if name == "id" else name for name in c.EVENT_COLUMNS)
    marks = ", ".join("?" for _ in c.EVENT_COLUMNS)
    with c.temp_home() as home:
        conn = c.sqlite_connect(home / "pk_only.sqlite3")
        try:
            conn.execute(f"CREATE TABLE events ({cols})")
            sql = f"INSERT INTO events VALUES ({marks})"
            t0 = time.perf_counter()
            n = 0
            for i in range(0, len(rows), batch):
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(sql, rows[i : i + batch])
                conn.execute("COMMIT")
                n = min(i + batch, len(rows))
                if budget is not None and time.perf_counter() - t0 > budget:
                    break
            seconds = time.perf_counter() - t0
        finally:
            conn.close()
    return {"rows": n, "batch": batch, "seconds": seconds, "rate": n / seconds}


def _bracket(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """One baseline measured just before and just after the path it is compared with:
    the rate over both (total rows / total seconds), and each, to show the drift."""
    rows = before["rows"] + after["rows"]
    seconds = before["seconds"] + after["seconds"]
    return {
        "rows": rows,
        "batch": before["batch"],
        "seconds": seconds,
        "rate": rows / seconds,
        "before": before["rate"],
        "after": after["rate"],
    }


def append_events_baseline(
    messages: list[dict[str, Any]],
    batch: int,
    *,
    capture: bool = False,
    budget: float | None = None,
) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """The project's own append path (row encoding + SQLAlchemy + the same insert), with
    the validation done beforehand and not timed. With ``capture``, also returns the rows
    as stored, for the raw baselines."""
    with c.temp_home() as home:
        p = c.fresh_platform(home)
        try:
            src = access.create_source(p.engine, "bench web", "web").record
            origin = collect.Origin(src.id, src.channel.value, src.location_id)
            now = utcnow()
            events = [
                collect.check_message(m, origin=origin, received_at=now, max_bytes=32 * 1024)
                for m in messages
            ]
            t0 = time.perf_counter()
            n = 0
            for i in range(0, len(events), batch):
                with db.write_transaction(p.engine) as conn:
                    collect.append_events(conn, events[i : i + batch])
                n = min(i + batch, len(events))
                if budget is not None and time.perf_counter() - t0 > budget:
                    break
            seconds = time.perf_counter() - t0
            stored = collect.count_events(p.engine)
        finally:
            p.close()
        rows = c.read_rows(home / "trayecto.sqlite3") if capture else []
    assert stored == n, (stored, n)
    res = {"rows": n, "batch": batch, "seconds": seconds, "rate": n / seconds}
    return res, rows


# --------------------------------------------------------------------------------------
# (b) HTTP through wrk
# --------------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds (user+system) per thread of ``pid``: 'main' and 'other'."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"main": 0.0, "other": 0.0}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        secs = (int(fields[11]) + int(fields[12])) / tick
        out["main" if int(tid) == pid else "other"] += secs
    return out


def _identity_backlog(db_path: Path) -> dict[str, int] | None:
    """How far the server's identity follower (if the platform has one) is behind the log:
    events stored, and events already stitched (id at or before its checkpoint)."""
    try:
        from trayecto import identity

        engine = db.create_db_engine(f"sqlite:///{db_path}")
        try:
            last = identity.last_processed_event(engine)
        finally:
            engine.dispose()
    except Exception:  # no identity domain, or its API changed: not this benchmark's concern
        return None
    conn = sqlite3.connect(db_path)
    try:
        stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        if last is None:
            return {"stored": stored, "stitched": 0}
        sample = conn.execute("SELECT id FROM events LIMIT 1").fetchone()[0]
        key: object = (
            last.bytes
            if isinstance(sample, bytes)
            else str(last)
            if isinstance(sample, str) and len(sample) == 36
            else last.hex
        )
        stitched = conn.execute("SELECT count(*) FROM events WHERE id <= ?", (key,)).fetchone()[0]
    finally:
        conn.close()
    return {"stored": stored, "stitched": stitched}


def write_template(path: Path, seed: int = 11) -> int:
    """One /v1/batch body of 100 messages whose messageIds are the placeholder @@MID@@ and
    whose timestamps (and the batch's sentAt) are @@TS@@: wrk_batch.lua fills them in."""
    messages = c.make_messages(BATCH, seed=seed)
    for m in messages:
        m["messageId"] = "@@MID@@"
        m["timestamp"] = "@@TS@@"
    body = orjson.dumps({"batch": messages, "sentAt": "@@TS@@"})
    path.write_bytes(body)
    return len(body)


def _stitching_workers(server_pid: int) -> list[int]:
    """The ``trayecto worker`` process(es) a ``trayecto serve`` started."""
    out = subprocess.run(
        ["pgrep", "-f", f"worker --parent {server_pid}"], capture_output=True, text=True
    ).stdout
    return [int(p) for p in out.split()]


def http_bench(
    seconds: int, serve_args: tuple[str, ...] = (), *, pause_stitching: bool = False
) -> dict[str, Any]:
    """wrk against ``trayecto serve``; with ``pause_stitching`` its identity worker is
    stopped (SIGSTOP) for the run, to measure the ingestion path alone."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    with c.temp_home() as home:
        p = c.fresh_platform(home)
        try:
            issued = access.create_source(p.engine, "bench web", "web")
        finally:
            p.close()
        template = home / "batch_template.json"
        body_bytes = write_template(template)
        server = c.start_server(home, args=serve_args)
        try:
            env = {
                **os.environ,
                "WRK_TEMPLATE": str(template),
                "WRK_AUTH": "Basic " + base64.b64encode(f"{issued.secret}:".encode()).decode(),
            }
            cmd = [
                wrk, f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s",
                "-s", str(c.BENCH_DIR / "wrk_batch.lua"), f"{server.url}/v1/batch",
            ]  # fmt: skip
            paused = _stitching_workers(server.proc.pid) if pause_stitching else []
            for pid in paused:
                os.kill(pid, signal.SIGSTOP)
            load_before = c.machine_load()
            cpu0, wall0 = _cpu_seconds(server.proc.pid), time.perf_counter()
            run = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            for pid in paused:
                os.kill(pid, signal.SIGCONT)
            cpu1, wall1 = _cpu_seconds(server.proc.pid), time.perf_counter()
            load_after = c.machine_load()
            backlog = _identity_backlog(home / "trayecto.sqlite3")
        finally:
            rc = server.stop()
        if run.returncode != 0 or "WRK_JSON " not in run.stdout:
            raise RuntimeError(f"wrk failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
        res = orjson.loads(run.stdout.split("WRK_JSON ", 1)[1].splitlines()[0])
        with sqlite3.connect(home / "trayecto.sqlite3") as conn:
            stored, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT message_id) FROM events"
            ).fetchone()
        server_log = server.log.read_text(errors="replace")[-2000:]
    duration = res["duration_us"] / 1e6
    ok, sent, non2xx = res["ok"], res["sent"], res["non2xx"]
    sock = sum(res["errors"][k] for k in ("connect", "read", "write", "timeout"))
    wall = wall1 - wall0
    expected = BATCH * ok
    # wrk stops with requests in flight: the server still commits them (nothing is lost),
    # but wrk never sees their answers. So stored may exceed 100 x 2xx by at most
    # 100 x (sent - answered).
    in_flight = sent - ok - non2xx
    consistent = expected <= stored <= BATCH * (sent - non2xx) and distinct == stored
    return {
        "seconds": duration,
        "body_bytes": body_bytes,
        "requests_2xx": ok,
        "requests_non2xx": non2xx,
        "socket_errors": sock,
        "requests_sent": sent,
        "requests_in_flight_at_stop": in_flight,
        "requests_per_s": ok / duration,
        "rate": BATCH * ok / duration,
        "stored_rows": stored,
        "expected_rows": expected,
        "stored_consistent": consistent,
        "latency_ms": {k: v / 1000 for k, v in res["latency_us"].items()},
        "server_cpu_cores": {
            "main_thread": (cpu1["main"] - cpu0["main"]) / wall,
            "other_threads": (cpu1["other"] - cpu0["other"]) / wall,
        },
        "machine_load": {"before": load_before, "after": load_after},
        "identity_at_stop": backlog,
        "server_exit_code": rc,
        "server_log_tail": server_log if (non2xx or sock or rc not in (0, None)) else "",
        "wrk_stderr": run.stderr[-2000:] if non2xx or sock else "",
        "wrk": " ".join([*cmd[:-2], "wrk_batch.lua", "/v1/batch"]),
    }


# --------------------------------------------------------------------------------------
# (c) bulk import
# --------------------------------------------------------------------------------------


def import_bench(messages: list[dict[str, Any]]) -> dict[str, Any]:
    with c.temp_home() as home:
        p = c.fresh_platform(home)
        try:
            src = access.create_source(p.engine, "bench import", "web").record
            path = home / "events.jsonl"
            with path.open("wb") as fh:
                for m in messages:
                    fh.write(orjson.dumps(m) + b"\n")
            size = path.stat().st_size
            origin = collect.Origin(src.id, src.channel.value, src.location_id)
            t0 = time.perf_counter()
            report = collect.import_events(
                p.engine, path, origin=origin, max_message_bytes=p.settings.max_message_bytes
            )
            seconds = time.perf_counter() - t0
            stored = collect.count_events(p.engine)
        finally:
            p.close()
    return {
        "rows": report.rows,
        "stored": report.stored,
        "rejected": report.rejected,
        "stored_rows_in_db": stored,
        "file_bytes": size,
        "seconds": seconds,
        "rate": report.rows / seconds,
        "batch": IMPORT_TXN,
    }


# --------------------------------------------------------------------------------------
# (d) cost of one batch of 100 on the request path (CPU only)
# --------------------------------------------------------------------------------------


def _per_call_ms(fn: Any, repeat: int = 7, number: int = 30) -> float:
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return statistics.median(samples) * 1e3


def cost_breakdown() -> dict[str, float]:
    messages = c.make_messages(BATCH, seed=23)
    body = orjson.dumps({"batch": messages, "sentAt": messages[-1]["timestamp"]})
    out: dict[str, float] = {}
    out["parse JSON body (orjson.loads, ~70 KB)"] = _per_call_ms(lambda: orjson.loads(body))
    with c.temp_home() as home:
        p = c.fresh_platform(home)
        try:
            issued = access.create_source(p.engine, "bench web", "web")
            out["authenticate write key, uncached (1 SELECT)"] = _per_call_ms(
                lambda: access.authenticate_write_key(p.engine, issued.secret)
            )
            cache_cls = getattr(access, "WriteKeyCache", None)
            if cache_cls is not None:  # what /v1/batch uses since the key cache landed
                keys = cache_cls(p.engine)
                out["authenticate write key, cached (WriteKeyCache)"] = _per_call_ms(
                    lambda: keys.authenticate(issued.secret)
                )
        finally:
            p.close()
    origin = collect.Origin(uuid.uuid4(), "web", None)
    payload = orjson.loads(body)
    out["validate: check_batch (100 messages)"] = _per_call_ms(
        lambda: collect.check_batch(
            payload, origin=origin, received_at=utcnow(), max_message_bytes=32 * 1024
        )
    )
    # Insert CPU without disk: append_events vs raw executemany into an in-memory store.
    n_batches = 7 * 30 + 1
    fresh = c.make_messages(BATCH * n_batches, seed=29)
    now = utcnow()
    events = [
        collect.check_message(m, origin=origin, received_at=now, max_bytes=32 * 1024) for m in fresh
    ]
    mem = db.create_db_engine("sqlite://")
    db.upgrade(mem)
    it = iter(range(0, len(events), BATCH))

    def append() -> None:
        i = next(it)
        with db.write_transaction(mem) as conn:
            collect.append_events(conn, events[i : i + BATCH])

    out["append_events into :memory: (encode + insert CPU)"] = _per_call_ms(append)
    with mem.connect() as conn:
        cols = ", ".join(c.EVENT_COLUMNS)
        mem_rows = conn.exec_driver_sql(f"SELECT {cols} FROM events ORDER BY rowid").all()
        schema = [
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'events' AND sql IS NOT NULL"
            )
        ]
    mem.dispose()
    raw = sqlite3.connect(":memory:", isolation_level=None)
    for sql in schema:
        raw.execute(sql)
    rows = [tuple(r) for r in mem_rows]
    it2 = iter(range(0, len(rows), BATCH))

    def raw_insert() -> None:
        i = next(it2)
        raw.execute("BEGIN")
        raw.executemany(c.RAW_INSERT, rows[i : i + BATCH])
        raw.execute("COMMIT")

    out["raw executemany into :memory: (SQLite CPU)"] = _per_call_ms(raw_insert)
    raw.close()
    return out


# --------------------------------------------------------------------------------------


def _verdict(rate: float, target: float, ratio: float) -> str:
    a = "✓" if rate >= target else "✗"
    b = "✓" if ratio <= MAX_RATIO else "✗"
    word = "PASS" if a == b == "✓" else "MISS"
    return f"{word} (rate {a}, ratio {b})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=None, help="wrk duration (default 20; 6 quick)")
    ap.add_argument(
        "--rows", type=int, default=None, help="rows for import and baselines (200k; 50k quick)"
    )
    ap.add_argument("--quick", action="store_true", help="smaller, shorter run")
    args = ap.parse_args(argv)
    seconds = args.seconds or (6 if args.quick else 20)
    n_rows = args.rows or (50_000 if args.quick else 200_000)
    # Transactions of 100 are slow on this schema: those baselines use fewer rows (a smaller
    # table inserts faster, so the comparison errs against the measured path).
    n_half, n_side = n_rows // 2, n_rows // 4
    budget = 4.0 if args.quick else 9.0  # most seconds any one baseline may take
    started = time.perf_counter()
    load_start = c.machine_load()

    c.console.print(
        f"[bold]ingest benchmark[/]: {n_rows:,} rows per baseline/import, HTTP {seconds} s "
        f"(wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS}, {BATCH} messages/request), "
        f"{os.cpu_count()} CPUs, SQLite {sqlite3.sqlite_version}"
    )
    messages = c.make_messages(n_rows)
    sizes = [len(orjson.dumps(m)) for m in messages[:2000]]
    msg_bytes = statistics.mean(sizes)
    c.console.print(f"messages: mean {msg_bytes:.0f} bytes as JSON")

    step = lambda text: c.console.print(f"  · {text}…")  # noqa: E731
    base: dict[str, dict[str, Any]] = {}
    step("project append_events, transactions of 5000 (its rows feed the raw baselines)")
    base["append_events_5000"], rows = append_events_baseline(messages, IMPORT_TXN, capture=True)
    step(f"project append_events, transactions of 100 ({n_side:,} rows)")
    base["append_events_100"], _ = append_events_baseline(messages[:n_side], 100, budget=budget)
    row_bytes = statistics.mean(
        sum(len(v) if isinstance(v, str | bytes) else 8 for v in r if v is not None)
        for r in rows[:2000]
    )
    step(f"raw sqlite3, UUIDv7 keys, transactions of 100 ({n_half:,} rows, before HTTP)")
    before = raw_baseline(rows[:n_half], 100, budget=budget)
    step(f"HTTP: wrk for {seconds} s")
    http = http_bench(seconds)
    step(f"HTTP again for {seconds} s, the identity worker paused (the ingestion path alone)")
    http_alone = http_bench(seconds, pause_stitching=True)
    step(f"raw sqlite3, UUIDv7 keys, transactions of 100 ({n_half:,} rows, after HTTP)")
    base["raw_v7_100"] = _bracket(before, raw_baseline(rows[:n_half], 100, budget=budget))
    step(f"raw sqlite3, UUIDv7 keys, transactions of {IMPORT_TXN} (before import)")
    before = raw_baseline(rows, IMPORT_TXN, budget=budget)
    step(f"bulk import of {n_rows:,} messages (JSONL)")
    imp = import_bench(messages)
    step(f"raw sqlite3, UUIDv7 keys, transactions of {IMPORT_TXN} (after import)")
    base["raw_v7_5000"] = _bracket(before, raw_baseline(rows, IMPORT_TXN, budget=budget))
    step(f"raw sqlite3, UUIDv4 keys, transactions of 100 ({n_side:,} rows)")
    base["raw_v4_100"] = raw_baseline(rows[:n_side], 100, time_ordered=False, budget=budget)
    step("before 0007: raw, UUIDv7, plus the random-key indexes the log had, 100 and 5000")
    base["raw_v7_100_random_indexes"] = raw_baseline(
        rows[:n_side], 100, extra_ddl=RANDOM_KEY_INDEXES, budget=budget
    )
    base["raw_v7_5000_random_indexes"] = raw_baseline(
        rows[:n_half], IMPORT_TXN, extra_ddl=RANDOM_KEY_INDEXES, budget=budget
    )
    step("context: the issue's setup (primary key only), UUIDv7 and UUIDv4, transactions of 100")
    base["pk_only_v7_100"] = pk_only_baseline(rows[:n_side], 100, time_ordered=True, budget=budget)
    base["pk_only_v4_100"] = pk_only_baseline(rows[:n_side], 100, time_ordered=False, budget=budget)
    del rows
    step("cost of one batch of 100 (CPU only)")
    costs = cost_breakdown()

    # ---- tables
    http_ratio = base["raw_v7_100"]["rate"] / http["rate"] if http["rate"] else float("inf")
    alone_ratio = (
        base["raw_v7_100"]["rate"] / http_alone["rate"] if http_alone["rate"] else float("inf")
    )
    imp_ratio = base["raw_v7_5000"]["rate"] / imp["rate"] if imp["rate"] else float("inf")
    c.console.print()
    c.print_table(
        "Ingestion (SQLite, validation included) vs raw insert of the same rows, same run",
        ["path", "events/s", "baseline: raw insert, same batch", "ratio (baseline/measured)",
         "target", "verdict"],
        [
            [
                f"HTTP /v1/batch (wrk -c{WRK_CONNECTIONS}, {BATCH}/request)",
                c.fmt_rate(http["rate"]),
                f"{c.fmt_rate(base['raw_v7_100']['rate'])} (txn 100)",
                f"{http_ratio:.2f}x",
                f"≥ {HTTP_TARGET:,}; ≤ {MAX_RATIO:g}x",
                _verdict(http["rate"], HTTP_TARGET, http_ratio),
            ],
            [
                "… the same, identity worker paused (ingestion alone)",
                c.fmt_rate(http_alone["rate"]),
                f"{c.fmt_rate(base['raw_v7_100']['rate'])} (txn 100)",
                f"{alone_ratio:.2f}x",
                f"≥ {HTTP_TARGET:,}; ≤ {MAX_RATIO:g}x",
                _verdict(http_alone["rate"], HTTP_TARGET, alone_ratio),
            ],
            [
                f"bulk import JSONL ({n_rows:,} rows, txn {IMPORT_TXN})",
                c.fmt_rate(imp["rate"]),
                f"{c.fmt_rate(base['raw_v7_5000']['rate'])} (txn {IMPORT_TXN})",
                f"{imp_ratio:.2f}x",
                f"≥ {IMPORT_TARGET:,}; ≤ {MAX_RATIO:g}x",
                _verdict(imp["rate"], IMPORT_TARGET, imp_ratio),
            ],
        ],
    )  # fmt: skip
    labels = {
        "raw_v7_100": "raw sqlite3 executemany, UUIDv7 keys, txn 100 (before+after HTTP)",
        "raw_v7_5000": "raw sqlite3 executemany, UUIDv7 keys, txn 5000 (before+after import)",
        "raw_v4_100": "raw sqlite3 executemany, UUIDv4 keys, txn 100",
        "append_events_100": "project append_events (pre-validated), txn 100",
        "append_events_5000": "project append_events (pre-validated), txn 5000",
        "raw_v7_100_random_indexes": "before migration 0007: raw, plus the random-key indexes "
        "(source+messageId, user_id, anonymous_id), txn 100",
        "raw_v7_5000_random_indexes": "before migration 0007: raw, plus the random-key "
        "indexes, txn 5000",
        "pk_only_v7_100": "context, issue's setup: PK-only table, UUIDv7 keys, txn 100",
        "pk_only_v4_100": "context, issue's setup: PK-only table, UUIDv4 keys, txn 100",
    }
    c.print_table(
        f"Baselines: rows of ~{row_bytes:.0f} B (values) into a fresh store each "
        "(WAL, synchronous=FULL)",
        ["store path", "rows", "rows/s", "µs/row", "before / after"],
        [
            [
                labels[k],
                f"{v['rows']:,}",
                c.fmt_rate(v["rate"]),
                f"{1e6 / v['rate']:.1f}",
                f"{v['before']:,.0f} / {v['after']:,.0f}" if "before" in v else "",
            ]
            for k, v in base.items()
        ],
    )
    lat = http["latency_ms"]
    lb, la = http["machine_load"]["before"], http["machine_load"]["after"]
    cpu = http["server_cpu_cores"]
    c.print_table(
        "HTTP run",
        ["measure", "value"],
        [
            ["2xx responses / s", f"{http['requests_per_s']:,.1f}"],
            ["non-2xx responses (errors)", http["requests_non2xx"]],
            ["socket errors (connect/read/write/timeout)", http["socket_errors"]],
            ["rows stored / 100 x 2xx",
             f"{http['stored_rows']:,} / {http['expected_rows']:,} "
             f"({'consistent' if http['stored_consistent'] else 'INCONSISTENT'}; "
             f"{http['requests_in_flight_at_stop']} request(s) in flight when wrk stopped)"],
            ["identity stitching (follower or worker) when wrk stopped: stitched / stored",
             "n/a" if not http["identity_at_stop"] else
             f"{http['identity_at_stop']['stitched']:,} / {http['identity_at_stop']['stored']:,}"],
            ["latency p50 / p90 / p99 / max (ms)",
             f"{lat['p50']:.0f} / {lat['p90']:.0f} / {lat['p99']:.0f} / {lat['max']:.0f}"],
            ["server CPU: event-loop thread / other threads (cores)",
             f"{cpu['main_thread']:.2f} / {cpu['other_threads']:.2f}"],
            ["request body", f"{http['body_bytes']:,} bytes"],
            ["machine load before / after (1-min load avg; CPU pressure)",
             f"{lb['loadavg_1m']:.1f}; {lb['cpu_pressure_some_avg10'] or 0:.0f}% / "
             f"{la['loadavg_1m']:.1f}; {la['cpu_pressure_some_avg10'] or 0:.0f}%"],
        ],
    )  # fmt: skip
    http_ms = 1000 / http["requests_per_s"] if http["requests_per_s"] else float("nan")
    disk_ms = BATCH / base["raw_v7_100"]["rate"] * 1000
    rows = [[k, f"{v:.3f}"] for k, v in costs.items()]
    rows.append(["raw insert of 100 rows into the file store, txn 100 (from the baseline)",
                 f"{disk_ms:.3f}"])  # fmt: skip
    rows.append(["HTTP measured: wall time per 2xx request (1 / throughput)", f"{http_ms:.3f}"])
    c.print_table("Cost of one batch of 100 (ms, median)", ["stage", "ms"], rows)

    ok = all(
        h["requests_non2xx"] == 0 and h["socket_errors"] == 0 and h["stored_consistent"]
        for h in (http, http_alone)
    )
    ok = ok and imp["stored_rows_in_db"] == imp["rows"] and imp["rejected"] == 0
    results = {
        "params": {
            "rows": n_rows,
            "http_seconds": seconds,
            "batch": BATCH,
            "import_txn": IMPORT_TXN,
            "wrk_threads": WRK_THREADS,
            "wrk_connections": WRK_CONNECTIONS,
            "message_bytes_mean": msg_bytes,
            "row_bytes_mean": row_bytes,
        },
        "summary": {
            "http": {
                "events_per_s": http["rate"],
                "baseline_raw_txn100": base["raw_v7_100"]["rate"],
                "ratio": http_ratio,
                "target": HTTP_TARGET,
                "verdict": _verdict(http["rate"], HTTP_TARGET, http_ratio),
            },
            "http_identity_worker_paused": {
                "events_per_s": http_alone["rate"],
                "ratio": alone_ratio,
                "verdict": _verdict(http_alone["rate"], HTTP_TARGET, alone_ratio),
            },
            "import": {
                "events_per_s": imp["rate"],
                "baseline_raw_txn5000": base["raw_v7_5000"]["rate"],
                "ratio": imp_ratio,
                "target": IMPORT_TARGET,
                "verdict": _verdict(imp["rate"], IMPORT_TARGET, imp_ratio),
            },
        },
        "baselines": base,
        "http": http,
        "http_identity_worker_paused": http_alone,
        "import": imp,
        "cost_per_batch_ms": costs,
        "checks_ok": ok,
        "elapsed_s": time.perf_counter() - started,
    }
    worst = max((load_start, lb, la), key=lambda ld: ld.get("cpu_pressure_some_avg10") or 0.0)
    warning = c.busy_warning(worst)
    if warning:
        c.console.print(f"[bold yellow]warning[/]: {warning}")
    results["busy_machine_warning"] = warning
    out = c.write_results("ingest", results)
    c.console.print(f"results: {out.relative_to(c.ROOT)} ({results['elapsed_s']:.0f} s)")
    if not ok:
        c.console.print("[bold red]correctness check failed[/] (errors or row-count mismatch)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
