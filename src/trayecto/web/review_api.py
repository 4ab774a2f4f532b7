"""The review queue of probabilistic matching: candidate pairs with per-field evidence, and
the agent's decision on each."""
# No "from __future__ import annotations" here: FastAPI must see the closures' Depends.

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from trayecto import access, identity
from trayecto.bootstrap import Platform
from trayecto.kernel import ValidationError
from trayecto.web.auth import require
from trayecto.web.errors import json_response

#: Who may decide whether two customers are one: admins (always) and agents.
REVIEW_ROLES = (access.Role.AGENT,)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _brief(c: identity.CustomerBrief) -> dict[str, Any]:
    return {
        "id": str(c.id),
        "status": c.status,
        "display_name": c.display_name,
        "email": c.email,
        "phone": c.phone,
        "birth_date": c.birth_date,
        "address": c.address,
        "postcode": c.postcode,
        "city": c.city,
    }


def candidate_json(c: identity.Candidate) -> dict[str, Any]:
    return {
        "id": str(c.id),
        "status": c.status,
        "probability": c.probability,
        "match_weight": c.match_weight,
        "evidence": c.evidence,
        "a": _brief(c.a),
        "b": _brief(c.b),
        "a_profile_id": str(c.a_profile_id),
        "b_profile_id": str(c.b_profile_id),
        "merge_id": str(c.link_id) if c.link_id else None,
        "run_id": str(c.run_id),
        "created_at": _iso(c.created_at),
        "decided_by": c.decided_by,
        "decided_at": _iso(c.decided_at),
    }


def _cursor(value: str | None) -> UUID | None:
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise ValidationError(
            "cursor is not one this API gave out; start again without it",
            code="invalid_cursor",
            field="cursor",
        ) from None


def build_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix="/api/review", tags=["review"])
    reviewer = Depends(require(platform, *REVIEW_ROLES))

    @router.get("", summary="Candidate pairs waiting for review, with per-field evidence")
    async def queue(
        _t: Annotated[access.ApiToken, reviewer],
        status: Annotated[str, Query(description="pending, accepted, rejected…")] = "pending",
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: str | None = None,
    ) -> Response:
        page, nxt = identity.review_queue(
            platform.engine, status, after=_cursor(cursor), limit=limit
        )
        return json_response(
            {"data": [candidate_json(c) for c in page], "next_cursor": str(nxt) if nxt else None}
        )

    @router.get("/{candidate_id}", summary="One candidate pair")
    async def one(_t: Annotated[access.ApiToken, reviewer], candidate_id: UUID) -> Response:
        return json_response(candidate_json(identity.get_candidate(platform.engine, candidate_id)))

    @router.post("/{candidate_id}/accept", summary="They are one person: merge them")
    async def accept(token: Annotated[access.ApiToken, reviewer], candidate_id: UUID) -> Response:
        c = identity.decide_candidate(
            platform.engine, candidate_id, accept=True, by=f"token:{token.name}"
        )
        return json_response(candidate_json(c))

    @router.post("/{candidate_id}/reject", summary="Two people: never propose them again")
    async def reject(token: Annotated[access.ApiToken, reviewer], candidate_id: UUID) -> Response:
        c = identity.decide_candidate(
            platform.engine, candidate_id, accept=False, by=f"token:{token.name}"
        )
        return json_response(candidate_json(c))

    return router
