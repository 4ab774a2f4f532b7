"""Bearer-token authentication and role checks for the admin API."""

from __future__ import annotations

from collections.abc import Callable, Collection, Coroutine
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from trayecto import access
from trayecto.bootstrap import Platform
from trayecto.kernel import PermissionDeniedError

Dependency = Callable[[Request], Coroutine[Any, Any, access.ApiToken]]


def bearer(header: str) -> str | None:
    """The token of an ``Authorization: Bearer …`` header (None without one)."""
    scheme, _, token = header.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def admit(token: access.ApiToken, allowed: Collection[access.Role]) -> access.ApiToken:
    """``token``, if its role is one of ``allowed``; else 403 ``forbidden_role``."""
    if token.role not in allowed:
        raise PermissionDeniedError(
            f"the {token.role.value} role may not use this endpoint",
            code="forbidden_role",
            field="Authorization",
        )
    return token


def require(platform: Platform, *roles: access.Role) -> Dependency:
    """A dependency that admits a valid token holding one of ``roles`` (admin always)."""
    allowed = {access.Role.ADMIN, *roles}

    async def dependency(request: Request) -> access.ApiToken:
        token = bearer(request.headers.get("authorization", ""))
        # a database query: on a worker thread, so the event loop keeps serving
        found = await run_in_threadpool(access.authenticate_token, platform.engine, token)
        return admit(found, allowed)

    return dependency
