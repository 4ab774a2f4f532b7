"""What the console's tests through the app share: a request to the app in-process, and a
signed-in visitor of a role."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from trayecto import access
from trayecto.bootstrap import Platform

PASSWORD = "gazpacho andaluz 9"


def call(app: FastAPI, method: str, path: str, **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as c:
            return await c.request(method, path, **kw)

    return asyncio.run(go())


def signed_in(platform: Platform, role: str, locale: str = "es") -> dict[str, str]:
    """Session cookie headers of a new user ``{role}.{locale}@example.es``."""
    user = access.create_user(
        platform.engine, f"{role}.{locale}@example.es", role.title(), role, PASSWORD, locale
    )
    token = access.start_session(platform.engine, user, timedelta(hours=1)).secret
    return {"Cookie": f"trayecto_session={token}"}
