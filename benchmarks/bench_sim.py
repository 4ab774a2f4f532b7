"""Simulator generation rate: customers and events per second, memory, bytes on disk.

Baseline, measured in the same run: writing the same number of pre-built JSONL lines
(``orjson.dumps`` of a realistic message, already encoded) to a file in 256 KiB blocks,
which is the floor for any generator that streams its events to disk.

    python benchmarks/bench_sim.py [--quick] [--customers N] [--days D] [--compress LEVEL]

``--compress LEVEL`` measures the run with gzipped event files (``simulate --compress``)
and writes ``results/sim_gzip.json`` (the plain run writes ``results/sim.json``).
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import make_message, print_table, write_results
from trayecto import sim


def _baseline(n: int, root: Path) -> float:
    rng = random.Random(1)
    lines = [orjson.dumps(make_message(rng), option=orjson.OPT_APPEND_NEWLINE) for _ in range(1000)]
    started = time.perf_counter()
    with (root / "baseline.jsonl").open("wb") as fh:
        block: list[bytes] = []
        size = 0
        for i in range(n):
            line = lines[i % 1000]
            block.append(line)
            size += len(line)
            if size >= 256 * 1024:
                fh.write(b"".join(block))
                block.clear()
                size = 0
        fh.write(b"".join(block))
    return time.perf_counter() - started


def _disk(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 customers instead of 10,000")
    parser.add_argument("--customers", type=int)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument(
        "--compress", type=int, default=0, choices=range(10), metavar="LEVEL",
        help="gzip level of the event files, 1-9 (default 0: plain JSONL)",
    )  # fmt: skip
    args = parser.parse_args()
    customers = args.customers or (1000 if args.quick else 10_000)
    root = Path(tempfile.mkdtemp(prefix="trayecto-bench-sim-"))
    try:
        started = time.perf_counter()
        cpu0 = time.process_time()
        manifest = sim.simulate(
            root / "out", customers=customers, days=args.days, seed=42, compress=args.compress
        )
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size = _disk(root / "out")
        base_seconds = _baseline(manifest.events, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rate = manifest.events / seconds
    base_rate = manifest.events / base_seconds
    target = 1_000_000 / 60
    rows = [
        ["trayecto simulate", f"{customers:,}", f"{manifest.events:,}", f"{seconds:.1f}",
         f"{rate:,.0f}", f"{customers / seconds:,.0f}"],
        ["baseline: write pre-built JSONL lines", "—", f"{manifest.events:,}",
         f"{base_seconds:.2f}", f"{base_rate:,.0f}", "—"],
    ]  # fmt: skip
    gz = f", events gzipped (level {args.compress})" if args.compress else ""
    print_table(
        f"Simulator, {args.days} days{gz} (target ≥ {target:,.0f} events/s: 1M events in 60 s)",
        ["what", "customers", "events", "seconds", "events/s", "customers/s"],
        rows,
    )
    print(
        f"peak RSS {rss_mb:,.0f} MB · {size / 1e6:,.0f} MB written · "
        f"{manifest.rows['orders.csv']:,} orders · CPU {cpu:.1f} s"
    )
    path = write_results(
        "sim_gzip" if args.compress else "sim",
        {
            "customers": customers,
            "days": args.days,
            "compress": args.compress,
            "events": manifest.events,
            "seconds": round(seconds, 3),
            "events_per_second": round(rate),
            "customers_per_second": round(customers / seconds),
            "peak_rss_mb": round(rss_mb),
            "bytes_written": size,
            "orders": manifest.rows["orders.csv"],
            "target_events_per_second": round(target),
            "meets_target": rate >= target,
            "baseline": {
                "what": "write the same number of pre-built orjson JSONL lines in 256 KiB blocks",
                "seconds": round(base_seconds, 3),
                "events_per_second": round(base_rate),
            },
        },
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
