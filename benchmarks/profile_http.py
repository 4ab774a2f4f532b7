"""Profile the HTTP ingest path: where the server's threads spend their time under load.

    .venv/bin/pip install py-spy      # a measuring tool; not a project dependency
    .venv/bin/python benchmarks/profile_http.py [--seconds 15] [--rate 50] [--no-native]

Starts ``trayecto serve`` on a fresh store, drives it with the same wrk load as
bench_ingest.py (wrk -t2 -c16, batches of 100), attaches ``py-spy record --idle --threads
--native`` after a short warm-up, and sorts every sample of each thread (the event loop and
the group-commit writer) into cost buckets: JSON parsing, validation, write-key lookup,
framework, row encoding, SQLite CPU, WAL writes, page reads, fsync, waiting for the GIL,
idle (and, when the platform runs one, the identity follower's). ``--native`` sees inside C (SQLite, syscalls, the GIL); it slows the server more
than plain sampling, so read shares, not the throughput printed here.

Writes ``benchmarks/results/profile_http.json`` and the folded stacks
``benchmarks/results/profile_http.folded`` (input for flamegraph.pl or speedscope).
Not run by ``make bench`` (it needs py-spy and ptrace rights).
"""

from __future__ import annotations

import argparse
import base64
import collections
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
import bench_ingest as bi
from trayecto import access

_LINE = re.compile(r":\d+\)")


def _thread_of(frames: list[str]) -> str:
    text = ";".join(frames)
    procs = [f for f in frames[:3] if f.startswith("process ")]
    if procs and " worker" in procs[-1]:  # --subprocesses: the innermost process frame
        return "worker process (identity)"
    if "collect/_writer.py" in text and "EventWriter._run" in text:
        return "writer"
    if "LogFollower._run" in text:
        return "identity follower"
    if frames and ("MainThread" in frames[0] or f"({os.getpid()})" in frames[0]):
        return "event loop"
    if "Runner.run (asyncio/runners.py" in text or "uvicorn" in text:
        return "event loop"
    return "other"


def _gil_wait(frames: list[str]) -> bool:
    # CPython 3.11 waits for the GIL in take_gil -> pthread_cond_timedwait (the innermost
    # libc frames often have no symbol).
    return any("take_gil" in f or "pthread_cond_timedwait" in f for f in frames[-4:])


def _bucket_writer(frames: list[str]) -> str:
    text = ";".join(frames)
    leaf = frames[-1]
    if "EventWriter._commit" not in text:
        return "idle: waiting for requests"
    if _gil_wait(frames):
        return "waiting for the GIL"
    if "fdatasync" in leaf or "fsync" in leaf:
        return "fsync"
    if "pwrite" in leaf or leaf.startswith("write ("):
        return "WAL/database writes (pwrite)"
    if "pread" in leaf or leaf.startswith("read ("):
        return "page reads (pread)"
    if "usleep" in text or "nanosleep" in leaf or "BusyHandler" in text:
        return "SQLite busy handler: sleeping until another writer lets go of the lock"
    if "_sqlite_row (" in text or "_pg_row (" in text:
        return "row encoding (Python, orjson)"
    if "libsqlite3" in leaf:
        return "SQLite CPU"
    if "executemany" in text or "cursor.c" in text or "do_executemany" in text:
        return "sqlite3 module / SQLite (use --native to split)"
    if "do_commit" in text or "COMMIT" in text:
        return "commit (WAL write + fsync; use --native to split)"
    return "writer bookkeeping / other"


def _bucket_follower(frames: list[str]) -> str:
    text = ";".join(frames)
    leaf = frames[-1]
    if "sync_identity" not in text:
        return "idle: waiting for a commit"
    if _gil_wait(frames):
        return "waiting for the GIL"
    if "fdatasync" in leaf or "fsync" in leaf:
        return "fsync"
    if "pwrite" in leaf or "pread" in leaf or leaf.startswith(("write (", "read (")):
        return "SQLite file I/O"
    if "read_log" in text:
        return "reading the log (read_log)"
    if "anonymise_events" in text:
        return "anonymising suppressed events"
    return "stitching (identity.process_touches and the rest)"


