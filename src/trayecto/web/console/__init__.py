"""The console: server-rendered pages for the people who serve customers (sign in, search,
the customer 360), in Spanish and English, usable on a shop tablet. No JavaScript, no
external assets.

``install(app, platform)`` mounts it at ``/console`` (pages) and ``/console/static``.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from trayecto import access
from trayecto.bootstrap import Platform
from trayecto.kernel import AuthenticationError
from trayecto.web.console._pages import CUSTOMER_ROLES, ConsoleExit, build_router
from trayecto.web.console._session import SESSION_COOKIE

__all__ = ["CUSTOMER_ROLES", "install", "signed_in"]


def install(app: FastAPI, platform: Platform) -> None:
    static = resources.files("trayecto.web").joinpath("static")
    app.mount("/console/static", StaticFiles(directory=str(static)), name="console-static")
    app.include_router(build_router(platform))

    async def _exit(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConsoleExit)
        return exc.response

    app.add_exception_handler(ConsoleExit, _exit)


def signed_in(request: Request, platform: Platform) -> bool:
    """Whether ``request`` carries a live console session."""
    try:
        access.session_user(platform.engine, request.cookies.get(SESSION_COOKIE))
    except AuthenticationError:
        return False
    return True
