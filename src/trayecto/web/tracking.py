"""The Segment-compatible tracking API: ``/v1/batch`` and the single-message endpoints.

Official Segment SDKs work by changing only their host. The write key comes as the HTTP
Basic user name (SDKs) or as ``writeKey`` in the body (analytics.js, which posts as
``text/plain`` to avoid a CORS preflight). Bodies may be gzip-compressed. The answer is
200 only after every accepted event is committed; in a batch with bad messages the good
ones are stored and the bad ones are listed by index in a 400 answer.
"""

from __future__ import annotations

import base64
import binascii
import zlib

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from trayecto import access, collect
from trayecto.bootstrap import Platform
from trayecto.kernel import AuthenticationError, PayloadTooLargeError, ValidationError, utcnow
from trayecto.web.errors import error_response, json_response

_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Content-Encoding",
    "Access-Control-Max-Age": "86400",
}
# analytics.js and other SDKs use one-letter paths for the single-message calls.
_KINDS = {
    "batch": None,
    "import": None,
    "b": None,
    "track": "track",
    "t": "track",
    "identify": "identify",
    "i": "identify",
    "page": "page",
    "p": "page",
    "screen": "screen",
    "s": "screen",
    "group": "group",
    "g": "group",
    "alias": "alias",
    "a": "alias",
}


def _basic_user(header: str | None) -> str | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationError(
            "the Authorization header is not valid HTTP Basic",
            code="invalid_write_key",
            field="Authorization",
        ) from None
    return decoded.partition(":")[0] or None


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise ValidationError(
            f"Content-Encoding {encoding!r} is not supported; use gzip",
            code="unsupported_encoding",
            field="Content-Encoding",
        )
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ValidationError(
            f"the body is not valid {encoding}: {exc}", code="invalid_encoding", field="body"
        ) from None
    if len(out) > limit:
        raise PayloadTooLargeError(
            f"the decompressed body is over {limit} bytes; send smaller batches",
            code="batch_too_large",
            field="body",
        )
    return out


def build_router(platform: Platform, pool: collect.IngestPool | None = None) -> APIRouter:
    settings = platform.settings
    engine = platform.engine
    writer = platform.writer
    keys = access.WriteKeyCache(engine)
    router = APIRouter(tags=["tracking"])

    async def source_of(key: str | None) -> access.Source:
        """The key's source: remembered (no query), or asked of the database on a worker
        thread, so that a lookup never holds up the event loop and every request on it."""
        found = keys.known(key)
        return found if found is not None else await run_in_threadpool(keys.authenticate, key)

    async def ingest(request: Request) -> Response:
        received_at = utcnow()
        kind = request.path_params["kind"]
        if kind not in _KINDS:
            return error_response(
                404, "not_found", f"no tracking endpoint /v1/{kind}", None, headers=None
            )
        forced = _KINDS[kind]
        limit = settings.max_batch_bytes if forced is None else settings.max_message_bytes

        header_key = _basic_user(request.headers.get("authorization"))
        source = await source_of(header_key) if header_key else None

        length = request.headers.get("content-length")
        # Refuse an oversize uncompressed batch before reading it; a compressed body is
        # judged by its decompressed size below.
        if (
            forced is None
            and length
            and length.isdigit()
            and int(length) > limit
            and not request.headers.get("content-encoding")
        ):
            raise PayloadTooLargeError(
                f"the body is {length} bytes; a batch may be at most {limit}",
                code="batch_too_large",
                field="body",
            )
        raw = await request.body()
        body = _decompress(raw, request.headers.get("content-encoding", "").lower(), limit)
        if len(body) > limit:
            code = "batch_too_large" if forced is None else "message_too_large"
            raise PayloadTooLargeError(
                f"the body is {len(body)} bytes; the limit is {limit}", code=code, field="body"
            )
        prepared = None
        if source is not None and pool is not None and pool.ready:
            # Parsing, checking and encoding on a worker process: see collect._offload.
            origin = collect.Origin(source.id, source.channel.value, source.location_id)
            prepared = await pool.prepare(
                body, origin, received_at, settings.max_message_bytes, forced, writer.dialect
            )
        if prepared is None:
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                code, message, field = collect.malformed_json(exc)
                raise ValidationError(message, code=code, field=field) from None
            if source is None:
                body_key = payload.get("writeKey") if isinstance(payload, dict) else None
                source = await source_of(body_key if isinstance(body_key, str) else None)
            origin = collect.Origin(source.id, source.channel.value, source.location_id)
            prepared = collect.prepare_payload(
                payload, origin, received_at, settings.max_message_bytes, forced, writer.dialect
            )
        if prepared.error is not None:
            refusal, message, where = prepared.error
            raise ValidationError(message, code=refusal, field=where)

        await writer.write_rows(prepared.rows)

        rejections = prepared.rejections
        if not rejections:
            return json_response({"success": True}, headers=_CORS)
        first = rejections[0]
        n_bad, n_ok = len(rejections), len(prepared.rows)
        resp = error_response(
            400,
            first.code if n_ok == 0 and n_bad == 1 else "invalid_messages",
            (
                f"{n_bad} message(s) rejected, {n_ok} stored; first: {first.message}"
                if forced is None
                else first.message
            ),
            first.field,
            accepted=n_ok,
            rejected=[r.to_dict() for r in rejections],
        )
        resp.headers.update(_CORS)
        return resp

    async def preflight(_request: Request) -> Response:
        return Response(status_code=204, headers=_CORS)

    router.add_api_route("/v1/{kind}", ingest, methods=["POST"], summary="Segment tracking API")
    router.add_api_route("/v1/{kind}", preflight, methods=["OPTIONS"], include_in_schema=False)
    return router