def _bucket_loop(frames: list[str]) -> str:
    text = ";".join(frames)
    leaf = frames[-1]
    if "ingest (trayecto/web/tracking.py" not in text:
        if "epoll" in leaf or "select (" in leaf or "_run_once" in leaf:
            return "idle: waiting for the network"
        if _gil_wait(frames):
            return "waiting for the GIL"
        return "uvicorn / starlette / fastapi"
    if _gil_wait(frames):
        return "waiting for the GIL"
    if "authenticate_write_key" in text:
        return "write-key lookup (a SELECT per request)"
    if "check_batch" in text:
        return "validation (check_batch)"
    if "EventWriter.write" in text:
        return "hand-off to the writer"
    if "_decompress" in text or "Request.body" in text:
        return "reading the body"
    # Samples whose innermost Python frame is ingest itself: orjson.loads (C) in native
    # mode shows as orjson frames below it.
    return "JSON parsing (orjson.loads) and ingest itself"


def aggregate(folded: Path) -> dict[str, dict[str, int]]:
    out: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in folded.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        thread = _thread_of(frames)
        if thread == "writer":
            out[thread][_bucket_writer(frames)] += int(n)
        elif thread == "event loop":
            out[thread][_bucket_loop(frames)] += int(n)
        elif thread == "worker process (identity)" or thread == "identity follower":
            out[thread][_bucket_follower(frames)] += int(n)
        else:
            out[thread]["(threadpool and others)"] += int(n)
    return {k: dict(v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=15, help="sampling time")
    ap.add_argument("--rate", type=int, default=50, help="samples per second")
    ap.add_argument("--no-native", action="store_true", help="Python frames only (lighter)")
    args = ap.parse_args(argv)
    pyspy = shutil.which("py-spy", path=str(c.VENV_BIN)) or shutil.which("py-spy")
    if pyspy is None:
        print("py-spy is not installed: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    c.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    folded = c.RESULTS_DIR / "profile_http.folded"
    warmup = 3
    with c.temp_home() as home:
        p = c.fresh_platform(home)
        try:
            issued = access.create_source(p.engine, "bench web", "web")
        finally:
            p.close()
        template = home / "batch_template.json"
        bi.write_template(template)
        server = c.start_server(home)
        try:
            env = {
                **os.environ,
                "WRK_TEMPLATE": str(template),
                "WRK_AUTH": "Basic " + base64.b64encode(f"{issued.secret}:".encode()).decode(),
            }
            wrk_cmd = [
                "wrk", f"-t{bi.WRK_THREADS}", f"-c{bi.WRK_CONNECTIONS}",
                f"-d{args.seconds + warmup + 2}s", "--timeout", "10s",
                "-s", str(c.BENCH_DIR / "wrk_batch.lua"), f"{server.url}/v1/batch",
            ]  # fmt: skip
            wrk = subprocess.Popen(wrk_cmd, env=env, stdout=subprocess.PIPE, text=True)
            time.sleep(warmup)
            cmd = [
                pyspy, "record", "-p", str(server.proc.pid), "-d", str(args.seconds),
                "-r", str(args.rate), "--idle", "--threads", "--format", "raw",
                "-o", str(folded), "--subprocesses",
                "--nonblocking" if args.no_native else "--native",
            ]  # fmt: skip
            subprocess.run(cmd, check=True, capture_output=True)
            out, _ = wrk.communicate()
        finally:
            server.stop()
    res = orjson.loads(out.split("WRK_JSON ", 1)[1].splitlines()[0])
    rate = 100 * res["ok"] / (res["duration_us"] / 1e6)
    buckets = aggregate(folded)
    c.console.print(
        f"[bold]HTTP ingest profile[/] ({'python' if args.no_native else 'native'} stacks, "
        f"{args.rate} Hz, {args.seconds} s; {rate:,.0f} events/s while sampled)"
    )
    summary: dict[str, list[dict[str, object]]] = {}
    for thread in (
        "event loop",
        "writer",
        "identity follower",
        "worker process (identity)",
        "other",
    ):
        counts = buckets.get(thread)
        if not counts:
            continue
        total = sum(counts.values())
        rows = sorted(counts.items(), key=lambda kv: -kv[1])
        c.print_table(
            f"{thread} thread: share of wall time ({total} samples)",
            ["where", "share"],
            [[k, f"{v / total:.1%}"] for k, v in rows],
        )
        summary[thread] = [{"bucket": k, "samples": v, "share": v / total} for k, v in rows]
    path = c.write_results(
        "profile_http",
        {
            "native": not args.no_native,
            "rate_hz": args.rate,
            "seconds": args.seconds,
            "events_per_s_while_sampled": rate,
            "threads": summary,
            "folded": str(folded.relative_to(c.ROOT)),
        },
    )
    c.console.print(f"results: {path.relative_to(c.ROOT)}, stacks: {folded.relative_to(c.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
