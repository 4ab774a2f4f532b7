"""``trayecto simulate``: the demo retailer's history, to a folder or into the store."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from trayecto import sim
from trayecto.cli._common import err, friendly, out, platform
from trayecto.kernel import ValidationError


def _generate(
    root: Path, customers: int, days: int, seed: int, scenario: Path | None, compress: int
) -> sim.Manifest:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
    ) as bar:
        task = bar.add_task("simulating customers", total=customers)
        return sim.simulate(
            root,
            customers=customers,
            days=days,
            seed=seed,
            scenario=scenario,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
            compress=compress,
        )


def _load(manifest: sim.Manifest, rejects_dir: Path) -> sim.LoadReport:
    total = sum(f.path.stat().st_size for f in manifest.files)
    offsets: dict[str, int] = {}
    base = 0
    for f in manifest.files:
        offsets[f.source.name] = base
        base += f.path.stat().st_size
    with (
        platform() as p,
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
        ) as bar,
    ):
        task = bar.add_task("loading events", total=total)
        steps: dict[str, TaskID] = {}

        def progress(source: str, done: int, _total: int) -> None:
            bar.update(task, completed=offsets[source] + done, description=f"loading {source}")

        def step(name: str, done: int, of: int) -> None:
            if name not in steps:
                steps[name] = bar.add_task(f"loading {name}", total=of)
            bar.update(steps[name], completed=done, total=of)

        return sim.load(
            p.engine,
            manifest,
            max_message_bytes=p.settings.max_message_bytes,
            rejects_dir=rejects_dir,
            on_progress=progress,
            key=p.secret_key,
            region=p.settings.default_region,
            on_step=step,
        )


@friendly
def simulate(
    customers: Annotated[int, typer.Option(help="How many customers to simulate.")] = 5000,
    days: Annotated[
        int, typer.Option(help="Days of history, ending at the scenario's date.")
    ] = 365,
    seed: Annotated[int, typer.Option(help="Seed: the same arguments write the same bytes.")] = 42,
    scenario: Annotated[
        Path | None,
        typer.Option(help="A YAML file merged over the default scenario (see docs/simulator.md)."),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Write events (JSONL per source), CSVs and truth/ here."),
    ] = None,
    load: Annotated[
        bool, typer.Option("--load", help="Store the events through trayecto's own importer.")
    ] = False,
    compress: Annotated[
        bool,
        typer.Option(
            "--compress", help="Write the event files gzipped (events/<source>.jsonl.gz)."
        ),
    ] = False,
    compress_level: Annotated[
        int,
        typer.Option(
            min=1, max=9, help="gzip level with --compress: 1 fastest (default), 9 smallest."
        ),
    ] = 1,
) -> None:
    """Simulate the demo retailer: shops, web, app and customers who wander between them."""
    if out_dir is None and not load:
        raise ValidationError("say where the data goes: --out DIR, --load, or both", field="out")
    with tempfile.TemporaryDirectory(prefix="trayecto-sim-") as tmp:
        root = out_dir if out_dir is not None else Path(tmp)
        level = compress_level if compress else 0
        manifest = _generate(root, customers, days, seed, scenario, level)
        table = Table("source", "channel", "events", title=f"{manifest.events:,} events")
        for f in manifest.files:
            table.add_row(f.source.name, f.source.channel, f"{f.events:,}")
        out.print(table)
        out.print(
            f"{customers:,} customers, {manifest.rows['orders.csv']:,} orders, "
            f"{manifest.rows['customers.csv']:,} customer records, {days} days to {manifest.end}"
        )
        if out_dir is not None:
            out.print(f"written to [bold]{out_dir}[/] (ground truth in {out_dir / 'truth'})")
        if load:
            report = _load(manifest, Path(tmp))
            out.print(
                f"loaded: [green]{report.stored:,} stored[/], {report.duplicates:,} already there, "
                f"{report.rejected:,} rejected, {report.sources_created} sources created "
                f"in {report.seconds:.1f} s"
            )
            if report.catalogue:
                out.print(
                    "catalogue: "
                    + ", ".join(f"{n:,} {kind}" for kind, n in report.catalogue)
                    + " (trayecto import locations|products|stock)"
                )
            if report.customers:
                records = sum(c[2] + c[3] for c in report.customers)
                out.print(
                    f"customer records: {records:,} in {len(report.customers)} sources "
                    f"({sum(c[2] for c in report.customers):,} stored or updated, "
                    f"{sum(c[3] for c in report.customers):,} unchanged, "
                    f"{sum(c[4] for c in report.customers):,} rejected; trayecto import customers)"
                )
            out.print(
                f"orders: [green]{report.orders_stored:,} placed[/], "
                f"{report.orders_duplicate:,} already there, {report.orders_rejected:,} rejected, "
                f"{report.orders_returns:,} returns, {report.orders_restocks:,} shops restocked "
                "for a till sale (the order, returns and stock APIs, at their simulated dates)"
            )
            if report.orders_stored or report.orders_duplicate:
                out.print(
                    "till sales: the pos channel's sourcing policy was set to no picking cost "
                    "in shops and no walk-in reserve (it had none)"
                    if report.orders_pos_policy_set
                    else "till sales: the pos channel's own sourcing policy was kept"
                )
            if report.rejected:
                out.print("rejected rows: " + ", ".join(report.rejects))
                raise typer.Exit(1)
