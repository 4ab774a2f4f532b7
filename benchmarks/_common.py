"""Shared helpers for the benchmarks: realistic Segment messages, raw rows, a table printer,
JSON results with machine info, and a ``trayecto serve`` subprocess on a loopback port.

Benchmarks run from a checkout with the project installed in ``.venv``; they import
``trayecto`` only through its public faces (``trayecto.collect``, ``trayecto.access``,
``trayecto.bootstrap``, ``trayecto.db``).
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
VENV_BIN = Path(sys.executable).parent

# Wide enough for the tables when output goes to a file or a pipe (make, CI).
console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)

# --------------------------------------------------------------------------------------
# Realistic messages: a Spanish retailer's web shop.
# --------------------------------------------------------------------------------------

_PRODUCTS = [
    ("SKU-10482", "Zapatillas de running Vela 3 azul marino", "89.95", "Calzado/Running"),
    ("SKU-20917", "Chaqueta impermeable Cierzo para mujer", "129.00", "Ropa/Mujer/Abrigos"),
    ("SKU-31154", "Mochila urbana Albarracín 24 L gris", "54.50", "Accesorios/Mochilas"),
    ("SKU-44020", "Camiseta técnica Tramontana manga corta", "24.99", "Ropa/Hombre/Deporte"),
    ("SKU-58733", "Botas de montaña Picos GTX talla 43", "159.90", "Calzado/Montaña"),
    ("SKU-60311", "Sudadera con capucha Alhambra algodón", "39.95", "Ropa/Unisex/Sudaderas"),
    ("SKU-71876", "Gafas de sol polarizadas Cadaqués", "69.00", "Accesorios/Gafas"),
    ("SKU-83245", "Pantalón chino slim Retiro beige", "45.00", "Ropa/Hombre/Pantalones"),
]
_AGENTS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.6478.71 Mobile Safari/537.36",
]
_REFERRERS = ["https://www.google.es/", "https://www.instagram.com/", "", "https://t.co/x"]
SHOP = "https://www.tiendas-aurora.es"


def _slug(text: str) -> str:
    table = str.maketrans("áéíóúñü ", "aeiounu-")
    return "".join(c for c in text.lower().translate(table) if c.isalnum() or c == "-")


def make_message(
    rng: random.Random,
    *,
    when: datetime | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """One realistic Segment ``track`` message (about 700 bytes as compact JSON)."""
    sku, name, price, category = rng.choice(_PRODUCTS)
    customer = rng.randrange(1, 250_000)
    ordered = rng.random() < 0.15
    when = when or datetime.now(UTC) - timedelta(seconds=rng.randrange(0, 86_400))
    slug = _slug(name)
    props: dict[str, Any] = {
        "sku": sku,
        "name": name,
        "price": float(price),
        "currency": "EUR",
        "category": category,
    }
    if ordered:
        props["order_id"] = f"ES-{rng.randrange(10**7, 10**8)}"
        props["quantity"] = rng.randrange(1, 4)
        page = {"url": f"{SHOP}/checkout/confirmacion"}
    else:
        page = {"url": f"{SHOP}/p/{slug}"}
    page["referrer"] = rng.choice(_REFERRERS)
    return {
        "type": "track",
        "event": "Order Completed" if ordered else "Product Viewed",
        "messageId": message_id or str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "anonymousId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "userId": f"cli-{customer:07d}" if rng.random() < 0.6 else None,
        "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "properties": props,
        "context": {
            "ip": f"83.{rng.randrange(32, 64)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            "locale": "es-ES",
            "userAgent": rng.choice(_AGENTS),
            "page": page,
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
        },
    }


def make_messages(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    return [make_message(rng, when=now - timedelta(milliseconds=n - i)) for i in range(n)]


# --------------------------------------------------------------------------------------
# Raw rows for the ``events`` table, exactly as the store writes them.
# --------------------------------------------------------------------------------------

EVENT_COLUMNS = (
    "id", "source_id", "channel", "location_id", "type", "event", "message_id",
    "anonymous_id", "user_id", "group_id", "previous_id", "traits", "properties",
    "context", "extra", "occurred_at", "original_timestamp", "sent_at", "received_at",
    "message_ts",
)  # fmt: skip
RAW_INSERT = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in EVENT_COLUMNS)}) "
    "ON CONFLICT (source_id, message_ts, message_id) DO NOTHING"
)


def read_rows(path: Path) -> list[tuple[Any, ...]]:
    """Every ``events`` row of the SQLite store at ``path``, driver-ready, in insert order:
    the bytes the project's own append path wrote, whatever its encoding of the day."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM events ORDER BY rowid"
        ).fetchall()
    finally:
        conn.close()


