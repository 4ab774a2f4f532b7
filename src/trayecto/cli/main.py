"""``trayecto``: serve, set up sources and tokens, import and read events."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import typer
from rich.table import Table

from trayecto import __version__, access, db
from trayecto.cli import commerce_cmd, events_cmd, identity_cmd, sim_cmd, users_cmd
from trayecto.cli._common import dt, friendly, out, platform, print_secret
from trayecto.kernel import ConflictError

app = typer.Typer(
    help="trayecto: one customer across every channel.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
db_app = typer.Typer(help="Operational store: migrations.", no_args_is_help=True)
sources_app = typer.Typer(
    help="Sources: one integration point of one channel.", no_args_is_help=True
)
tokens_app = typer.Typer(help="Admin API tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(sources_app, name="sources")
app.add_typer(tokens_app, name="tokens")
app.add_typer(users_cmd.users_app, name="users")
app.add_typer(events_cmd.import_app, name="import")
app.add_typer(events_cmd.events_app, name="events")
commerce_cmd.register_imports(events_cmd.import_app)
identity_cmd.register_imports(events_cmd.import_app)
app.add_typer(identity_cmd.export_app, name="export")
app.add_typer(identity_cmd.customers_app, name="customers")
app.command("resolve")(identity_cmd.resolve)
app.add_typer(commerce_cmd.inventory_app, name="inventory")
app.add_typer(commerce_cmd.orders_app, name="orders")
app.add_typer(commerce_cmd.listings_app, name="listings")
app.command("simulate")(sim_cmd.simulate)


def _version(value: bool) -> None:
    if value:
        out.print(f"trayecto {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """trayecto: one customer across every channel."""


@app.command()
@friendly
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    access_log: Annotated[
        bool, typer.Option(help="Log every request: method, path, status, time; never PII.")
    ] = True,
    worker: Annotated[
        bool,
        typer.Option(
            help="Run the background worker (identity stitching) as a second process, so it "
            "never competes with ingestion for the interpreter. --no-worker stitches inside "
            "the server process instead."
        ),
    ] = True,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="HTTP worker processes. Several pay off on PostgreSQL (each process has its "
            "own interpreter); on SQLite they only queue for the one write lock.",
        ),
    ] = 1,
) -> None:
    """Start the HTTP server (tracking API, admin API, console). Applies migrations first."""
    import os
    import subprocess
    import sys

    import uvicorn

    from trayecto.web import create_app
    from trayecto.web.app import SERVE_OPTIONS_ENV, serve_options

    with platform() as p:
        out.print(
            f"trayecto {__version__} on [bold]http://{host}:{port}[/] "
            f"· store: {p.engine.url.render_as_string(hide_password=True)}"
        )
        child = (
            subprocess.Popen(
                [sys.executable, "-m", "trayecto", "worker", "--parent", str(os.getpid())]
            )
            if worker
            else None
        )
        try:
            if workers > 1:  # each process builds its own platform (uvicorn --factory)
                os.environ[SERVE_OPTIONS_ENV] = serve_options(
                    access_log=access_log, follow_log=child is None
                )
                _serve_processes(host, port, workers)
            else:
                uvicorn.run(
                    create_app(
                        p, access_log=access_log, follow_log=child is None, freeze_heap=True
                    ),
                    host=host,
                    port=port,
                    access_log=False,  # ours (trayecto.web.accesslog) leaves out query strings
                    log_level="info",
                )
        finally:
            if child is not None:
                child.terminate()
                try:
                    child.wait(30)
                except subprocess.TimeoutExpired:
                    child.kill()


def _serve_processes(host: str, port: int, workers: int) -> None:
    """``workers`` server processes under uvicorn's supervisor, each listening on a socket
    of its own where the kernel can spread connections (``trayecto.web.listen``)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from trayecto.web import listen

    options: dict[str, Any] = {
        "factory": True,
        "workers": workers,
        "host": host,
        "port": port,
        "access_log": False,
        "log_level": "info",
    }
    if not listen.reuse_port_supported():
        uvicorn.run("trayecto.web.app:app_from_env", **options)
        return
    try:
        held = listen.PerProcessSocket.bind_to(host, port)
    except OSError as exc:
        raise ConflictError(
            f"cannot listen on {host}:{port} ({exc.strerror}); is another server running "
            "there? Stop it or choose another --port.",
            code="port_in_use",
            field="port",
        ) from None
    try:
        bound = held.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        out.print(f"{workers} server processes listening on http://{shown}:{bound}")
        config = uvicorn.Config("trayecto.web.app:app_from_env", **{**options, "port": bound})
        with contextlib.suppress(KeyboardInterrupt):
            Multiprocess(config, sockets=[held]).run()
    finally:
        held.close()


