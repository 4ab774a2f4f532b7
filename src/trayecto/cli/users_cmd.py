"""``trayecto users``: the people who sign in to the console."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from trayecto import access
from trayecto.cli._common import dt, friendly, out, platform, print_secret
from trayecto.kernel import ValidationError

users_app = typer.Typer(
    help="Console users: who may sign in, with which role and language.", no_args_is_help=True
)


def _password_from_stdin() -> str:
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise ValidationError("no password on standard input", field="password")
    return password


@users_app.command("add")
@friendly
def users_add(
    email: Annotated[str, typer.Argument(help="The address the person signs in with.")],
    name: Annotated[str, typer.Option(help="Full name, shown in the console.")],
    role: Annotated[str, typer.Option(help="admin|marketing|agent|store_staff")],
    locale: Annotated[str, typer.Option(help="Console language: es|en.")] = "es",
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password from the first line of standard input instead of "
            "generating one.",
        ),
    ] = False,
) -> None:
    """Create a console user. A generated password is printed once, alone on the last line."""
    password = _password_from_stdin() if password_stdin else access.generate_password()
    with platform() as p:
        user = access.create_user(p.engine, email, name, role, password, locale)
    out.print(
        f"user [bold]{user.email}[/] ({user.role.value}, {user.locale}) created.",
        highlight=False,
    )
    if not password_stdin:
        out.print("Their password is shown only now; it is stored hashed. Password:")
        print_secret(password)


@users_app.command("list")
@friendly
def users_list() -> None:
    """List console users (never their passwords)."""
    with platform() as p:
        rows = access.list_users(p.engine)
    table = Table("email", "name", "role", "language", "created", "state")
    for u in rows:
        state = f"[red]disabled {dt(u.disabled_at)}[/]" if u.disabled_at else "[green]active[/]"
        table.add_row(u.email, u.name, u.role.value, u.locale, dt(u.created_at), state)
    out.print(table)


@users_app.command("disable")
@friendly
def users_disable(email: Annotated[str, typer.Argument(help="The user's email.")]) -> None:
    """Disable a user: they cannot sign in, and their open sessions end at once."""
    with platform() as p:
        u = access.disable_user(p.engine, email)
    out.print(f"user [bold]{u.email}[/] disabled at {dt(u.disabled_at)}.", highlight=False)


@users_app.command("password")
@friendly
def users_password(
    email: Annotated[str, typer.Argument(help="The user's email.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the new password from standard input.")
    ] = False,
) -> None:
    """Set a new password (generated and printed once on the last line, unless read from
    standard input). The user's open sessions end."""
    password = _password_from_stdin() if password_stdin else access.generate_password()
    with platform() as p:
        u = access.reset_password(p.engine, email, password)
    out.print(f"password of [bold]{u.email}[/] changed; their sessions ended.", highlight=False)
    if not password_stdin:
        out.print("New password (shown only now):")
        print_secret(password)
