"""The console's pages: sign in and out, language, customer search, the customer 360 (and,
from ``_review_pages``, the review queue of probable duplicates; from ``_order_pages``,
orders, an order with its sourcing explanation, and stock by location).

Every route starts by asking who is there (``need`` checks the session and the role);
nothing a person typed, nor any customer data, is logged.
"""
# No "from __future__ import annotations": FastAPI must see the closures' Depends.

import logging
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from trayecto import access, identity
from trayecto.bootstrap import Platform
from trayecto.kernel import AuthenticationError, TrayectoError
from trayecto.web import customers_api
from trayecto.web.console import _present as present
from trayecto.web.console._i18n import DEFAULT_LOCALE, LOCALES, N_
from trayecto.web.console._order_pages import add_order_routes, orders_panel
from trayecto.web.console._render import Renderer
from trayecto.web.console._review_pages import PageTools, add_review_routes
from trayecto.web.console._roles import CUSTOMER_ROLES
from trayecto.web.console._session import (
    LANG_COOKIE,
    SESSION_COOKIE,
    LoginThrottle,
    Visitor,
    clear_cookie,
    csrf_ok,
    read_form,
    resolve,
    safe_next,
    same_origin,
    set_cookie,
)

__all__ = ["CUSTOMER_ROLES", "ConsoleExit", "build_router"]

log = logging.getLogger("trayecto.console")

TIMELINE_PAGE = 20

_BAD_LOGIN = N_("Wrong email or password.")
_DISABLED = N_("This account is disabled. Ask an administrator.")
_EXPIRED_FORM = N_("This form had expired. Please try again.")
_TOO_MANY = N_("Too many failed attempts. Try again in %(minutes)d minutes.")
_NOT_FOUND = N_("This customer does not exist, or was erased.")
_BAD_LINK = N_("This link is not valid any more. Start again from the newest items.")
_FORBIDDEN = N_(
    "Your role (%(role)s) does not give access to customer profiles. "
    "Ask an administrator if you need it."
)
_OTHER_SITE = N_("This form was sent from another site and was ignored.")


class ConsoleExit(Exception):
    """Stop handling a console request and answer with ``response`` (a redirect to the
    login page, or a page that says access is denied)."""

    def __init__(self, response: Response) -> None:
        super().__init__("console exit")
        self.response = response


Form = Annotated[dict[str, str], Depends(read_form)]


