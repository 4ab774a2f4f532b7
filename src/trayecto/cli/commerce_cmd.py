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
from trayecto.kernel import NotFoundError, ValidationError

inventory_app = typer.Typer(help="Stock per SKU and location.", no_args_is_help=True)
orders_app = typer.Typer(help="Orders: status, history, sourcing.", no_args_is_help=True)
listings_app = typer.Typer(
    help="Per-channel listings: consistency checks and export feeds.", no_args_is_help=True
)


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

    @import_app.command("listings")
    @friendly
    def import_listings(
        file: Annotated[
            Path,
            typer.Argument(
                help="CSV: channel,sku,price (+ currency,title,description,images,active; "
                "images separated by '|')"
            ),
        ],
        rejects: Annotated[Path | None, _REJECTS] = None,
    ) -> None:
        """Import per-channel listings (upserted by channel and SKU)."""
        _import("listings", file, rejects)

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


@inventory_app.command("receive")
@friendly
def receive(
    sku: Annotated[str, typer.Argument(help="The SKU.")],
    location: Annotated[str, typer.Argument(help="The location id where the goods arrived.")],
    quantity: Annotated[int, typer.Argument(help="Units received.")],
    reference: Annotated[
        str | None, typer.Option(help="Delivery note, purchase order or transfer number.")
    ] = None,
) -> None:
    """Goods arrived: on hand rises and the ledger records a receipt."""
    with platform() as p:
        lv = commerce.receive_stock(p.engine, location, sku, quantity, reference=reference)
    out.print(
        f"{lv.sku} at {lv.location_id}: on hand {lv.on_hand}, reserved {lv.reserved}, "
        f"available {lv.available}"
    )


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


@orders_app.command("reject")
@friendly
def reject(
    order_id: Annotated[str, typer.Argument(help="The order id (UUID).")],
    group_id: Annotated[str, typer.Argument(help="The fulfilment group id (UUID).")],
    reason: Annotated[str, typer.Option(help="Why the location rejects it.")],
    short: Annotated[
        list[str] | None, typer.Option(help="SKU:MISSING when short at picking (repeat).")
    ] = None,
) -> None:
    """A location rejects a group or is short at picking: release, correct, source again."""
    missing: dict[str, int] = {}
    for item in short or []:
        sku, _, n = item.partition(":")
        if not sku or not n.isdigit() or int(n) < 1:
            raise ValidationError(f"--short must look like SKU:UNITS (got {item!r})", field="short")
        missing[sku] = missing.get(sku, 0) + int(n)
    with platform() as p:
        view = commerce.reject_group(
            p.engine, _id(order_id, "order_id"), _id(group_id, "group_id"),
            reason=reason, short=missing,
        )  # fmt: skip
    typer.echo(orjson.dumps(view, option=orjson.OPT_INDENT_2).decode())


returns_app = typer.Typer(
    help="Returns (RMA): request, receive, inspect, refund, cancel.", no_args_is_help=True
)
orders_app.add_typer(returns_app, name="returns")


