"""What every command shares: the platform, the consoles, error reporting."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from trayecto.bootstrap import Platform, build
from trayecto.kernel import TrayectoError

out = Console()
err = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def platform() -> Iterator[Platform]:
    p = build()
    try:
        yield p
    finally:
        p.close()


def friendly(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a ``TrayectoError`` into a one-line message and exit code 2."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except TrayectoError as exc:
            where = f" ({exc.field})" if exc.field else ""
            detail = escape(f"[{exc.code}]{where}: {exc.message}")
            err.print(f"[bold red]error[/] {detail}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def print_secret(secret: str) -> None:
    """A secret goes alone on the last line of output, unstyled, for scripts to read."""
    sys.stdout.write(secret + "\n")
    sys.stdout.flush()


def dt(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"
