"""The review page: candidate pairs of probabilistic matching that scored between the two
thresholds, with their per-field evidence, for an agent to merge or keep apart.

The same queue, order and decision as ``/api/review`` (``identity.review_queue`` and
``identity.decide_candidate``), for the same roles. A decision is a POST with the session's
CSRF token, answered with a redirect back to the queue that names the pair decided
(``?decided=ID``), so reloading the page never decides twice.
"""
# No "from __future__ import annotations": FastAPI must see the closures' Depends.

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from sqlalchemy.engine import Engine
from starlette.responses import Response

from trayecto import identity
from trayecto.kernel import ConflictError, NotFoundError
from trayecto.web.console import _review_present as present
from trayecto.web.console._i18n import N_
from trayecto.web.console._render import Renderer
from trayecto.web.console._roles import REVIEW_ROLES
from trayecto.web.console._session import Visitor, read_form

__all__ = ["REVIEW_PAGE", "PageTools", "add_review_routes"]

log = logging.getLogger("trayecto.console")

#: Pairs per page.
REVIEW_PAGE = 10

_FORBIDDEN = N_(
    "Your role (%(role)s) does not allow deciding whether two customers are one person. "
    "Ask an administrator if you need it."
)
_GONE = N_(
    "This pair is not in the review queue any more. Go back to the queue and carry on "
    "with the next one."
)
_DECIDED = N_(
    "This pair was already decided (%(status)s), probably by a colleague. It has left "
    "the queue: carry on with the next one."
)
_BAD_DECISION = N_("Choose “Same person” or “Different people” on one of the pairs.")
_BAD_LINK = N_("This link is not valid any more. Start again from the first page of the queue.")


@dataclass(frozen=True)
class PageTools:
    """What every console page uses, from ``_pages.build_router``."""

    engine: Engine
    render: Renderer
    #: the signed-in visitor holding one of the roles; else the login page or a 403 page
    need: Callable[..., Visitor]  # (request, roles, forbidden message, come_back=None)
    error_page: Callable[..., Response]  # (request, visitor, status, message, **context)
    #: a page refusing a POST from another site or without its CSRF token; else None
    refuse_post: Callable[..., Response | None]  # (request, visitor, form, **context)


def _uuid(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


def add_review_routes(router: APIRouter, t: PageTools) -> None:
    render, engine = t.render, t.engine
    back = {"back_href": "/console/review", "back_label": N_("Back to the review queue")}

    def reviewer(request: Request, come_back: str | None = None) -> Visitor:
        return t.need(request, REVIEW_ROLES, _FORBIDDEN, come_back=come_back)

    def flash(v: Visitor, decided: str | None) -> dict[str, Any] | None:
        """The confirmation of the decision just taken, from what the store says now."""
        cid = _uuid(decided)
        if cid is None:
            return None
        try:
            c = identity.get_candidate(engine, cid)
        except NotFoundError:
            return None
        if c.status not in ("accepted", "rejected", "refused"):
            return None
        lb, fmt = render.labels(v.locale), render.formatter(v.locale)
        return {"status": c.status, **present.candidate(c, lb, fmt)}

    def queue_page(
        request: Request,
        v: Visitor,
        cursor: str | None,
        status: int = 200,
        **extra: Any,
    ) -> Response:
        after = _uuid(cursor)
        if cursor and after is None:
            return t.error_page(request, v, 400, render.gettext(v.locale, _BAD_LINK), **back)
        page, nxt = identity.review_queue(engine, "pending", after=after, limit=REVIEW_PAGE)
        lb, fmt = render.labels(v.locale), render.formatter(v.locale)
        return render.page(
            request,
            v,
            "review.html",
            status,
            pairs=[present.candidate(c, lb, fmt) for c in page],
            cursor=cursor if after else "",
            more=f"/console/review?{urlencode({'cursor': str(nxt)})}" if nxt else None,
            **{"flash": None, "problem": None, **extra},
        )

    @router.get("/review")
    def review(request: Request, cursor: str | None = None, decided: str | None = None) -> Response:
        v = reviewer(request)
        return queue_page(request, v, cursor, flash=flash(v, decided))

    @router.post("/review/{candidate_id}")
    def decide(
        request: Request,
        candidate_id: str,
        form: Annotated[dict[str, str], Depends(read_form)],
    ) -> Response:
        # A decision sent after the session ended: sign in, then back to the queue.
        v = reviewer(request, come_back="/console/review")
        refused = t.refuse_post(request, v, form, **back)
        if refused:
            return refused
        assert v.user is not None
        cursor = form.get("cursor") or None
        cid, decision = _uuid(candidate_id), form.get("decision")
        if decision not in ("accept", "reject"):
            return queue_page(
                request, v, cursor, 400, problem=render.gettext(v.locale, _BAD_DECISION)
            )
        if cid is None:
            return t.error_page(request, v, 404, render.gettext(v.locale, _GONE), **back)
        try:
            c = identity.decide_candidate(
                engine, cid, accept=decision == "accept", by=f"console:{v.user.email}"
            )
        except NotFoundError:
            return t.error_page(request, v, 404, render.gettext(v.locale, _GONE), **back)
        except ConflictError:
            done = identity.get_candidate(engine, cid)
            label = present.status_label(render.labels(v.locale), done.status)
            message = render.gettext(v.locale, _DECIDED) % {"status": label}
            return queue_page(request, v, cursor, 409, problem=message)
        log.info("console review: user %s %s candidate %s", v.user.id, c.status, c.id)
        query = {"cursor": cursor or "", "decided": str(c.id)}
        target = "/console/review?" + urlencode({k: x for k, x in query.items() if x})
        return render.redirect(request, v, target)
