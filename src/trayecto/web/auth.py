"""Bearer-token authentication and role checks for the admin API."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request

from trayecto import access
from trayecto.bootstrap import Platform
from trayecto.kernel import PermissionDeniedError

Dependency = Callable[[Request], Coroutine[Any, Any, access.ApiToken]]


def require(platform: Platform, *roles: access.Role) -> Dependency:
    """A dependency that admits a valid token holding one of ``roles`` (admin always)."""
    allowed = {access.Role.ADMIN, *roles}

    async def dependency(request: Request) -> access.ApiToken:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token_value = token.strip() if scheme.lower() == "bearer" else None
        api_token = access.authenticate_token(platform.engine, token_value)
        if api_token.role not in allowed:
            raise PermissionDeniedError(
                f"the {api_token.role.value} role may not use this endpoint",
                code="forbidden_role",
                field="Authorization",
            )
        return api_token

    return dependency
