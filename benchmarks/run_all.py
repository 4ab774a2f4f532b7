"""Run every ``benchmarks/bench_*.py`` in turn (``make bench``).

    python benchmarks/run_all.py [--quick] [NAME ...]

Each benchmark runs in its own process and prints its own table; results go to
``benchmarks/results/<name>.json``. Exits non-zero if a benchmark crashes (or fails its
own correctness checks), not when a performance target is missed: targets are reported.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    ap.add_argument("names", nargs="*", help="only these (e.g. ingest sim)")
    args = ap.parse_args(argv)
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.names]
        if not scripts:
            print(f"no benchmark named {' '.join(args.names)}", file=sys.stderr)
            return 2
    failed: list[str] = []
    timings: list[tuple[str, float, int]] = []
    for script in scripts:
        cmd = [sys.executable, str(script), *(["--quick"] if args.quick else [])]
        print(f"\n=== {script.name} {'--quick' if args.quick else ''}".rstrip(), flush=True)
        started = time.perf_counter()
        rc = subprocess.call(cmd, cwd=HERE.parent)
        elapsed = time.perf_counter() - started
        timings.append((script.name, elapsed, rc))
        if rc != 0:
            failed.append(script.name)
    print("\n=== summary")
    for name, elapsed, rc in timings:
        print(f"  {name:<24} {elapsed:6.1f} s  {'ok' if rc == 0 else f'FAILED (exit {rc})'}")
    if failed:
        print(f"{len(failed)} benchmark(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