def _id(value: str, field: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise ValidationError(f"{field} must be a UUID", field=field) from None


def _print_return(view: dict[str, object]) -> None:
    typer.echo(orjson.dumps(view, option=orjson.OPT_INDENT_2).decode())


def _pairs(values: list[str], what: str) -> list[list[str]]:
    out = []
    for v in values:
        parts = v.split(":")
        if len(parts) < 2 or not all(parts[:2]):
            raise ValidationError(f"--line must look like {what} (got {v!r})", field="line")
        out.append(parts)
    return out


@returns_app.command("request")
@friendly
def return_request(
    order_id: Annotated[str, typer.Argument(help="The order id (UUID).")],
    line: Annotated[list[str], typer.Option(help="SKU:QUANTITY (repeat for more lines).")],
    method: Annotated[str, typer.Option(help="in_store or by_post.")] = "in_store",
    location: Annotated[
        str | None, typer.Option(help="Where it is handed over (in_store) or sent to.")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why the customer returns it.")] = None,
    channel: Annotated[str | None, typer.Option(help="Where the return is made.")] = None,
) -> None:
    """Open a return (RMA) for units the customer has received."""
    lines = [
        {"sku": sku, "quantity": int(qty) if qty.isdigit() else qty}
        for sku, qty, *_ in _pairs(line, "SKU:QUANTITY")
    ]
    body: dict[str, object] = {"method": method, "lines": lines, "reason": reason}
    if location:
        body["location_id"] = location
    if channel:
        body["channel"] = channel
    req = commerce.check_return(body)
    with platform() as p:
        _print_return(commerce.request_return(p.engine, _id(order_id, "order_id"), req))


@returns_app.command("receive")
@friendly
def return_receive(
    return_id: Annotated[str, typer.Argument(help="The return id (UUID).")],
    location: Annotated[str | None, typer.Option(help="Where it arrived, if elsewhere.")] = None,
) -> None:
    """The returned goods arrived (by post) or were handed over (in a shop)."""
    with platform() as p:
        _print_return(
            commerce.receive_return(p.engine, _id(return_id, "return_id"), location_id=location)
        )


@returns_app.command("inspect")
@friendly
def return_inspect(
    return_id: Annotated[str, typer.Argument(help="The return id (UUID).")],
    line: Annotated[
        list[str],
        typer.Option(
            help="SKU:DECISION[:CONDITION[:LOCATION]]; DECISION restock, write_off or reject; "
            "CONDITION as_new (default), opened, damaged, defective, wrong_item."
        ),
    ],
) -> None:
    """Record the condition and the restock decision of each returned SKU."""
    lines = [
        {
            "sku": parts[0],
            "decision": parts[1],
            "condition": parts[2] if len(parts) > 2 and parts[2] else "as_new",
            **({"location_id": parts[3]} if len(parts) > 3 and parts[3] else {}),
        }
        for parts in _pairs(line, "SKU:DECISION[:CONDITION[:LOCATION]]")
    ]
    inspection = commerce.check_inspection({"lines": lines})
    with platform() as p:
        _print_return(commerce.inspect_return(p.engine, _id(return_id, "return_id"), inspection))


@returns_app.command("refund")
@friendly
def return_refund(
    return_id: Annotated[str, typer.Argument(help="The return id (UUID).")],
    method: Annotated[
        str | None, typer.Option(help="Only if no recorded payment can take it back.")
    ] = None,
    reference: Annotated[str | None, typer.Option(help="E.g. the card refund reference.")] = None,
) -> None:
    """Record the refund against the order's original payments."""
    with platform() as p:
        _print_return(
            commerce.refund_return(
                p.engine, _id(return_id, "return_id"), method=method, reference=reference
            )
        )


@returns_app.command("cancel")
@friendly
def return_cancel(return_id: Annotated[str, typer.Argument(help="The return id (UUID).")]) -> None:
    """Withdraw a return not yet received (its exchange order is cancelled too)."""
    with platform() as p:
        _print_return(commerce.cancel_return(p.engine, _id(return_id, "return_id")))


@returns_app.command("show")
@friendly
def return_show(
    return_id: Annotated[str, typer.Argument(help="A return id, or an order id for all its.")],
) -> None:
    """A return as JSON (or, given an order id, the order's returns)."""
    rid = _id(return_id, "return_id")
    with platform() as p:
        try:
            view: object = commerce.get_return(p.engine, rid)
        except NotFoundError:
            view = commerce.list_returns(p.engine, rid)
    typer.echo(orjson.dumps(view, option=orjson.OPT_INDENT_2).decode())


@listings_app.command("check")
@friendly
def listings_check(
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
) -> None:
    """Inconsistent listings: price off the reference, missing or stale content, active
    without sellable stock. Exits 1 when there are any."""
    with platform() as p:
        issues = commerce.listing_issues(p.engine, channel=channel)
    table = Table("channel", "sku", "issue", "message", title=f"{len(issues)} issue(s)")
    for i in issues:
        table.add_row(i["channel"], i["sku"], i["code"], i["message"])
    out.print(table)
    if issues:
        raise typer.Exit(1)


@listings_app.command("export")
@friendly
def listings_export(
    channel: Annotated[str, typer.Argument(help="The channel, e.g. marketplace.")],
    format: Annotated[str, typer.Option(help="json or csv.")] = "csv",
    output: Annotated[Path | None, typer.Option("--out", help="File (default: stdout).")] = None,
    include_inactive: Annotated[bool, typer.Option(help="Inactive listings too.")] = False,
) -> None:
    """The channel's export feed: its active listings with availability and issues."""
    with platform() as p:
        feed = commerce.export_feed(
            p.engine, channel, fmt=format, include_inactive=include_inactive
        )
    text = (
        feed if isinstance(feed, str) else orjson.dumps(feed, option=orjson.OPT_INDENT_2).decode()
    )
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
    else:
        output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        out.print(f"{channel} feed written to {output}")
