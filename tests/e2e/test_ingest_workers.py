"""Tracking requests checked on ingest worker processes answer exactly as in-process, and
the workers do not outlive a killed server."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.helpers import start_server
from trayecto import access, collect
from trayecto.bootstrap import Platform

pytestmark = pytest.mark.e2e


def _bodies() -> list[tuple[str, bytes]]:
    def track(i: int, **over: Any) -> dict[str, Any]:
        msg = {
            "type": "track",
            "event": "Product Viewed",
            "userId": f"u{i}",
            "messageId": f"w-{i}",
            "properties": {"sku": f"SKU-{i}"},
            "timestamp": f"2026-11-22T10:00:{i:02d}Z",
        }
        msg.update(over)
        return msg

    def batch(*msgs: dict[str, Any]) -> bytes:
        return orjson.dumps({"batch": list(msgs), "sentAt": "2026-11-22T10:01:00Z"})

    return [
        ("/v1/batch", batch(*(track(i) for i in range(20)))),
        ("/v1/batch", batch(*(track(i) for i in range(20)))),  # a retry
        (
            "/v1/batch",
            batch(
                track(30),
                track(31, event=""),
                track(32, timestamp="yesterday"),
                track(33, properties={"blob": "x" * 40_000}),
                track(34, userId=None, anonymousId=None),
            ),
        ),
        ("/v1/batch", b'{"batch": [ {"type": "track",'),
        ("/v1/batch", b'{"no_batch": []}'),
        ("/v1/batch", b"[1, 2]"),
        ("/v1/track", orjson.dumps(track(40))),
        ("/v1/identify", orjson.dumps(track(41))),  # a track sent to /identify
        ("/v1/identify", orjson.dumps({"userId": "u42", "traits": {"email": "a@b.es"}})),
    ]


def _answers(url: str, key: str) -> list[tuple[int, Any]]:
    out = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for path, body in _bodies():
            r = http.post(path, content=body, auth=(key, ""))
            out.append((r.status_code, r.json()))
    return out


def _stored(platform: Platform) -> list[tuple[Any, ...]]:
    page = collect.query_events(platform.engine, collect.EventFilter(), limit=1000)
    return sorted(
        (e.message_id, e.type, e.event, e.user_id, e.properties, e.occurred_at) for e in page.data
    )


def test_worker_processes_answer_as_the_server_process(
    platform: Platform, env: dict[str, str], tmp_path: Path
) -> None:
    key = access.create_source(platform.engine, "web", "web").secret
    results = {}
    for workers in ("0", "2"):
        server = start_server({**env, "TRAYECTO_INGEST_WORKERS": workers}, tmp_path / "s.log")
        try:
            health = httpx.get(server.url + "/healthz").json()["ingest_workers"]
            assert health == {"processes": int(workers), "ready": workers != "0"}
            results[workers] = (_answers(server.url, key), _stored(platform))
        finally:
            server.stop()
        with platform.engine.begin() as conn:  # the same store, empty again
            conn.exec_driver_sql("DELETE FROM events")
    in_process, on_workers = results["0"], results["2"]
    assert on_workers[0] == in_process[0]
    assert [status for status, _ in in_process[0]] == [200, 200, 400, 400, 400, 400, 200, 400, 200]
    assert len(in_process[1]) == 20 + 1 + 1 + 1
    # Stored rows are the same but for occurred_at (skew-corrected against receive time).
    assert [r[:5] for r in on_workers[1]] == [r[:5] for r in in_process[1]]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_ingest_workers_exit_with_a_killed_server(env: dict[str, str], tmp_path: Path) -> None:
    server = start_server({**env, "TRAYECTO_INGEST_WORKERS": "2"}, tmp_path / "s.log")
    # The serve process's children: the identity worker and the ingest pool's processes.
    kids = _children(server.proc.pid)
    pool = [p for p in kids if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert len(pool) >= 2
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pool):
        time.sleep(0.1)
    alive = [p for p in pool if Path(f"/proc/{p}").exists()]
    for p in alive:  # do not leave them behind if the test fails
        os.kill(p, signal.SIGKILL)
    assert alive == []
