"""One error shape for the whole API: ``{"error": {"code", "message", "field"}}``."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from trayecto.kernel import TrayectoError

log = logging.getLogger("trayecto.web")

_HTTP_CODES = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def error_response(
    status: int, code: str, message: str, field: str | None = None, **extra: Any
) -> Response:
    body: dict[str, Any] = {"error": {"code": code, "message": message, "field": field}}
    body.update(extra)
    return json_response(body, status)


def install(app: FastAPI) -> None:
    @app.exception_handler(TrayectoError)
    async def _trayecto(_req: Request, exc: TrayectoError) -> Response:
        resp = json_response(exc.to_dict(), exc.http_status)
        if exc.http_status == 401:
            resp.headers["WWW-Authenticate"] = 'Basic realm="trayecto"'
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "body", "path")]
        return error_response(
            400, "invalid", str(first.get("msg", "invalid request")), ".".join(loc) or None
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _bug(req: Request, exc: Exception) -> Response:  # pragma: no cover - a bug
        log.error("unhandled %s on %s %s", type(exc).__name__, req.method, req.url.path)
        log.debug("traceback", exc_info=exc)
        return error_response(500, "internal_error", "an internal error occurred; it was logged")
