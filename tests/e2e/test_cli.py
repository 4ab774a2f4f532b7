"""The real ``trayecto`` command, run as a process."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tests.helpers import last_line, run_cli
from trayecto.cli.main import app as cli_app

pytestmark = pytest.mark.e2e

COMMANDS = [
    [],
    ["serve"],
    ["demo"],
    ["simulate"],
    ["db"],
    ["db", "upgrade"],
    ["db", "current"],
    ["sources"],
    ["sources", "add"],
    ["sources", "list"],
    ["sources", "revoke"],
    ["tokens"],
    ["tokens", "add"],
    ["tokens", "list"],
    ["tokens", "revoke"],
    ["import"],
    ["import", "events"],
    ["events"],
    ["events", "tail"],
    ["worker"],
    ["resolve"],
    ["import", "customers"],
    ["export"],
    ["export", "identities"],
    ["customers"],
    ["customers", "search"],
    ["customers", "export"],
    ["customers", "erase"],
    ["customers", "consent"],
    ["customers", "unmerge"],
    ["customers", "review"],
    ["customers", "decide"],
    ["users"],
    ["users", "add"],
]


def test_every_command_has_help() -> None:
    # In-process (the same Typer app the command runs): a process per command is slow.
    runner = CliRunner()
    for cmd in COMMANDS:
        result = runner.invoke(cli_app, [*cmd, "--help"])
        assert result.exit_code == 0, (cmd, result.output)
        assert "Usage:" in result.output, cmd
        assert len(result.output.splitlines()) > 3, cmd
    assert "Usage:" in run_cli(dict(os.environ), "--help").stdout  # and the real entry point


def test_sources_and_tokens(env: dict[str, str]) -> None:
    proc = run_cli(
        env,
        "sources",
        "add",
        "Sevilla Centro POS",
        "--channel",
        "store",
        "--location",
        "SEV-CENTRO",
    )
    key = last_line(proc.stdout)
    assert key.startswith("wk_")
    assert len(key) > 30
    assert proc.stdout.count(key) == 1
    listing = run_cli(env, "sources", "list").stdout
    assert "Sevilla Centro POS" in listing
    assert "SEV-CENTRO" in listing
    assert key not in listing
    assert "active" in listing
    run_cli(env, "sources", "revoke", "Sevilla Centro POS")
    assert "revoked" in run_cli(env, "sources", "list").stdout

    bad = run_cli(env, "sources", "add", "x", "--channel", "fax", check=False)
    assert bad.returncode == 2
    assert "unknown channel" in bad.stderr
    dup = run_cli(env, "sources", "add", "Sevilla Centro POS", "--channel", "web", check=False)
    assert dup.returncode == 2
    assert "source_exists" in dup.stderr

    token = last_line(run_cli(env, "tokens", "add", "analyst", "--role", "marketing").stdout)
    assert token.startswith("tk_")
    listing = run_cli(env, "tokens", "list").stdout
    assert "analyst" in listing
    assert "marketing" in listing
    assert token not in listing


def test_import_and_tail(env: dict[str, str], tmp_path: Path) -> None:
    run_cli(env, "sources", "add", "Call centre", "--channel", "call_center")
    path = tmp_path / "calls.jsonl"
    rows = [
        orjson.dumps(
            {
                "type": "track",
                "event": "Call Ended",
                "userId": f"C{i}",
                "messageId": f"call-{i}",
                "timestamp": f"2026-05-01T09:{i:02d}:00Z",
            }
        )
        for i in range(40)
    ]
    rows.insert(5, b'{"type": "track", "userId": "C99"}')
    path.write_bytes(b"\n".join(rows) + b"\n")

    first = run_cli(env, "import", "events", str(path), "--source", "Call centre", check=False)
    assert first.returncode == 1  # some rows were rejected: scripts must notice
    assert "40 stored" in first.stdout
    assert "1 rejected" in first.stdout
    rejects = [
        orjson.loads(x) for x in Path(str(path) + ".rejects.jsonl").read_bytes().splitlines()
    ]
    assert rejects == [
        {
            "line": 6,
            "code": "missing_field",
            "message": "track needs an event name",
            "field": "event",
        }
    ]
    again = run_cli(env, "import", "events", str(path), "--source", "Call centre", check=False)
    assert "0 stored" in again.stdout
    assert "40 already there" in again.stdout

    tail = run_cli(env, "events", "tail", "-n", "5").stdout.splitlines()
    assert len(tail) == 5
    assert "Call Ended" in tail[-1]
    assert "call_center" in tail[-1]
    as_json = [
        orjson.loads(x)
        for x in run_cli(env, "events", "tail", "-n", "3", "--json").stdout.splitlines()
    ]
    assert [e["message_id"] for e in as_json] == ["call-37", "call-38", "call-39"]

    missing = run_cli(env, "import", "events", str(path), "--source", "nope", check=False)
    assert missing.returncode == 2
    assert "no source named 'nope'" in missing.stderr


def test_tail_follow_prints_new_events(env: dict[str, str], tmp_path: Path) -> None:
    run_cli(env, "sources", "add", "App", "--channel", "app")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trayecto",
            "events",
            "tail",
            "--follow",
            "--interval",
            "0.1",
            "--json",
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        path = tmp_path / "e.jsonl"
        path.write_bytes(
            orjson.dumps({"type": "track", "event": "Opened", "anonymousId": "a1"}) + b"\n"
        )
        run_cli(env, "import", "events", str(path), "--source", "App")
        assert proc.stdout is not None
        # never wait forever: an event the tail skipped would otherwise hang the run
        with selectors.DefaultSelector() as ready:
            ready.register(proc.stdout, selectors.EVENT_READ)
            assert ready.select(timeout=30), "tail --follow printed nothing in 30 s"
        line = proc.stdout.readline()
        assert orjson.loads(line)["event"] == "Opened"
    finally:
        proc.terminate()
        proc.wait(10)


def test_works_from_any_directory_with_the_default_home(tmp_path: Path) -> None:
    # Independent of the database under test: this is the embedded default, SQLite in ./var.
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRAYECTO_")}
    proc = run_cli(clean, "db", "upgrade", cwd=elsewhere)
    assert "head" in proc.stdout
    assert (elsewhere / "var" / "trayecto.sqlite3").is_file()
    key = last_line(
        run_cli(clean, "sources", "add", "web", "--channel", "web", cwd=elsewhere).stdout
    )
    assert key.startswith("wk_")
