"""``trayecto import events`` and ``trayecto events tail``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from trayecto import access, collect
from trayecto.bootstrap import Platform
from trayecto.cli._common import err, friendly, out, platform

import_app = typer.Typer(help="Bulk import from files.", no_args_is_help=True)
events_app = typer.Typer(help="Read the event log.", no_args_is_help=True)


def run_import(
    p: Platform,
    file: Path,
    source: str,
    fmt: str | None = None,
    mapping: str | None = None,
    rejects: Path | None = None,
    show_progress: bool = True,
    workers: int | None = None,
) -> collect.ImportReport:
    src = access.get_source(p.engine, source)
    if src.revoked_at is not None:
        from trayecto.kernel import ValidationError

        raise ValidationError(
            f"source {source!r} is revoked", code="revoked_source", field="source"
        )
    origin = collect.Origin(src.id, src.channel.value, src.location_id)
    parsed = collect.parse_mapping(mapping)
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn()]
    if (fmt or "") != "parquet" and not file.name.endswith(".parquet"):
        columns.append(DownloadColumn())
    columns.append(TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False, disable=not show_progress) as bar:
        task = bar.add_task(f"importing {file.name}", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return collect.import_events(
            p.engine,
            file,
            origin=origin,
            fmt=fmt,
            mapping=parsed,
            rejects_path=rejects,
            max_message_bytes=p.settings.max_message_bytes,
            workers=workers,
            on_progress=progress,
        )


@import_app.command("events")
@friendly
def import_events(
    file: Annotated[Path, typer.Argument(help="JSONL (.jsonl, .jsonl.gz), CSV or Parquet file.")],
    source: Annotated[str, typer.Option(help="The source (by name) the events come from.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="jsonl|csv|parquet (default: by extension)")
    ] = None,
    mapping: Annotated[
        str | None,
        typer.Option(
            "--map",
            help="CSV/Parquet columns to Segment fields: 'userId=customer,event=action,"
            "properties.sku=sku'. Unmapped columns go to properties (traits for identify).",
        ),
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="Where to write rejected rows (default FILE.rejects.jsonl).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Processes that parse and validate (default: one per core, up to 4, for "
            "files of 4 MB or more; 0: all in this process).",
        ),
    ] = None,
) -> None:
    """Import events; re-running the same file stores nothing twice."""
    with platform() as p:
        report = run_import(p, file, source, fmt, mapping, rejects, workers=workers)
    out.print(
        f"{report.rows:,} rows read: [green]{report.stored:,} stored[/], "
        f"{report.duplicates:,} already there, "
        f"{'[red]' if report.rejected else ''}{report.rejected:,} rejected"
        f"{'[/]' if report.rejected else ''} "
        f"in {report.seconds:.1f} s ({report.rate:,.0f} rows/s)"
    )
    if report.rejected:
        out.print(f"rejected rows, with line and reason: {report.rejects_path}")
        raise typer.Exit(1)


def _line(e: collect.NativeEvent) -> str:
    who = e.user_id or (f"anon:{e.anonymous_id}" if e.anonymous_id else "—")
    name = e.event or ""
    return f"{e.occurred_at:%Y-%m-%d %H:%M:%S} {e.channel:<11} {e.type:<8} {name:<24} {who}"


@events_app.command("tail")
@friendly
def tail(
    n: Annotated[int, typer.Option("-n", "--lines", help="How many recent events to show.")] = 20,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events.")
    ] = False,
    source: Annotated[str | None, typer.Option(help="Only this source (by name).")] = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Only this message type.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls with --follow.")] = 1.0,
) -> None:
    """Show the most recent events (in receive order), and follow new ones."""

    def emit(items: list[collect.NativeEvent]) -> None:
        for e in items:
            if as_json:
                typer.echo(orjson.dumps(e.to_dict()).decode())
            else:
                typer.echo(_line(e))

    with platform() as p:
        src_id = access.get_source(p.engine, source).id if source else None
        flt = collect.EventFilter(source_id=src_id, channel=channel, type=type_)
        # the newest event of the whole log, read BEFORE the recent page: an event stored
        # between the two reads is then in the page or after this cursor, never skipped
        newest = (
            collect.query_events(p.engine, collect.EventFilter(), limit=1).data if follow else []
        )
        page = collect.query_events(p.engine, flt, limit=max(1, min(n, 1000)))
        recent = list(reversed(page.data))
        if not as_json and not recent and not follow:
            table = Table(title="no events yet")
            out.print(table)
        emit(recent)
        if not follow:
            return
        if recent:
            cursor: str | None = collect.encode_cursor(recent[-1].id)
        else:  # only what arrives from now on: start after the newest event of the log
            cursor = collect.encode_cursor(newest[0].id) if newest else None
        try:
            while True:
                newer = collect.query_events(
                    p.engine, flt, limit=1000, cursor=cursor, newest_first=False
                )
                emit(newer.data)
                if newer.next_cursor is not None:  # more to read (or a scan window to skip)
                    cursor = newer.next_cursor
                elif newer.data:
                    cursor = collect.encode_cursor(newer.data[-1].id)
                else:
                    time.sleep(interval)
        except KeyboardInterrupt:
            return
