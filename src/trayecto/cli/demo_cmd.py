"""``trayecto demo``: the simulated retailer loaded through the public paths, a fresh admin
token, then the server."""

from __future__ import annotations

from trayecto import access
from trayecto.cli import sim_cmd
from trayecto.cli._common import out, platform
from trayecto.kernel import utcnow


def run(*, host: str, port: int, serve_after: bool, customers: int, days: int) -> None:
    # Idempotent: a second run generates the same bytes and stores nothing new.
    sim_cmd.simulate(
        customers=customers, days=days, seed=42, scenario=None, out_dir=None, load=True
    )
    with platform() as p:
        # Tokens are stored hashed, so each run issues a fresh demo token.
        token_name = f"demo-admin-{utcnow():%Y%m%d-%H%M%S-%f}"
        token = access.create_token(p.engine, token_name, "admin").secret
    out.print()
    out.print(f"[bold green]Demo ready.[/] Console: http://{host}:{port}/  API docs: /docs")
    out.print(f"Admin API token ({token_name}): [bold]{token}[/]", soft_wrap=True)
    out.print(
        f"Try: curl -H 'Authorization: Bearer {token}' 'http://{host}:{port}/api/events?limit=5'",
        soft_wrap=True,
    )
    if serve_after:
        from trayecto.cli.main import serve

        serve(host=host, port=port, access_log=True)
