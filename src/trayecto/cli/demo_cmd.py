"""``trayecto demo``: the simulated retailer loaded through the public paths, identity
resolution brought up to date (``trayecto resolve``: every event stitched, then the
probabilistic matcher: probable duplicates merged or queued for the review page), a fresh
admin token, console logins, then the server."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from trayecto import access
from trayecto.cli import identity_cmd, sim_cmd
from trayecto.cli._common import out, platform
from trayecto.kernel import NotFoundError, utcnow

#: The demo's console users: (email, name, role).
DEMO_USERS = (
    ("admin@demo.example", "Demo Admin", "admin"),
    ("tienda@demo.example", "Lucía (Tienda Serrano)", "store_staff"),
    ("agente@demo.example", "Javier (Atención al cliente)", "agent"),
)


def demo_logins(engine: Engine) -> list[tuple[str, str, str]]:
    """Create the demo console users if missing, else give them a fresh password (only the
    hash is kept, so printing a login means setting it). Returns (email, role, password)."""
    logins = []
    for email, name, role in DEMO_USERS:
        password = access.generate_password()
        try:
            access.get_user(engine, email)
        except NotFoundError:
            access.create_user(engine, email, name, role, password, "es")
        else:
            access.reset_password(engine, email, password)
        logins.append((email, role, password))
    return logins


def run(*, host: str, port: int, serve_after: bool, customers: int, days: int) -> None:
    # Idempotent: a second run generates the same bytes and stores nothing new.
    sim_cmd.simulate(
        customers=customers, days=days, seed=42, scenario=None, out_dir=None, load=True
    )
    # What exists of resolution: stitching, then matching (new and changed customers only,
    # so a second run does little).
    identity_cmd.resolve(upper=None, lower=None, full=False, retrain=False, matching=True)
    with platform() as p:
        # Tokens are stored hashed, so each run issues a fresh demo token.
        token_name = f"demo-admin-{utcnow():%Y%m%d-%H%M%S-%f}"
        token = access.create_token(p.engine, token_name, "admin").secret
        logins = demo_logins(p.engine)
    out.print()
    out.print(f"[bold green]Demo ready.[/] Console: http://{host}:{port}/  API docs: /docs")
    out.print(f"Admin API token ({token_name}): [bold]{token}[/]", soft_wrap=True)
    out.print(f"Console logins (http://{host}:{port}/console; new passwords on every run):")
    for email, role, password in logins:
        out.print(f"  {role:<12} {email:<22} {password}", soft_wrap=True, highlight=False)
    out.print(
        f"Try: curl -H 'Authorization: Bearer {token}' 'http://{host}:{port}/api/events?limit=5'",
        soft_wrap=True,
    )
    if serve_after:
        from trayecto.cli.main import serve

        serve(host=host, port=port, access_log=True)
