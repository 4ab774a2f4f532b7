"""Jinja2 templates shipped in the package, one environment per language (gettext through
Jinja's i18n extension), and the headers every console page carries."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from trayecto.kernel import ValidationError
from trayecto.settings import Settings
from trayecto.web.console._i18n import LOCALES, Formatter, load_translations
from trayecto.web.console._present import Labels
from trayecto.web.console._roles import CUSTOMER_ROLES, ORDER_ROLES, REVIEW_ROLES, STOCK_ROLES
from trayecto.web.console._session import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Visitor,
    clear_cookie,
    set_cookie,
)

__all__ = ["SECURITY_HEADERS", "Renderer"]

#: No scripts at all, styles and images from this server only, never inside a frame.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # Customer data on a shared shop tablet: never keep pages in the browser's cache.
    "Cache-Control": "no-store",
}


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"TRAYECTO_TIMEZONE={name!r} is not an IANA time zone (e.g. Europe/Madrid)",
            code="invalid_timezone",
            field="timezone",
        ) from None


class Renderer:
    def __init__(self, settings: Settings) -> None:
        self.translations = load_translations()
        self.tz = _zone(settings.timezone)
        loader = PackageLoader("trayecto.web", "templates")
        self.envs: dict[str, Environment] = {}
        for locale in LOCALES:
            env = Environment(
                loader=loader,
                autoescape=select_autoescape(["html"]),
                extensions=["jinja2.ext.i18n"],
                undefined=StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
            )
            env.policies["ext.i18n.trimmed"] = True
            env.install_gettext_translations(  # type: ignore[attr-defined]
                self.translations[locale], newstyle=True
            )
            env.globals.update(fmt=Formatter(locale, self.tz), locale=locale, locales=LOCALES)
            self.envs[locale] = env

    def gettext(self, locale: str, message: str) -> str:
        return self.translations[locale].gettext(message)

    def labels(self, locale: str) -> Labels:
        return Labels(self.translations[locale].gettext)

    def formatter(self, locale: str) -> Formatter:
        return Formatter(locale, self.tz)

    def page(
        self,
        request: Request,
        visitor: Visitor,
        template: str,
        status: int = 200,
        **context: Any,
    ) -> Response:
        env = self.envs[visitor.locale]
        labels = self.labels(visitor.locale)
        role = visitor.user.role if visitor.user else None
        html = env.get_template(template).render(
            visitor=visitor,
            user=visitor.user,
            role_label=labels.role(visitor.user.role.value) if visitor.user else None,
            path=request.url.path,
            # The navigation links only to pages the role may open.
            may_search=role in CUSTOMER_ROLES,
            may_review=role in REVIEW_ROLES,
            may_orders=role in ORDER_ROLES,
            may_stock=role in STOCK_ROLES,
            here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            **context,
        )
        return self.finish(request, visitor, HTMLResponse(html, status_code=status))

    def redirect(self, request: Request, visitor: Visitor, url: str) -> Response:
        return self.finish(request, visitor, RedirectResponse(url, status_code=303))

    @staticmethod
    def finish(request: Request, visitor: Visitor, response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        if visitor.mint_csrf_cookie:
            set_cookie(request, response, CSRF_COOKIE, visitor.csrf, None)
        if visitor.drop_session_cookie and visitor.session is None:
            clear_cookie(request, response, SESSION_COOKIE)
        return response
