"""An acknowledged write survives a crash: SIGKILL the server in the middle of a load."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.helpers import start_server
from trayecto import access, collect
from trayecto.bootstrap import Platform

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BATCH = 50


def test_sigkill_during_load_loses_no_acknowledged_event(
    platform: Platform, env: dict[str, str], tmp_path: Path
) -> None:
    src = access.create_source(platform.engine, "Crash web", "web")
    server = start_server(env, tmp_path / "server.log")
    acked: list[str] = []
    attempted: list[list[str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        n = 0
        with httpx.Client(base_url=server.url, timeout=10) as http:
            while not stop.is_set():
                ids = [f"w{worker}-b{n}-m{i}" for i in range(BATCH)]
                n += 1
                body = {
                    "batch": [
                        {
                            "type": "track",
                            "event": "Load",
                            "userId": f"u{i}",
                            "messageId": m,
                            "properties": {"n": i},
                        }
                        for i, m in enumerate(ids)
                    ]
                }
                with lock:
                    attempted.append(ids)
                try:
                    r = http.post("/v1/batch", auth=(src.secret, ""), content=orjson.dumps(body))
                except httpx.HTTPError:
                    return  # the server is gone
                if r.status_code == 200:
                    with lock:
                        acked.extend(ids)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 3000 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)
    stop.set()
    for t in threads:
        t.join(15)
    assert len(acked) >= 3000, "the load did not get going"
    assert len(attempted) * BATCH > len(acked), "the kill came after the load, not during it"

    restarted = start_server(env, tmp_path / "server2.log")
    try:
        stored = collect.message_ids(platform.engine, src.record.id)
        missing = set(acked) - stored
        assert not missing, f"{len(missing)} acknowledged events lost"
        # Nothing half-written: a batch is stored whole or not at all.
        for ids in attempted:
            present = sum(1 for m in ids if m in stored)
            assert present in (0, BATCH), f"batch {ids[0]} half stored: {present}/{BATCH}"
        r = httpx.post(
            restarted.url + "/v1/batch",
            auth=(src.secret, ""),
            content=orjson.dumps({"batch": [{"type": "track", "event": "After", "userId": "u"}]}),
        )
        assert r.status_code == 200
    finally:
        restarted.stop()