def rekey(rows: Sequence[tuple[Any, ...]], *, time_ordered: bool) -> list[tuple[Any, ...]]:
    """``rows`` with fresh primary keys, UUIDv7 (time-ordered) or UUIDv4 (random), in the
    form the store uses for ``id`` (32 hex characters, canonical text, or 16 bytes)."""
    from uuid_utils import compat as uu  # a dependency of trayecto

    if not rows:
        return []
    new = uu.uuid7 if time_ordered else uuid.uuid4
    sample = rows[0][0]
    if isinstance(sample, bytes):
        form = lambda u: u.bytes  # noqa: E731
    elif isinstance(sample, str) and len(sample) == 36:
        form = str
    else:
        form = lambda u: u.hex  # noqa: E731
    return [(form(new()), *r[1:]) for r in rows]


def sqlite_connect(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """A plain ``sqlite3`` connection with the same pragmas as the project's engine."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA secure_delete=ON")
    return conn


def raw_insert(
    conn: sqlite3.Connection,
    rows: Sequence[tuple[Any, ...]],
    batch: int,
    budget: float | None = None,
) -> tuple[int, float]:
    """Insert ``rows`` with ``executemany`` in transactions of ``batch``, stopping early
    once ``budget`` seconds have passed; returns (rows inserted, seconds)."""
    t0 = time.perf_counter()
    done = 0
    for i in range(0, len(rows), batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(RAW_INSERT, rows[i : i + batch])
        conn.execute("COMMIT")
        done = min(i + batch, len(rows))
        if budget is not None and time.perf_counter() - t0 > budget:
            break
    return done, time.perf_counter() - t0


# --------------------------------------------------------------------------------------
# Fresh stores, results and tables.
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def temp_home(prefix: str = "trayecto-bench-") -> Iterator[Path]:
    """A throw-away ``TRAYECTO_HOME`` (on the same disk as a real one would be)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def fresh_platform(home: Path) -> Any:
    """``bootstrap.build()`` on a fresh SQLite store under ``home`` (migrations applied)."""
    from trayecto.bootstrap import build
    from trayecto.settings import Settings

    return build(Settings(home=home, log_level="WARNING"))


def machine_info() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk = shutil.which("wrk")
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "wrk": wrk,
        "load": machine_load(),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def machine_load() -> dict[str, float | None]:
    """Load average and CPU/IO pressure (share of time some task waited, last 10 s): other
    work on the machine skews a benchmark, so every result says how busy the machine was."""
    out: dict[str, float | None] = {"loadavg_1m": os.getloadavg()[0]}
    for kind in ("cpu", "io"):
        value = None
        with contextlib.suppress(OSError, ValueError, IndexError):
            first = Path(f"/proc/pressure/{kind}").read_text().splitlines()[0]
            value = float(first.split()[1].split("=")[1])
        out[f"{kind}_pressure_some_avg10"] = value
    return out


def busy_warning(load: dict[str, float | None]) -> str | None:
    """A warning when other work competes for the machine, else None."""
    cpus = os.cpu_count() or 1
    la = load.get("loadavg_1m") or 0.0
    cpu = load.get("cpu_pressure_some_avg10") or 0.0
    if la > cpus + 0.5 or cpu > 25:
        return (
            f"the machine is busy with other work (load {la:.1f} on {cpus} CPUs, CPU pressure "
            f"{cpu:.0f}%): figures are pessimistic and noisy; re-run when it is quiet"
        )
    return None


def write_results(name: str, data: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` (atomically) with machine info."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    payload = {"benchmark": name, "machine": machine_info(), **data}
    tmp.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    tmp.replace(path)
    return path


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(str(c) for c in row))
    console.print(table)


def fmt_rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


# --------------------------------------------------------------------------------------
# The server under test.
# --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    home: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 20) -> int:
        """SIGINT (uvicorn's graceful shutdown: in-flight requests finish, the writer
        commits what it holds), then wait."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_server(
    home: Path, port: int | None = None, *, timeout: float = 30, args: Sequence[str] = ()
) -> Server:
    """Start ``trayecto serve --no-access-log [args]`` with ``TRAYECTO_HOME=home``; wait for
    ``/healthz``."""
    port = port or free_port()
    env = {**os.environ, "TRAYECTO_HOME": str(home), "TRAYECTO_LOG_LEVEL": "WARNING"}
    log = home / "server.log"
    exe = VENV_BIN / "trayecto"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "trayecto"]
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [*cmd, "serve", "--no-access-log", "--port", str(port), *args],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    server = Server(proc, port, home, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=1) as resp:  # noqa: S310
                ingest = orjson.loads(resp.read()).get("ingest_workers") or {}
                # Measure the server as it runs once its ingest workers are warm.
                if resp.status == 200 and (ingest.get("ready") or not ingest.get("processes")):
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not answer /healthz within {timeout} s:\n{log.read_text()}")