def build_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix="/console", include_in_schema=False)
    render = Renderer(platform.settings)
    throttle = LoginThrottle()
    engine = platform.engine
    region = platform.settings.default_region
    lifetime = timedelta(hours=platform.settings.session_hours)
    providers = [customers_api.events_provider(platform), customers_api.orders_provider(platform)]

    def who(request: Request) -> Visitor:
        return resolve(request, engine, DEFAULT_LOCALE)

    def need(
        request: Request,
        roles: frozenset[access.Role] = CUSTOMER_ROLES,
        forbidden: str = _FORBIDDEN,
        come_back: str | None = None,
    ) -> Visitor:
        """The signed-in visitor holding one of ``roles``; else the login page (which
        leads back to ``come_back``, by default this page) or a 403 that says
        (``forbidden``) what the role does not give and whom to ask."""
        v = who(request)
        if v.session is None:
            here = come_back or (
                request.url.path + (f"?{request.url.query}" if request.url.query else "")
            )
            target = "/console/login" + (
                f"?next={quote(here, safe='')}" if here != "/console" else ""
            )
            raise ConsoleExit(render.redirect(request, v, target))
        if v.session.user.role not in roles:
            message = render.gettext(v.locale, forbidden) % {
                "role": render.labels(v.locale).role(v.session.user.role.value)
            }
            raise ConsoleExit(error_page(request, v, 403, message))
        return v

    def error_page(
        request: Request, v: Visitor, status: int, message: str, **context: Any
    ) -> Response:
        return render.page(
            request, v, "error.html", status, code=status, message=message, **context
        )

    def refuse_post(
        request: Request, v: Visitor, form: dict[str, str], **context: Any
    ) -> Response | None:
        if not same_origin(request):
            return error_page(request, v, 403, render.gettext(v.locale, _OTHER_SITE), **context)
        if not csrf_ok(v, form):
            return error_page(request, v, 400, render.gettext(v.locale, _EXPIRED_FORM), **context)
        return None

    tools = PageTools(engine, render, need, error_page, refuse_post)

    def source_names() -> dict[str, str]:
        return {str(s.id): s.name for s in access.list_sources(engine)}

    # --- signing in and out ---------------------------------------------------------------

    def login_form(
        request: Request, v: Visitor, status: int = 200, error: str | None = None, **kw: Any
    ) -> Response:
        return render.page(
            request,
            v,
            "login.html",
            status,
            error=error,
            email=kw.get("email", ""),
            next=safe_next(request.query_params.get("next") or kw.get("next")),
            signed_out=request.query_params.get("bye") == "1",
        )

    @router.get("/login")
    def login_page(request: Request) -> Response:
        v = who(request)
        if v.session is not None:
            return render.redirect(request, v, safe_next(request.query_params.get("next")))
        return login_form(request, v)

    @router.post("/login")
    def login(request: Request, form: Form) -> Response:
        v = who(request)
        email = form.get("email", "").strip()[:320]
        nxt = safe_next(form.get("next"))
        if not same_origin(request):
            return error_page(request, v, 403, render.gettext(v.locale, _OTHER_SITE))
        if not csrf_ok(v, form):
            msg = render.gettext(v.locale, _EXPIRED_FORM)
            return login_form(request, v, 400, msg, email=email, next=nxt)
        wait = throttle.retry_after(email)
        if wait:
            msg = render.gettext(v.locale, _TOO_MANY) % {"minutes": max(1, (wait + 59) // 60)}
            return login_form(request, v, 429, msg, email=email, next=nxt)
        try:
            user = access.authenticate_user(engine, email, form.get("password", ""))
        except AuthenticationError as exc:
            throttle.failed(email)
            log.info("console sign-in refused (%s)", exc.code)
            msg = _DISABLED if exc.code == "user_disabled" else _BAD_LOGIN
            return login_form(request, v, 401, render.gettext(v.locale, msg), email=email, next=nxt)
        throttle.succeeded(email)
        access.end_session(engine, request.cookies.get(SESSION_COOKIE))
        issued = access.start_session(engine, user, lifetime)
        log.info("console sign-in: user %s (%s)", user.id, user.role.value)
        response = render.redirect(request, v, nxt)
        set_cookie(request, response, SESSION_COOKIE, issued.secret, int(lifetime.total_seconds()))
        return response

    @router.post("/logout")
    def logout(request: Request, form: Form) -> Response:
        v = who(request)
        if v.session is None:
            response = render.redirect(request, v, "/console/login")
            clear_cookie(request, response, SESSION_COOKIE)
            return response
        refused = refuse_post(request, v, form)
        if refused:
            return refused
        access.end_session(engine, v.token)
        log.info("console sign-out: user %s", v.session.user.id)
        response = render.redirect(request, v, "/console/login?bye=1")
        clear_cookie(request, response, SESSION_COOKIE)
        # The login page stays in the language the person was using.
        set_cookie(request, response, LANG_COOKIE, v.locale, 365 * 86400)
        return response

    @router.post("/language")
    def language(request: Request, form: Form) -> Response:
        v = who(request)
        refused = refuse_post(request, v, form)
        if refused:
            return refused
        lang = form.get("lang", "")
        if lang not in LOCALES:
            lang = v.locale
        if v.session is not None:
            access.set_user_locale(engine, v.session.user.id, lang)
        response = render.redirect(request, v, safe_next(form.get("next")))
        set_cookie(request, response, LANG_COOKIE, lang, 365 * 86400)
        return response

    # --- customers ------------------------------------------------------------------------

    @router.get("")
    def search(request: Request, q: str | None = None) -> Response:
        v = need(request)
        lb, fmt = render.labels(v.locale), render.formatter(v.locale)
        query = (q or "").strip()[:200]
        results = None
        if query:
            found = identity.search_customers(engine, query, region, limit=25)
            results = present.summaries(found, lb, fmt)
        return render.page(request, v, "search.html", q=query, results=results)

    @router.get("/customers/{customer_id}")
    def customer(
        request: Request,
        customer_id: str,
        channel: str | None = None,
        cursor: str | None = None,
    ) -> Response:
        v = need(request)
        lb, fmt = render.labels(v.locale), render.formatter(v.locale)
        try:
            cid = UUID(customer_id)
            view = identity.get_customer(engine, cid)
        except (ValueError, TrayectoError):
            return error_page(request, v, 404, render.gettext(v.locale, _NOT_FOUND))
        if view.id != cid:  # merged into another customer: show that one
            query = f"?{request.url.query}" if request.url.query else ""
            return render.redirect(request, v, f"/console/customers/{view.id}{query}")
        channels = [c.value for c in access.Channel]
        if channel not in channels:
            channel = None
        try:
            items, next_cursor = timeline_page(view, channel, cursor)
        except TrayectoError:
            return error_page(request, v, 400, render.gettext(v.locale, _BAD_LINK))
        names = source_names()
        consent_data = identity.get_consents(engine, view.id)
        base = f"/console/customers/{view.id}"

        def link(**params: str | None) -> str:
            query = urlencode({k: x for k, x in params.items() if x})
            return base + (f"?{query}" if query else "")

        all_label = render.gettext(v.locale, N_("All channels"))
        filters = [{"key": None, "label": all_label, "href": link() + "#timeline"}] + [
            {"key": ch, "label": lb.channel(ch), "href": link(channel=ch) + "#timeline"}
            for ch in present.CHANNEL_ORDER
            if ch in view.channels or ch == channel
        ]
        more = link(channel=channel, cursor=next_cursor) + "#timeline" if next_cursor else None
        return render.page(
            request,
            v,
            "customer.html",
            view=view,
            orders=orders_panel(tools, v, view),
            name=view.display_name,
            golden=present.golden_rows(view, names, lb, fmt),
            identities=present.identity_groups(view, names, lb, fmt),
            channels=present.channel_rows(view, lb, fmt),
            consents=present.consents(consent_data.get("current"), names, lb, fmt),
            consent_history=present.consents(consent_data.get("history"), names, lb, fmt),
            merges=present.merges(view, lb, fmt),
            refusals=present.refusals(view, lb, fmt),
            timeline=present.timeline(items, names, lb, fmt),
            filters=filters,
            channel=channel,
            paged=cursor is not None,
            first_page=link(channel=channel),
            more=more,
            first_seen=fmt.when(view.first_seen_at),
            last_seen=fmt.when(view.last_seen_at),
            last_seen_ago=fmt.ago(view.last_seen_at) if view.last_seen_at else None,
        )

    def timeline_page(
        view: identity.CustomerView, channel: str | None, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the API's timeline (same providers, same cursor), newest first."""
        return customers_api.timeline_page(
            providers, view, channel=channel, cursor=cursor, limit=TIMELINE_PAGE
        )

    add_review_routes(router, tools)
    add_order_routes(router, tools)
    return router
