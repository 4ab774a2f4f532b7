"""Order intake, ``POST /api/orders``: the API's busiest write, answered on a short path.

``OrderIntake.answer`` is the route's whole behaviour (token, body, validation, the order
desk, the answer). Two ways reach it:

* ``IntakeFastPath``, an ASGI middleware that ``create_app`` installs inside the access
  log and the server-error handler: it answers ``POST /api/orders`` itself, before
  FastAPI's exception middleware, routing and dependency injection, and passes every other
  request on. Measured under ``benchmarks/bench_orders.py``: the event loop's CPU per order
  0.68 -> 0.33 ms (docs/commerce.md);
* the FastAPI route of the same path (``commerce_api``), which documents it in the OpenAPI
  schema and answers when the middleware is not installed.

Both give the same answers: 201 with the order, 200 with the stored one for a known
(channel, external id), the API's error shape otherwise (401 names ``WWW-Authenticate``).
An unexpected error propagates to the server-error handler (a logged 500)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trayecto import access, commerce
from trayecto.bootstrap import Platform
from trayecto.kernel import TrayectoError, ValidationError
from trayecto.web.auth import admit, bearer

PATH = "/api/orders"
MAX_BODY = 1 << 20
#: What the answer to POST /api/orders keeps of the sourcing explanation (the whole of it,
#: every candidate, is in GET /api/orders/{id}).
SOURCING_SUMMARY = ("method", "chosen", "cost", "runner_up", "splits", "reason")
_JSON = (b"content-type", b"application/json")
_CHALLENGE = (b"www-authenticate", b'Basic realm="trayecto"')
_ADMIN = (access.Role.ADMIN,)

Headers = list[tuple[bytes, bytes]]


def summarised(view: dict[str, Any]) -> dict[str, Any]:
    sourcing = view.get("sourcing") or {}
    return {**view, "sourcing": {k: sourcing.get(k) for k in SOURCING_SUMMARY}}


def parse_json(raw: bytes) -> Any:
    if len(raw) > MAX_BODY:
        raise ValidationError("body larger than 1 MiB", code="payload_too_large", field="body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValidationError(
            "body is not valid JSON", code="malformed_json", field="body"
        ) from None


class OrderIntake:
    """What ``POST /api/orders`` answers (admin tokens only, as the contract says)."""

    def __init__(self, platform: Platform) -> None:
        # a valid token is remembered for a second: no token query on every order
        self._tokens = access.ApiTokenCache(platform.engine)
        self._desk = platform.order_desk  # orders arriving together are placed in one batch
        self._engine = platform.engine
        self._region = platform.settings.default_region

    async def answer(self, authorization: str, raw: bytes) -> tuple[int, bytes, Headers]:
        """(status, JSON body, extra headers) for a request with that ``Authorization``
        header and body."""
        try:
            token = bearer(authorization)
            found = self._tokens.known(token)
            if found is None:
                found = await run_in_threadpool(self._tokens.authenticate, token)
            admit(found, _ADMIN)
            req = commerce.check_order(parse_json(raw), region=self._region)
            order_id, created, view = await asyncio.wrap_future(self._desk.submit(req))
            if view is None:
                view = await run_in_threadpool(commerce.get_order, self._engine, order_id)
            return (201 if created else 200), orjson.dumps(summarised(view)), []
        except TrayectoError as exc:
            extra = [_CHALLENGE] if exc.http_status == 401 else []
            return exc.http_status, orjson.dumps(exc.to_dict()), extra


class IntakeFastPath:
    """ASGI middleware: ``POST /api/orders`` goes to ``intake``, anything else to ``app``."""

    def __init__(self, app: ASGIApp, intake: OrderIntake) -> None:
        self.app = app
        self.intake = intake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        raw = await _body(receive)
        if raw is None:  # the client went away
            return
        authorization = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
        status, body, extra = await self.intake.answer(authorization, raw)
        headers = [_JSON, (b"content-length", str(len(body)).encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _body(receive: Receive) -> bytes | None:
    """The request body, kept only until it passes ``MAX_BODY`` (``parse_json`` refuses
    it then; the rest is read and dropped); None when the client disconnected."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if size <= MAX_BODY:
            chunks.append(chunk)
            size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
