"""``GET /api/events``: read the event log back, filtered and cursor-paginated."""
# No "from __future__ import annotations" here: FastAPI must see the closures' Depends.

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from trayecto import access, collect
from trayecto.bootstrap import Platform
from trayecto.kernel import ValidationError, parse_timestamp
from trayecto.web.auth import require
from trayecto.web.errors import json_response


def _when(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise ValidationError(str(exc), code="invalid_timestamp", field=field) from None


def build_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["events"])
    admin = Depends(require(platform))

    @router.get("/events", summary="List stored events, newest first")
    async def list_events(
        _token: Annotated[access.ApiToken, admin],
        source: Annotated[str | None, Query(description="source name or id")] = None,
        channel: Annotated[access.Channel | None, Query()] = None,
        type: Annotated[str | None, Query(description="track, identify, page…")] = None,
        event: Annotated[str | None, Query(description="event name")] = None,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        since: Annotated[str | None, Query(description="occurred at or after (ISO-8601)")] = None,
        until: Annotated[str | None, Query(description="occurred before (ISO-8601)")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: str | None = None,
        order: Literal["desc", "asc"] = "desc",
    ) -> Response:
        if type is not None and type not in collect.MESSAGE_TYPES:
            raise ValidationError(
                "type must be one of: " + ", ".join(sorted(collect.MESSAGE_TYPES)),
                code="invalid",
                field="type",
            )
        source_id: UUID | None = None
        if source is not None:
            try:
                source_id = UUID(source)
            except ValueError:
                source_id = access.get_source(platform.engine, source).id
        flt = collect.EventFilter(
            source_id=source_id,
            channel=channel.value if channel else None,
            type=type,
            event=event,
            user_id=user_id,
            anonymous_id=anonymous_id,
            since=_when(since, "since"),
            until=_when(until, "until"),
        )
        page = collect.query_events(
            platform.engine, flt, limit=limit, cursor=cursor, newest_first=order == "desc"
        )
        return json_response(
            {"data": [e.to_dict() for e in page.data], "next_cursor": page.next_cursor}
        )

    return router
