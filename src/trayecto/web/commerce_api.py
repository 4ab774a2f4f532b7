"""Commerce API: orders (intake, status, lookup, fulfilment steps), delivery quotes,
inventory by location, cart holds, locations, products and channel sourcing policies."""
# No "from __future__ import annotations" here: FastAPI must see the closures' Depends.

import asyncio
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from trayecto import access, commerce
from trayecto.bootstrap import Platform
from trayecto.kernel import ValidationError, utcnow
from trayecto.web.auth import require
from trayecto.web.errors import json_response
from trayecto.web.intake import OrderIntake, parse_json

#: Who may read orders, stock, locations and products (admins always).
READ_ROLES = (access.Role.AGENT, access.Role.STORE_STAFF)
#: Who may move fulfilment groups on, reject them and cancel orders (admins always).
ACT_ROLES = (access.Role.STORE_STAFF,)


async def _json(request: Request) -> Any:
    return parse_json(await request.body())


async def _optional_json(request: Request) -> dict[str, Any]:
    """A JSON object body, or {} when there is none."""
    if not await request.body():
        return {}
    body = await _json(request)
    if not isinstance(body, dict):
        raise ValidationError("body must be an object", code="invalid_type", field="body")
    return body


def _uuid(value: str, field: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise ValidationError(f"{field} must be a UUID", field=field) from None


def build_router(platform: Platform, intake: OrderIntake) -> APIRouter:
    """The commerce routes; ``POST /api/orders`` answers with ``intake`` (which the fast
    path of ``create_app`` also answers with, ahead of routing: see ``web.intake``)."""
    router = APIRouter(prefix="/api", tags=["commerce"])
    admin = Depends(require(platform))
    staff = Depends(require(platform, *ACT_ROLES))
    readers = Depends(require(platform, *READ_ROLES))
    engine = platform.engine
    region = platform.settings.default_region

    @router.post(
        "/orders",
        status_code=201,
        summary="Take an order from any channel (admin token)",
        responses={200: {"description": "The order already stored under (channel, external_id)"}},
    )
    async def create_order(request: Request) -> Response:
        status, body, extra = await intake.answer(
            request.headers.get("authorization", ""), await request.body()
        )
        return Response(
            body, status, headers={k.decode(): v.decode() for k, v in extra},
            media_type="application/json",
        )  # fmt: skip

    @router.post("/orders/quote", summary="Sourcing and delivery promise, before placing")
    async def quote_order(request: Request, _t: Annotated[access.ApiToken, readers]) -> Response:
        body = await _json(request)
        if isinstance(body, dict):
            body.setdefault("external_id", "quote")
        req = commerce.check_order(body, region=region)
        return json_response(await run_in_threadpool(commerce.quote, engine, req))

    @router.get("/orders", summary="Order-status lookup (by e-mail, phone, external id)")
    async def lookup_orders(
        _t: Annotated[access.ApiToken, readers],
        email: str | None = None,
        phone: str | None = None,
        external_id: str | None = None,
        channel: str | None = None,
        customer_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> Response:
        found = await run_in_threadpool(
            lambda: commerce.find_orders(
                engine,
                channel=channel,
                external_id=external_id,
                email=commerce.normalise_email(email) if email else None,
                phone=commerce.normalise_phone(phone, region) if phone else None,
                customer_id=_uuid(customer_id, "customer_id") if customer_id else None,
                limit=limit,
            )
        )
        return json_response({"data": found})

    @router.get("/orders/{order_id}", summary="An order: states, history, sourcing explanation")
    async def read_order(order_id: str, _t: Annotated[access.ApiToken, readers]) -> Response:
        oid = _uuid(order_id, "id")
        return json_response(await run_in_threadpool(commerce.get_order, engine, oid))

    @router.post(
        "/orders/{order_id}/groups/{group_id}/status", summary="Move a fulfilment group on"
    )
    async def move_group(
        order_id: str, group_id: str, request: Request, _t: Annotated[access.ApiToken, staff]
    ) -> Response:
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            raise ValidationError('body must be {"status": ...}', field="status")
        note = body.get("note") if isinstance(body.get("note"), str) else None
        view = await run_in_threadpool(
            lambda: commerce.advance_group(
                engine,
                _uuid(order_id, "id"),
                _uuid(group_id, "group_id"),
                body["status"],
                note=note,
            )
        )
        return json_response(view)

    @router.post(
        "/orders/{order_id}/groups/{group_id}/reject",
        summary="A location rejects a group or is short at picking: source it again",
    )
    async def reject(
        order_id: str, group_id: str, request: Request, _t: Annotated[access.ApiToken, staff]
    ) -> Response:
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("reason"), str):
            raise ValidationError('body must be {"reason": ..., "short"?: [...]}', field="reason")
        short: dict[str, int] = {}
        raw = body.get("short") or []
        if not isinstance(raw, list):
            raise ValidationError("short must be a list", code="invalid_type", field="short")
        for i, item in enumerate(raw):
            sku = item.get("sku") if isinstance(item, dict) else None
            missing = item.get("missing") if isinstance(item, dict) else None
            if (
                not isinstance(sku, str)
                or not isinstance(missing, int)
                or isinstance(missing, bool)
                or missing < 1
            ):
                raise ValidationError(
                    'each shortage is {"sku": ..., "missing": units}', field=f"short.{i}"
                )
            short[sku] = short.get(sku, 0) + missing
        oid, gid = _uuid(order_id, "id"), _uuid(group_id, "group_id")
        view = await run_in_threadpool(
            lambda: commerce.reject_group(engine, oid, gid, reason=body["reason"], short=short)
        )
        return json_response(view)

    @router.post(
        "/orders/{order_id}/groups/{group_id}/resource",
        summary="Source a rejected group again (after an interruption)",
    )
    async def resource(
        order_id: str, group_id: str, _t: Annotated[access.ApiToken, staff]
    ) -> Response:
        oid, gid = _uuid(order_id, "id"), _uuid(group_id, "group_id")
        return json_response(await run_in_threadpool(commerce.resource_group, engine, oid, gid))

    @router.post("/orders/{order_id}/cancel", summary="Cancel what can still be cancelled")
    async def cancel(order_id: str, _t: Annotated[access.ApiToken, staff]) -> Response:
        oid = _uuid(order_id, "id")
        return json_response(await run_in_threadpool(commerce.cancel_order, engine, oid))

    @router.post(
        "/orders/{order_id}/returns", status_code=201, summary="Open a return (RMA), or exchange"
    )
    async def open_return(
        order_id: str, request: Request, _t: Annotated[access.ApiToken, readers]
    ) -> Response:
        req = commerce.check_return(await _json(request))
        oid = _uuid(order_id, "id")
        view = await run_in_threadpool(commerce.request_return, engine, oid, req)
        return json_response(view, 201)

    @router.get("/orders/{order_id}/returns", summary="The returns of an order")
    async def order_returns(order_id: str, _t: Annotated[access.ApiToken, readers]) -> Response:
        oid = _uuid(order_id, "id")
        return json_response({"data": await run_in_threadpool(commerce.list_returns, engine, oid)})

    @router.get("/returns/{return_id}", summary="A return: lines, decisions, refunds")
    async def read_return(return_id: str, _t: Annotated[access.ApiToken, readers]) -> Response:
        rid = _uuid(return_id, "return_id")
        return json_response(await run_in_threadpool(commerce.get_return, engine, rid))

    @router.post("/returns/{return_id}/receive", summary="The returned goods arrived")
    async def receive(
        return_id: str, request: Request, _t: Annotated[access.ApiToken, staff]
    ) -> Response:
        body = await _optional_json(request)
        where = body.get("location_id")
        if where is not None and not isinstance(where, str):
            raise ValidationError("location_id must be a string", field="location_id")
        rid = _uuid(return_id, "return_id")
        view = await run_in_threadpool(
            lambda: commerce.receive_return(engine, rid, location_id=where)
        )
        return json_response(view)

    @router.post("/returns/{return_id}/inspect", summary="Condition and restock decision")
    async def inspect(
        return_id: str, request: Request, _t: Annotated[access.ApiToken, staff]
    ) -> Response:
        lines = commerce.check_inspection(await _json(request))
        rid = _uuid(return_id, "return_id")
        return json_response(await run_in_threadpool(commerce.inspect_return, engine, rid, lines))

    @router.post("/returns/{return_id}/refund", summary="Record the refund")
    async def refund(
        return_id: str, request: Request, _t: Annotated[access.ApiToken, staff]
    ) -> Response:
        body = await _optional_json(request)
        method, reference = body.get("method"), body.get("reference")
        for name, value in (("method", method), ("reference", reference)):
            if value is not None and not isinstance(value, str):
                raise ValidationError(f"{name} must be a string", field=name)
        rid = _uuid(return_id, "return_id")
        view = await run_in_threadpool(
            lambda: commerce.refund_return(engine, rid, method=method, reference=reference)
        )
        return json_response(view)

    @router.post("/returns/{return_id}/cancel", summary="Withdraw a return not yet received")
    async def cancel_rma(return_id: str, _t: Annotated[access.ApiToken, readers]) -> Response:
        rid = _uuid(return_id, "return_id")
        return json_response(await run_in_threadpool(commerce.cancel_return, engine, rid))

    @router.get("/inventory", summary="Stock of a SKU per location")
    async def inventory(
        _t: Annotated[access.ApiToken, readers],
        sku: Annotated[str, Query(min_length=1, max_length=100)],
    ) -> Response:
        levels = await run_in_threadpool(commerce.stock_levels, engine, [sku])
        if not levels:
            await run_in_threadpool(commerce.get_product, engine, sku)  # 404 if unknown
        return json_response(
            {
                "sku": sku,
                "locations": [lv.to_dict() for lv in levels],
                "on_hand": sum(lv.on_hand for lv in levels),
                "reserved": sum(lv.reserved for lv in levels),
                "available": sum(lv.available for lv in levels),
            }
        )

    @router.post(
        "/inventory/receipts", status_code=201, summary="Goods arrived at a location: on hand rises"
    )
    async def receive_goods(request: Request, _t: Annotated[access.ApiToken, staff]) -> Response:
        body = await _json(request)
        if not isinstance(body, dict):
            raise ValidationError("body must be an object", code="invalid_type", field="body")
        for name in ("location_id", "sku"):
            if not isinstance(body.get(name), str) or not body[name].strip():
                raise ValidationError(f"{name} is required", code="missing_field", field=name)
        quantity = body.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            raise ValidationError("quantity must be a whole number", field="quantity")
        reference = body.get("reference")
        if reference is not None and (not isinstance(reference, str) or len(reference) > 200):
            raise ValidationError(
                "reference must be text of at most 200 characters", field="reference"
            )
        level = await run_in_threadpool(
            lambda: commerce.receive_stock(
                engine,
                body["location_id"].strip(),
                body["sku"].strip(),
                quantity,
                reference=reference,
            )
        )
        return json_response(level.to_dict(), 201)

    @router.post("/reservations", status_code=201, summary="Hold units for a cart or payment")
    async def hold(request: Request, _t: Annotated[access.ApiToken, admin]) -> Response:
        from datetime import timedelta

        body = await _json(request)
        if not isinstance(body, dict):
            raise ValidationError("body must be an object", field="body")
        ttl = body.get("ttl_seconds", 900)
        qty = body.get("quantity")
        if not isinstance(ttl, int) or not 1 <= ttl <= 7 * 86400:
            raise ValidationError("ttl_seconds must be 1 to 604800", field="ttl_seconds")
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
            raise ValidationError("quantity must be a positive whole number", field="quantity")
        res = await run_in_threadpool(
            lambda: commerce.hold_for(
                engine,
                str(body.get("location_id") or ""),
                str(body.get("sku") or ""),
                qty,
                kind=str(body.get("kind") or "cart"),
                expires_at=utcnow() + timedelta(seconds=ttl),
                channel=body.get("channel") if isinstance(body.get("channel"), str) else None,
            )
        )
        return json_response(
            {
                "id": str(res.id),
                "sku": res.sku,
                "location_id": res.location_id,
                "quantity": res.quantity,
                "kind": res.kind,
                "expires_at": res.expires_at.isoformat() if res.expires_at else None,
            },
            201,
        )

    @router.delete("/reservations/{reservation_id}", summary="Release a hold now")
    async def unhold(reservation_id: str, _t: Annotated[access.ApiToken, admin]) -> Response:
        rid = _uuid(reservation_id, "id")
        freed = await run_in_threadpool(commerce.cancel_hold, engine, rid)
        return json_response({"released": freed})

    @router.get("/locations", summary="Locations with type, capabilities, hours")
    async def locations(_t: Annotated[access.ApiToken, readers]) -> Response:
        locs = await run_in_threadpool(commerce.list_locations, engine)
        return json_response({"data": [loc.to_dict() for loc in locs]})

    @router.get("/products/{sku}", summary="A product")
    async def product(sku: str, _t: Annotated[access.ApiToken, readers]) -> Response:
        return json_response((await run_in_threadpool(commerce.get_product, engine, sku)).to_dict())

    @router.put("/listings/{channel}/{sku}", summary="Set a channel's listing of a product")
    async def put_listing(
        channel: str, sku: str, request: Request, _t: Annotated[access.ApiToken, admin]
    ) -> Response:
        body = await _json(request)
        if not isinstance(body, dict):
            raise ValidationError("body must be an object", code="invalid_type", field="body")
        listing = commerce.check_listing({**body, "channel": channel, "sku": sku})
        return json_response(await run_in_threadpool(commerce.put_listing, engine, listing))

    @router.get("/listings", summary="Listings per channel, with availability and issues")
    async def get_listings(
        _t: Annotated[access.ApiToken, readers],
        channel: str | None = None,
        sku: str | None = None,
    ) -> Response:
        found = await run_in_threadpool(
            lambda: commerce.list_listings(engine, channel=channel, sku=sku)
        )
        return json_response({"data": found})

    @router.get("/listings/issues", summary="Inconsistent listings: price, content, stock")
    async def get_issues(
        _t: Annotated[access.ApiToken, readers], channel: str | None = None
    ) -> Response:
        found = await run_in_threadpool(lambda: commerce.listing_issues(engine, channel=channel))
        return json_response({"data": found})

    @router.get("/channels/{channel}/feed", summary="The channel's export feed (JSON or CSV)")
    async def feed(
        channel: str,
        _t: Annotated[access.ApiToken, readers],
        format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
        include_inactive: bool = False,
    ) -> Response:
        out = await run_in_threadpool(
            lambda: commerce.export_feed(
                engine, channel, fmt=format, include_inactive=include_inactive
            )
        )
        if isinstance(out, str):
            return Response(
                out,
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{channel}-feed.csv"'},
            )
        return json_response({"channel": channel, "data": out})

    @router.put("/channels/{channel}/listing-rules", summary="Set a channel's listing rules")
    async def put_rules(
        channel: str, request: Request, _t: Annotated[access.ApiToken, admin]
    ) -> Response:
        body = await _json(request)
        if not isinstance(body, dict):
            raise ValidationError("body must be an object of rules", field="body")
        rules = await run_in_threadpool(commerce.set_listing_rules, engine, channel, body)
        return json_response({"channel": channel, "rules": rules.to_dict()})

    def _order_channel(channel: str) -> None:
        if channel not in commerce.ORDER_CHANNELS:
            raise ValidationError(
                f"channel must be one of: {', '.join(commerce.ORDER_CHANNELS)}", field="channel"
            )

    @router.get("/channels/{channel}/policy", summary="A channel's sourcing rules")
    async def get_policy(channel: str, _t: Annotated[access.ApiToken, admin]) -> Response:
        """The rules in force (``policy``, defaults filled in) and what was set for the
        channel (``settings``; null: it follows the defaults)."""
        _order_channel(channel)
        config = await run_in_threadpool(commerce.policy_config, engine, channel)
        return json_response(
            {
                "channel": channel,
                "policy": commerce.Policy.from_config(config).to_dict(),
                "settings": config,
            }
        )

    @router.put("/channels/{channel}/policy", summary="Set a channel's sourcing rules")
    async def policy(
        channel: str, request: Request, _t: Annotated[access.ApiToken, admin]
    ) -> Response:
        _order_channel(channel)
        body = await _json(request)
        if not isinstance(body, dict):
            raise ValidationError("body must be an object of policy settings", field="body")
        pol = await run_in_threadpool(commerce.set_policy, engine, channel, body)
        return json_response({"channel": channel, "policy": pol.to_dict()})

    return router


async def sweep_expired_holds(platform: Platform, interval: float = 5.0) -> None:
    """Release expired cart and payment holds every ``interval`` seconds, for as long as
    the server runs (started by the app's lifespan)."""
    import logging

    log = logging.getLogger("trayecto.commerce")
    while True:
        await asyncio.sleep(interval)
        try:
            freed = await run_in_threadpool(commerce.release_expired, platform.engine)
        except Exception:  # a failed sweep is retried on the next tick
            log.exception("releasing expired holds failed")
            continue
        if freed:
            log.info("released %d unit(s) of expired holds", freed)
