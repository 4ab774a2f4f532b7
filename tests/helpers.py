"""Helpers for tests that drive real processes: the server and the CLI."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    env: dict[str, str]
    log: Path

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(
    env: dict[str, str],
    log: Path,
    port: int | None = None,
    *,
    access_log: bool = False,
    warm: bool = True,
) -> Server:
    """Start ``trayecto serve`` as a real process on a loopback port; wait for /healthz and,
    with ``warm``, for its ingest worker processes, so that tracking requests take the path
    they take in production."""
    port = port or free_port()
    fh = log.open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trayecto",
            "serve",
            "--port",
            str(port),
            "--access-log" if access_log else "--no-access-log",
        ],
        env=env,
        stdout=fh,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            health = httpx.get(url + "/healthz", timeout=1)
            if health.status_code == 200:
                ingest = health.json()["ingest_workers"]
                if not warm or ingest["ready"] or ingest["processes"] == 0:
                    return Server(url, proc, env, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")


def run_cli(
    env: dict[str, str], *args: str, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real ``trayecto`` command (``python -m trayecto``)."""
    proc = subprocess.run(
        [sys.executable, "-m", "trayecto", *args],
        env={**env, "COLUMNS": "200"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"trayecto {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def last_line(text: str) -> str:
    return text.rstrip("\n").splitlines()[-1]


def csrf_of(html: str) -> str:
    """The CSRF token a console page's forms carry."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)
