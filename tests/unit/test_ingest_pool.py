"""The ingest pool: the same answers as in-process, and a dead worker costs no request."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from datetime import UTC, datetime

import orjson

from trayecto import collect

ORIGIN = collect.Origin(uuid.uuid4(), "web", None)
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
BODY = orjson.dumps(
    {
        "batch": [
            {"type": "track", "event": "Viewed", "userId": "u1", "messageId": "a"},
            {"type": "track", "userId": "u2", "messageId": "b"},  # no event name
        ]
    }
)


async def _ready(pool: collect.IngestPool) -> None:
    for _ in range(300):
        if pool.ready:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the ingest pool never became ready")


def test_a_dead_worker_costs_no_request_and_the_pool_restarts() -> None:
    async def scenario() -> None:
        pool = collect.IngestPool(1)
        assert await pool.prepare(BODY, ORIGIN, NOW, 32768, None, "sqlite") is None  # cold
        await pool.start()
        try:
            await _ready(pool)
            got = await pool.prepare(BODY, ORIGIN, NOW, 32768, None, "sqlite")
            assert got is not None
            here = collect.prepare_batch(BODY, ORIGIN, NOW, 32768, None, "sqlite")
            assert got.rejections == here.rejections
            assert [r[1:] for r in got.rows] == [r[1:] for r in here.rows]  # but the new id
            assert [r.field for r in got.rejections] == ["batch[1].event"]

            pids = [p for p in os.listdir("/proc") if p.isdigit()]
            kids = [
                int(p)
                for p in pids
                if _ppid(int(p)) == os.getpid() and b"spawn_main" in _cmdline(int(p))
            ]
            assert kids, "no worker process found"
            for pid in kids:
                os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.5)
            # The request that meets the broken pool is answered in-process (None)...
            assert await pool.prepare(BODY, ORIGIN, NOW, 32768, None, "sqlite") is None
            # ...and a fresh pool warms up for the next ones.
            await _ready(pool)
            again = await pool.prepare(BODY, ORIGIN, NOW, 32768, None, "sqlite")
            assert again is not None
            assert again.rejections == here.rejections
        finally:
            pool.close()

    asyncio.run(scenario())


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    except OSError:
        return b""
