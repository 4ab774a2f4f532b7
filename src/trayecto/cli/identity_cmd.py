"""``trayecto import customers``, ``trayecto resolve``, ``trayecto export identities``,
``trayecto customers …``."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated
from uuid import UUID

import orjson
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from trayecto import access, identity
from trayecto.cli._common import err, friendly, out, platform
from trayecto.kernel import ValidationError

export_app = typer.Typer(help="Export data.", no_args_is_help=True)
customers_app = typer.Typer(
    help="Customers: look up, review probable duplicates, undo merges.", no_args_is_help=True
)


def register_imports(import_app: typer.Typer) -> None:
    import_app.command("customers")(import_customers)


@friendly
def import_customers(
    file: Annotated[Path, typer.Argument(help="CSV of customer records with a header row.")],
    source: Annotated[str, typer.Option(help="The source (by name) the records come from.")],
    mapping: Annotated[
        str | None,
        typer.Option(
            "--map",
            help="trayecto field=file column, e.g. 'record_id=rec_id,first_name=given_name,"
            "birth_date=dob'. Fields: " + ", ".join(identity.RECORD_FIELDS) + ". "
            "Unmapped columns are kept as traits.",
        ),
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="Where to write rejected rows (default FILE.rejects.jsonl).")
    ] = None,
) -> None:
    """Import customer records; each keeps its source record id and joins the graph."""
    with platform() as p:
        src = access.get_source(p.engine, source)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            DownloadColumn(),
            console=err,
        ) as bar:
            task = bar.add_task(f"importing {file.name}", total=None)
            report = identity.import_customer_records(
                p.engine,
                file,
                source_id=src.id,
                channel=src.channel.value,
                region=p.settings.default_region,
                key=p.secret_key,
                mapping=identity.parse_record_mapping(mapping),
                rejects_path=rejects,
                on_progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    out.print(
        f"{report.rows:,} rows: [green]{report.stored:,} stored or updated[/], "
        f"{report.unchanged:,} unchanged, {report.rejected:,} rejected in {report.seconds:.1f} s"
    )
    if report.rejected:
        out.print(f"rejected rows, with line and reason: {report.rejects_path}")
        raise typer.Exit(1)


@friendly
def resolve(
    upper: Annotated[
        float | None,
        typer.Option(help="Merge pairs at or above this match probability (default: settings)."),
    ] = None,
    lower: Annotated[
        float | None,
        typer.Option(help="Queue pairs from this probability up to --upper for review."),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Score every customer, not only new and changed ones.")
    ] = False,
    retrain: Annotated[
        bool, typer.Option("--retrain", help="Learn the model again from today's customers.")
    ] = False,
    matching: Annotated[
        bool, typer.Option(help="Run probabilistic matching after stitching.")
    ] = True,
) -> None:
    """Bring identity resolution up to date: stitch every event not yet seen, then match
    customers who share no identifier (names, address, birth date, phone fragments)."""
    with platform() as p:
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            MofNCompleteColumn(),
            console=err,
        ) as bar:
            task = bar.add_task("stitching events", total=None)
            done = p.sync_identity(on_progress=lambda n: bar.update(task, completed=n))
        out.print(f"{done:,} events stitched into the identity graph")
        if not matching:
            return
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
        ) as bar:
            task = bar.add_task("matching", total=None)

            def progress(stage: str, n: int, total: int | None) -> None:
                bar.update(task, description=stage, completed=n, total=total)

            report = identity.run_matching(
                p.engine,
                p.settings.resolved_home,
                upper=p.settings.match_upper if upper is None else upper,
                lower=p.settings.match_lower if lower is None else lower,
                full=full,
                retrain=retrain,
                on_progress=progress,
            )
    table = Table("probabilistic matching", "", title=f"run {report.run_id}", title_justify="left")
    table.add_row("customers", f"{report.customers:,}")
    table.add_row("new or changed (scored)", f"{report.new_customers:,}")
    table.add_row("pairs scored", f"{report.pairs_scored:,}")
    table.add_row("auto-merged", f"[green]{report.auto_merged:,}[/]")
    table.add_row("queued for review", f"[yellow]{report.queued:,}[/]")
    table.add_row("refused by graph rules", f"{report.refused:,}")
    table.add_row("already decided", f"{report.skipped:,}")
    table.add_row("model", "learned in this run" if report.trained else "reused")
    table.add_row("time", f"{report.seconds:.1f} s")
    out.print(table)


@export_app.command("identities")
@friendly
def export_identities(
    fmt: Annotated[str, typer.Option("--format", help="csv")] = "csv",
    output: Annotated[Path | None, typer.Option("--out", help="File (default: stdout).")] = None,
) -> None:
    """One row per source record: source,record_id,customer_id."""
    if fmt != "csv":
        raise ValidationError(
            "only --format csv is supported", code="unknown_format", field="format"
        )
    with platform() as p:
        names = {s.id: s.name for s in access.list_sources(p.engine)}
        fh = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
        try:
            w = csv.writer(fh)
            w.writerow(["source", "record_id", "customer_id"])
            for source_id, record_id, customer_id in identity.export_identity_rows(p.engine):
                w.writerow([names.get(source_id, str(source_id)), record_id, customer_id])
        finally:
            if output:
                fh.close()


@customers_app.command("search")
@friendly
def search(query: Annotated[str, typer.Argument(help="Email, phone, card, id or name.")]) -> None:
    """Find customers by any identifier or name."""
    with platform() as p:
        found = identity.search_customers(p.engine, query, p.settings.default_region)
    table = Table("customer", "name", "email", "phone", "city", "matched on")
    for c in found:
        table.add_row(
            str(c.id),
            c.display_name or "—",
            c.email or "—",
            c.phone or "—",
            c.city or "—",
            c.matched_on,
        )
    out.print(table)


@customers_app.command("unmerge")
@friendly
def unmerge(
    merge_id: Annotated[UUID, typer.Argument(help="The merge's id (see the customer's merges).")],
    reason: Annotated[str, typer.Option(help="Why the merge was wrong.")],
) -> None:
    """Undo a merge: both customers get back their identities, events and records."""
    with platform() as p:
        result = identity.unmerge(p.engine, merge_id, reason)
    out.print("merge undone; customers now: " + ", ".join(str(c) for c in result))


@customers_app.command("export")
@friendly
def export_customer(
    customer_id: Annotated[UUID, typer.Argument(help="The customer's id.")],
    output: Annotated[Path | None, typer.Option("--out", help="File (default: stdout).")] = None,
) -> None:
    """Everything held on a person, as JSON (a subject access request)."""
    with platform() as p:
        data = orjson.dumps(p.export_customer(customer_id), option=orjson.OPT_INDENT_2)
    if output:
        output.write_bytes(data)
        out.print(f"written to {output}")
    else:
        sys.stdout.write(data.decode() + "\n")


@customers_app.command("erase")
@friendly
def erase_customer(
    customer_id: Annotated[UUID, typer.Argument(help="The customer's id.")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: erasure cannot be undone.")] = False,
    by: Annotated[str, typer.Option(help="Who asked (kept in the audit trail).")] = "cli",
) -> None:
    """Erase a person from every store; their identifiers are suppressed for the future."""
    if not yes:
        raise ValidationError(
            "erasure cannot be undone; add --yes to confirm",
            code="confirmation_required",
            field="yes",
        )
    with platform() as p:
        counts = p.erase_customer(customer_id, requested_by=by)
    table = Table("what", "how many", title="erased")
    for k, v in counts.items():
        table.add_row(k, f"{v:,}")
    out.print(table)


@customers_app.command("consent")
@friendly
def consent(
    customer_id: Annotated[UUID, typer.Argument(help="The customer's id.")],
    purpose: Annotated[str, typer.Option(help="marketing|analytics|personalisation")],
    channel: Annotated[str, typer.Option(help="email|sms|whatsapp|push|phone|all")] = "all",
    granted: Annotated[bool, typer.Option("--grant/--revoke", help="Grant or revoke.")] = True,
) -> None:
    """Record a consent statement for a customer."""
    with platform() as p:
        changed = identity.record_consent(
            p.engine, customer_id, purpose, channel, granted, origin="api", evidence={"by": "cli"}
        )
    out.print("recorded" if changed else "unchanged: that was already the customer's choice")


@customers_app.command("review")
@friendly
def review(
    status: Annotated[
        str, typer.Option(help="pending, accepted, rejected, auto_merged, refused")
    ] = "pending",
    limit: Annotated[int, typer.Option(help="How many to show.")] = 20,
) -> None:
    """Probable duplicates waiting for a decision, with the evidence field by field."""
    with platform() as p:
        page, more = identity.review_queue(p.engine, status, limit=limit)
    if not page:
        out.print(f"no {status} candidates")
        return
    for c in page:
        table = Table(
            "field",
            str(c.a.display_name or c.a.id),
            str(c.b.display_name or c.b.id),
            "level",
            "weight",
            title=f"{c.id}  p={c.probability:.4f}  weight={c.match_weight:.1f}  [{c.status}]",
            title_justify="left",
        )
        for e in c.evidence:
            w = float(e.get("weight") or 0)
            colour = "green" if w > 0 else "red" if w < 0 else "white"
            table.add_row(
                e["field"],
                e.get("left") or "—",
                e.get("right") or "—",
                str(e.get("level") or ""),
                f"[{colour}]{w:+.1f}[/]",
            )
        out.print(table)
    if more:
        out.print(f"more: trayecto customers review --limit {limit * 2}")
    out.print("decide: trayecto customers decide ID --accept | --reject")


@customers_app.command("decide")
@friendly
def decide(
    candidate_id: Annotated[UUID, typer.Argument(help="The candidate's id (see review).")],
    accept: Annotated[
        bool | None,
        typer.Option("--accept/--reject", help="One person (merge) or two (never again)."),
    ] = None,
    by: Annotated[str, typer.Option(help="Who decides (kept with the decision).")] = "cli",
) -> None:
    """Accept (merge the two customers) or reject (never propose them again) a candidate."""
    if accept is None:
        raise ValidationError("say --accept or --reject", code="missing_field", field="accept")
    with platform() as p:
        c = identity.decide_candidate(p.engine, candidate_id, accept=accept, by=by)
    if c.status == "accepted":
        out.print(f"[green]merged[/]: {c.a.display_name or c.a.id} is now customer {c.a.id}")
    elif c.status == "refused":
        out.print("[red]refused[/]: the identity graph's rules do not allow this merge")
    else:
        out.print("rejected: this pair will not be proposed again")
