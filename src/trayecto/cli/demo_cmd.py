"""``trayecto demo``: the demo retailer's sources, an admin token and sample events."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from trayecto import access, sample
from trayecto.cli._common import out, platform
from trayecto.cli.events_cmd import run_import
from trayecto.kernel import ConflictError, utcnow


def run(*, host: str, port: int, serve_after: bool, sample_file: Path | None) -> None:
    with platform() as p:
        for name, channel, location in sample.SOURCES:
            try:
                access.create_source(p.engine, name, channel, location)
                out.print(f"source [bold]{name}[/] ({channel}) created")
            except ConflictError:
                pass
        # Tokens are stored hashed, so each run issues a fresh demo token.
        token_name = f"demo-admin-{utcnow():%Y%m%d-%H%M%S-%f}"
        token = access.create_token(p.engine, token_name, "admin").secret

        by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
        if sample_file is not None:
            by_source[sample.SOURCES[0][0]] = [
                orjson.loads(line) for line in sample_file.read_bytes().splitlines() if line.strip()
            ]
        else:
            for source, msg in sample.sample_messages():
                by_source[source].append(msg)
        with tempfile.TemporaryDirectory() as tmp:
            for source, msgs in by_source.items():
                path = Path(tmp) / f"{source.replace(' ', '_')}.jsonl"
                path.write_bytes(b"".join(orjson.dumps(m) + b"\n" for m in msgs))
                report = run_import(p, path, source, rejects=Path(tmp) / "rejects.jsonl")
                out.print(
                    f"{source}: {report.stored:,} new events, {report.duplicates:,} already loaded"
                )
        out.print()
        out.print(f"[bold green]Demo ready.[/] Console: http://{host}:{port}/  API docs: /docs")
        out.print(f"Admin API token ({token_name}): [bold]{token}[/]", soft_wrap=True)
        out.print(
            f"Try: curl -H 'Authorization: Bearer {token}' "
            f"'http://{host}:{port}/api/events?limit=5'",
            soft_wrap=True,
        )
    if serve_after:
        from trayecto.cli.main import serve

        serve(host=host, port=port, access_log=True)
