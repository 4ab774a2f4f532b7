"""``trayecto import locations|products|stock``, ``trayecto inventory …``, ``trayecto orders …``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from uuid import UUID

import orjson
import typer
from rich.table import Table

from trayecto import commerce
from trayecto.cli._common import friendly, out, platform
from trayecto.kernel import ValidationError

inventory_app = typer.Typer(help="Stock per SKU and location.", no_args_is_help=True)
orders_app = typer.Typer(help="Orders: status, history, sourcing.", no_args_is_help=True)


def _import(kind: str, file: Path, rejects: Path | None) -> None:
    with platform() as p:
        report = commerce.import_catalogue(p.engine, kind, file, rejects_path=rejects)
    out.print(
        f"{report.rows:,} {kind} rows read: [green]{report.stored:,} stored[/], "
        f"{'[red]' if report.rejected else ''}{report.rejected:,} rejected"
        f"{'[/]' if report.rejected else ''} in {report.seconds:.1f} s"
    )
    if report.rejected:
        out.print(f"rejected rows, with line and reason: {report.rejects_path}")
        raise typer.Exit(1)


_REJECTS = typer.Option(help="Where to write rejected rows (default FILE.rejects.jsonl).")


def register_imports(import_app: typer.Typer) -> None:
    @import_app.command("locations")
    @friendly
    def import_locations(
        file: Annotated[
            Path, typer.Argument(help="CSV: id,name,type,latitude,longitude,capabilities")
        ],
        rejects: Annotated[Path | None, _REJECTS] = None,
    ) -> None:
        """Import locations (upserted by id); capabilities separated by '|'."""
        _import("locations", file, rejects)

    @import_app.command("products")
    @friendly
    def import_products(
        file: Annotated[Path, typer.Argument(help="CSV: sku,name,price,currency")],
        rejects: Annotated[Path | None, _REJECTS] = None,
    ) -> None:
        """Import products (upserted by SKU)."""
        _import("products", file, rejects)

    @import_app.command("stock")
    @friendly
    def import_stock(
        file: Annotated[Path, typer.Argument(help="CSV: sku,location_id,on_hand")],
        rejects: Annotated[Path | None, _REJECTS] = None,
    ) -> None:
        """Import stock counts: on hand is set, the ledger records the difference."""
        _import("stock", file, rejects)


@inventory_app.command("show")
@friendly
def show(sku: Annotated[str, typer.Argument(help="The SKU.")]) -> None:
    """On hand, reserved and available per location."""
    with platform() as p:
        levels = commerce.stock_levels(p.engine, [sku])
    table = Table("location", "on hand", "reserved", "safety", "available", title=sku)
    for lv in levels:
        table.add_row(
            lv.location_id,
            str(lv.on_hand),
            str(lv.reserved),
            str(lv.safety_stock),
            str(lv.available),
        )
    out.print(table)


@inventory_app.command("check")
@friendly
def check() -> None:
    """Verify on hand = sum of the ledger and reserved = active reservations, everywhere."""
    with platform() as p:
        bad = commerce.check_ledger(p.engine)
    if not bad:
        out.print(
            "[green]ledger balanced[/]: every on hand equals its movements, every reserved its holds"
        )
        return
    for row in bad:
        out.print(f"[red]mismatch[/] {row}")
    raise typer.Exit(1)


@inventory_app.command("release-expired")
@friendly
def release_expired() -> None:
    """Release cart and payment holds whose time is up (the server also does it lazily)."""
    with platform() as p:
        freed = commerce.release_expired(p.engine)
    out.print(f"{freed} unit(s) released")


@orders_app.command("show")
@friendly
def show_order(order_id: Annotated[str, typer.Argument(help="The order id (UUID).")]) -> None:
    """The order as JSON: states, groups, history and the sourcing explanation."""
    try:
        oid = UUID(order_id)
    except ValueError:
        raise ValidationError("order id must be a UUID", field="id") from None
    with platform() as p:
        view = commerce.get_order(p.engine, oid)
    typer.echo(orjson.dumps(view, option=orjson.OPT_INDENT_2).decode())


@orders_app.command("find")
@friendly
def find(
    email: Annotated[str | None, typer.Option(help="Customer e-mail.")] = None,
    phone: Annotated[str | None, typer.Option(help="Customer phone.")] = None,
    external_id: Annotated[str | None, typer.Option(help="The channel's order id.")] = None,
) -> None:
    """Order-status lookup for agents."""
    with platform() as p:
        rows = commerce.find_orders(
            p.engine,
            email=commerce.normalise_email(email) if email else None,
            phone=commerce.normalise_phone(phone, p.settings.default_region) if phone else None,
            external_id=external_id,
        )
    table = Table("placed", "channel", "external id", "status", "total", "id")
    for r in rows:
        table.add_row(
            str(r["placed_at"])[:19], r["channel"], r["external_id"], r["status"],
            f"{r['total']} {r['currency']}", r["id"],
        )  # fmt: skip
    out.print(table)