@app.command("worker")
@friendly
def worker_cmd(
    interval: Annotated[float, typer.Option(help="Seconds between polls when idle.")] = 0.2,
    parent: Annotated[
        int | None, typer.Option(help="Stop when this process (the server) is gone.")
    ] = None,
    niceness: Annotated[
        int,
        typer.Option(
            "--nice",
            min=0,
            max=19,
            help="CPU priority below the server's: when cores are short, acknowledging "
            "writes comes first and stitching catches up after the burst.",
        ),
    ] = 5,
    give_way: Annotated[
        float,
        typer.Option(
            min=0,
            help="On SQLite (one writer at a time), while events are arriving, pause this "
            "many times as long as each stitching transaction took, so that acknowledging "
            "tracking requests gets the writer turn first; stitching catches up when the "
            "burst ends. 0: never pause.",
        ),
    ] = 3.0,
) -> None:
    """Run background work: follow the event log and stitch identities, until stopped."""
    import os
    import signal
    import time

    if niceness:
        os.nice(niceness)

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with platform() as p:
        pause_for = give_way if p.settings.is_sqlite else 0.0
        while not stopping:
            if parent is not None and os.getppid() != parent:
                return  # the server is gone (even killed): so is its worker
            started = time.monotonic()
            if p.sync_identity(batch=1000, max_batches=1) == 0:
                time.sleep(interval)
            elif pause_for and p.ingesting():
                time.sleep(min((time.monotonic() - started) * pause_for, 5.0))


@db_app.command("upgrade")
@friendly
def db_upgrade() -> None:
    """Apply every pending migration (also done on each start)."""
    with platform() as p:
        out.print(f"schema at revision [bold]{db.current_revision(p.engine)}[/] (head)")


@db_app.command("current")
@friendly
def db_current() -> None:
    """Show the schema revision without changing anything."""
    from trayecto.bootstrap import build

    p = build(migrate=False)
    try:
        cur, head = db.current_revision(p.engine), db.head_revision()
        state = "up to date" if cur == head else f"behind (head is {head})"
        out.print(f"schema at revision [bold]{cur}[/]: {state}")
    finally:
        p.close()


@sources_app.command("add")
@friendly
def sources_add(
    name: Annotated[
        str, typer.Argument(help="A name people recognise, e.g. 'Madrid Serrano POS'.")
    ],
    channel: Annotated[
        str,
        typer.Option(
            help="web|app|store|marketplace|call_center|whatsapp|social|email",
        ),
    ],
    location: Annotated[
        str | None, typer.Option("--location", help="The shop's location id (store sources).")
    ] = None,
) -> None:
    """Register a source and print its write key once, alone on the last line."""
    with platform() as p:
        issued = access.create_source(p.engine, name, channel, location)
    s = issued.record
    where = f" at location {s.location_id}" if s.location_id else ""
    out.print(f"source [bold]{s.name}[/] ({s.channel.value}{where}) created.")
    out.print("Its write key is shown only now; it is stored hashed. Write key:")
    print_secret(issued.secret)


@sources_app.command("list")
@friendly
def sources_list() -> None:
    """List sources, their channel, location and state."""
    with platform() as p:
        rows = access.list_sources(p.engine)
    table = Table("name", "channel", "location", "key", "created", "state")
    for s in rows:
        state = f"[red]revoked {dt(s.revoked_at)}[/]" if s.revoked_at else "[green]active[/]"
        table.add_row(
            s.name, s.channel.value, s.location_id or "—", s.key_hint, dt(s.created_at), state
        )
    out.print(table)


@sources_app.command("revoke")
@friendly
def sources_revoke(name: Annotated[str, typer.Argument(help="The source's name.")]) -> None:
    """Revoke a source's write key at once; its stored events stay."""
    with platform() as p:
        s = access.revoke_source(p.engine, name)
    out.print(f"source [bold]{s.name}[/] revoked at {dt(s.revoked_at)}; its key no longer works.")


@tokens_app.command("add")
@friendly
def tokens_add(
    name: Annotated[str, typer.Argument(help="Who or what uses the token.")],
    role: Annotated[str, typer.Option(help="admin|marketing|agent|store_staff")] = "admin",
) -> None:
    """Create an API token and print it once, alone on the last line."""
    with platform() as p:
        issued = access.create_token(p.engine, name, role)
    out.print(f"token [bold]{issued.record.name}[/] ({issued.record.role.value}) created.")
    out.print("Send it as 'Authorization: Bearer TOKEN'. It is shown only now. Token:")
    print_secret(issued.secret)


@tokens_app.command("list")
@friendly
def tokens_list() -> None:
    """List API tokens (never the tokens themselves)."""
    with platform() as p:
        rows = access.list_tokens(p.engine)
    table = Table("name", "role", "token", "created", "state")
    for t in rows:
        state = f"[red]revoked {dt(t.revoked_at)}[/]" if t.revoked_at else "[green]active[/]"
        table.add_row(t.name, t.role.value, t.token_hint, dt(t.created_at), state)
    out.print(table)


@tokens_app.command("revoke")
@friendly
def tokens_revoke(name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Revoke an API token at once."""
    with platform() as p:
        t = access.revoke_token(p.engine, name)
    out.print(f"token [bold]{t.name}[/] revoked at {dt(t.revoked_at)}.")


@app.command()
@friendly
def demo(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the server afterwards.")
    ] = True,
    customers: Annotated[int, typer.Option(help="Customers of the simulated retailer.")] = 5000,
    days: Annotated[int, typer.Option(help="Days of history.")] = 365,
) -> None:
    """Load the simulated demo retailer (idempotent), resolve identities, print an admin
    token and console logins, then serve."""
    from trayecto.cli import demo_cmd

    demo_cmd.run(host=host, port=port, serve_after=serve_after, customers=customers, days=days)


def main() -> None:
    app()
