"""The customer 360 API: search, profile, timeline, merges."""
# No "from __future__ import annotations" here: FastAPI must see the closures' Depends.

import base64
import binascii
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from trayecto import access, collect, commerce, identity
from trayecto.bootstrap import Platform
from trayecto.kernel import ValidationError, parse_timestamp
from trayecto.web.auth import require
from trayecto.web.errors import json_response

#: Who may look a customer up: the people who serve them.
SERVICE_ROLES = (access.Role.AGENT, access.Role.STORE_STAFF)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _when(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise ValidationError(str(exc), code="invalid_timestamp", field=field) from None


def _encode(at: datetime, item_id: UUID) -> str:
    raw = orjson.dumps([at.isoformat(), str(item_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, UUID]:
    try:
        at, item = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return parse_timestamp(at), UUID(item)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise ValidationError(
            "cursor is not one this API gave out; start again without it",
            code="invalid_cursor",
            field="cursor",
        ) from None


TimelineProvider = Callable[..., list[dict[str, Any]]]


def events_provider(platform: Platform) -> TimelineProvider:
    """Timeline items from the event log, through identity's attribution."""

    def provide(
        view: identity.CustomerView,
        *,
        channel: str | None,
        type_: str | None,
        since: datetime | None,
        until: datetime | None,
        before: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        refs = identity.event_refs(
            platform.engine,
            view.id,
            channel=channel,
            type_=type_,
            since=since,
            until=until,
            before=before,
            limit=limit,
        )
        bodies = collect.events_by_id(platform.engine, [r.event_id for r in refs])
        out = []
        for r in refs:
            e = bodies.get(r.event_id)
            if e is None:
                continue
            out.append(
                {
                    "kind": "event",
                    "id": str(e.id),
                    "occurred_at": e.occurred_at,
                    "channel": e.channel,
                    "type": e.type,
                    "title": e.event or e.type,
                    "location_id": e.location_id,
                    "source_id": str(e.source_id),
                    "properties": e.properties,
                    "traits": e.traits,
                }
            )
        return out

    return provide


def orders_provider(platform: Platform) -> TimelineProvider:
    """Timeline items from order management: every state change of the customer's orders,
    found by the customer's identifiers (orders from any channel carry them)."""

    def provide(
        view: identity.CustomerView,
        *,
        channel: str | None,
        type_: str | None,
        since: datetime | None,
        until: datetime | None,
        before: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        if type_ not in (None, "order"):
            return []
        by_type: dict[str, list[str]] = {}
        for i in view.identities:
            by_type.setdefault(i["type"], []).append(i["value"])
        entries = commerce.order_history(
            platform.engine,
            customer_id=view.id,
            emails=by_type.get("email", []),
            phones=by_type.get("phone", []),
            customer_numbers=by_type.get("customer_number", []),
            loyalty_cards=by_type.get("loyalty_card", []),
        )
        out = []
        for e in entries:
            if channel and e.channel != channel:
                continue
            if (since and e.occurred_at < since) or (until and e.occurred_at >= until):
                continue
            if before and (e.occurred_at, e.id) >= before:
                continue
            out.append(
                {
                    "kind": "order",
                    "id": str(e.id),
                    "occurred_at": e.occurred_at,
                    "channel": e.channel,
                    "type": "order",
                    "title": f"Order {e.external_id}: {e.kind}"
                    + (f" → {e.to_status}" if e.to_status else ""),
                    "order_id": str(e.order_id),
                    "external_id": e.external_id,
                    "order_kind": e.kind,
                    "status": e.to_status,
                    "total": str(e.total),
                    "currency": e.currency,
                    "detail": e.detail,
                }
            )
        out.sort(key=lambda i: (i["occurred_at"], i["id"]), reverse=True)
        return out[:limit]

    return provide


def timeline_page(
    providers: list[TimelineProvider],
    view: identity.CustomerView,
    *,
    channel: str | None = None,
    type_: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the customer's timeline across every provider, newest first, with the
    cursor of the next page (None at the end). Items keep ``occurred_at`` as datetimes."""
    before = _decode(cursor) if cursor else None
    items: list[dict[str, Any]] = []
    for provide in providers:
        items += provide(
            view,
            channel=channel,
            type_=type_,
            since=since,
            until=until,
            before=before,
            limit=limit + 1,
        )
    items.sort(key=lambda i: (i["occurred_at"], i["id"]), reverse=True)
    page = items[:limit]
    nxt = _encode(page[-1]["occurred_at"], UUID(page[-1]["id"])) if len(items) > limit else None
    return page, nxt


class UnmergeBody(BaseModel):
    reason: str = Field(min_length=3, max_length=500)


class ConsentBody(BaseModel):
    purpose: Literal["marketing", "analytics", "personalisation"]
    channel: Literal["email", "sms", "whatsapp", "push", "phone", "all"]
    granted: bool
    note: str | None = Field(default=None, max_length=500)


class EraseBody(BaseModel):
    confirm: Literal[True] = Field(description="Must be true: erasure cannot be undone.")
    reason: str = Field(min_length=3, max_length=500)


def build_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix="/api/customers", tags=["customers"])
    service = Depends(require(platform, *SERVICE_ROLES))
    admin = Depends(require(platform))
    providers: list[TimelineProvider] = [events_provider(platform), orders_provider(platform)]
    region = platform.settings.default_region

    def source_names() -> dict[str, str]:
        return {str(s.id): s.name for s in access.list_sources(platform.engine)}

    @router.get("", summary="Search customers by any identifier or name")
    async def search(
        _t: Annotated[access.ApiToken, service],
        q: Annotated[str, Query(min_length=1, max_length=200)],
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> Response:
        found = identity.search_customers(platform.engine, q, region, limit)
        return json_response(
            {
                "data": [
                    {
                        "id": str(c.id),
                        "display_name": c.display_name,
                        "email": c.email,
                        "phone": c.phone,
                        "city": c.city,
                        "last_seen_at": _iso(c.last_seen_at),
                        "matched_on": c.matched_on,
                    }
                    for c in found
                ],
                "next_cursor": None,
            }
        )

    @router.get("/{customer_id}", summary="The customer 360: golden record, identities, channels")
    async def profile(_t: Annotated[access.ApiToken, service], customer_id: UUID) -> Response:
        view = identity.get_customer(platform.engine, customer_id)
        names = source_names()
        golden = {
            attr: dict(v, source=names.get(v.get("source_id", ""), None))
            for attr, v in view.golden.items()
        }
        identities_by_channel: dict[str, list[dict[str, Any]]] = {}
        for i in view.identities:
            identities_by_channel.setdefault(i["channel"] or "import", []).append(
                dict(i, source=names.get(i["source_id"] or ""))
            )
        return json_response(
            {
                "id": str(view.id),
                "requested_id": str(customer_id),
                "status": view.status,
                "display_name": view.display_name,
                "golden": golden,
                "identities": view.identities,
                "identities_by_channel": identities_by_channel,
                "records": [dict(r, source=names.get(r["source_id"])) for r in view.records],
                "channels": view.channels,
                "counts": view.counts,
                "first_seen_at": _iso(view.first_seen_at),
                "last_seen_at": _iso(view.last_seen_at),
                "merges": [
                    {
                        **{
                            k: v
                            for k, v in asdict(m).items()
                            if k not in ("created_at", "removed_at")
                        },
                        "id": str(m.id),
                        "a_profile_id": str(m.a_profile_id),
                        "b_profile_id": str(m.b_profile_id),
                        "created_at": _iso(m.created_at),
                        "removed_at": _iso(m.removed_at),
                    }
                    for m in view.merges
                ],
                "refused_merges": view.refusals,
                "consents": identity.get_consents(platform.engine, view.id)["current"],
            }
        )

    @router.get("/{customer_id}/timeline", summary="Everything the customer did, newest first")
    async def timeline(
        _t: Annotated[access.ApiToken, service],
        customer_id: UUID,
        channel: access.Channel | None = None,
        type: Annotated[str | None, Query(description="track, identify, page…")] = None,
        since: str | None = None,
        until: str | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: str | None = None,
    ) -> Response:
        view = identity.get_customer(platform.engine, customer_id)
        page, nxt = timeline_page(
            providers,
            view,
            channel=channel.value if channel else None,
            type_=type,
            since=_when(since, "since"),
            until=_when(until, "until"),
            cursor=cursor,
            limit=limit,
        )
        for i in page:
            i["occurred_at"] = i["occurred_at"].isoformat()
        return json_response({"data": page, "next_cursor": nxt})

    @router.get("/{customer_id}/consents", summary="Current consents and their history")
    async def consents(_t: Annotated[access.ApiToken, service], customer_id: UUID) -> Response:
        view = identity.get_customer(platform.engine, customer_id)
        return json_response(identity.get_consents(platform.engine, view.id))

    @router.post("/{customer_id}/consents", summary="Record what the customer consented to")
    async def set_consent(
        token: Annotated[access.ApiToken, service], customer_id: UUID, body: ConsentBody
    ) -> Response:
        view = identity.get_customer(platform.engine, customer_id)
        changed = identity.record_consent(
            platform.engine,
            view.id,
            body.purpose,
            body.channel,
            body.granted,
            origin="api",
            evidence={"by": token.name, "note": body.note},
        )
        return json_response(
            {"changed": changed, **identity.get_consents(platform.engine, view.id)}
        )

    @router.get("/{customer_id}/export", summary="Everything held on the person (admin)")
    async def export(_t: Annotated[access.ApiToken, admin], customer_id: UUID) -> Response:
        return json_response(platform.export_customer(customer_id))

    @router.post("/{customer_id}/erase", summary="Erase the person from every store (admin)")
    async def erase(
        token: Annotated[access.ApiToken, admin], customer_id: UUID, body: EraseBody
    ) -> Response:
        counts = platform.erase_customer(customer_id, requested_by=f"token:{token.name}")
        return json_response({"erased": True, "counts": counts})

    @router.post("/merges/{merge_id}/undo", summary="Undo a merge (admin)")
    async def undo_merge(
        _t: Annotated[access.ApiToken, admin], merge_id: UUID, body: UnmergeBody
    ) -> Response:
        result = identity.unmerge(platform.engine, merge_id, body.reason)
        return json_response({"customers": [str(c) for c in result]})

    return router
