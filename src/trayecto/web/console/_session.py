"""Who is asking: the session cookie, the CSRF token forms carry, the language, the role
check, and a brake on password guessing.

- The session cookie holds a random token (HttpOnly, SameSite=Lax, Secure over HTTPS);
  the store has only its SHA-256 (``access.start_session``).
- CSRF: every POST form carries a token. Signed in, it is an HMAC of the session token
  (one per session, nothing stored, useless without the HttpOnly cookie); before signing
  in (the login form, the language switch) it is a random value also set in a strict
  cookie (double submit). POSTs whose ``Origin`` is another site are refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from sqlalchemy.engine import Engine
from starlette.responses import Response

from trayecto import access
from trayecto.kernel import AuthenticationError
from trayecto.web.console._i18n import LOCALES, from_accept_language

__all__ = [
    "CSRF_COOKIE",
    "LANG_COOKIE",
    "SESSION_COOKIE",
    "LoginThrottle",
    "Visitor",
    "clear_cookie",
    "csrf_ok",
    "read_form",
    "resolve",
    "safe_next",
    "same_origin",
    "set_cookie",
]

SESSION_COOKIE = "trayecto_session"
CSRF_COOKIE = "trayecto_csrf"
LANG_COOKIE = "trayecto_lang"
_MAX_FORM_BYTES = 16 * 1024


@dataclass
class Visitor:
    """The person behind a request, signed in or not."""

    session: access.UserSession | None
    token: str | None  # the session token from the cookie, when the session is live
    csrf: str  # what a POST form from this visitor must carry
    locale: str
    mint_csrf_cookie: bool = False  # the pre-session CSRF token is new: set its cookie
    drop_session_cookie: bool = False  # the cookie names a dead session: clear it

    @property
    def user(self) -> access.User | None:
        return self.session.user if self.session else None


def session_csrf(token: str) -> str:
    return hmac.new(token.encode(), b"trayecto-console-csrf", hashlib.sha256).hexdigest()


def resolve(request: Request, engine: Engine, default_locale: str) -> Visitor:
    """Who sent ``request``, from its cookies (and ``Accept-Language``)."""
    token = request.cookies.get(SESSION_COOKIE)
    session = None
    drop = False
    if token:
        try:
            session = access.session_user(engine, token)
        except AuthenticationError:
            drop = True
    if session is not None and token:
        return Visitor(session, token, session_csrf(token), session.user.locale, False, drop)
    pre = request.cookies.get(CSRF_COOKIE, "")
    mint = not (20 <= len(pre) <= 100 and pre.replace("-", "").replace("_", "").isalnum())
    if mint:
        pre = secrets.token_urlsafe(32)
    chosen = request.cookies.get(LANG_COOKIE)
    locale = (
        chosen
        if chosen in LOCALES
        else from_accept_language(request.headers.get("accept-language")) or default_locale
    )
    return Visitor(None, None, pre, locale, mint, drop)


def csrf_ok(visitor: Visitor, form: dict[str, str]) -> bool:
    sent = form.get("csrf", "")
    if visitor.mint_csrf_cookie or not sent:
        return False  # a pre-session token must come back in its cookie
    return hmac.compare_digest(sent.encode(), visitor.csrf.encode())


def same_origin(request: Request) -> bool:
    """False when the browser says the POST comes from another site."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    parts = urlsplit(origin)
    return parts.netloc == host


async def read_form(request: Request) -> dict[str, str]:
    """A small URL-encoded form (the console's only kind), first value per field."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            return {}
    try:
        parsed = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[0] for k, v in parsed.items() if v}


def safe_next(value: str | None, default: str = "/console") -> str:
    """A local console address to go back to; anything else (another host, ``//x``,
    a scheme) becomes ``default``, so a link cannot bounce a signed-in user elsewhere."""
    if not value or not value.startswith("/console") or "\\" in value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//"):
        return default
    return value


def set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict" if name == CSRF_COOKIE else "lax",
        secure=request.url.scheme == "https",
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )


class LoginThrottle:
    """At most ``limit`` failed sign-ins per email address in ``window`` seconds (in this
    process). Keys are hashed so that the addresses people typed are not kept."""

    def __init__(self, limit: int = 10, window: float = 900.0) -> None:
        self.limit = limit
        self.window = window
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(email: str) -> str:
        return hashlib.sha256(email.strip().lower().encode()).hexdigest()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, email: str) -> int:
        """Seconds to wait before trying again; 0 when trying is allowed."""
        now = time.monotonic()
        with self._lock:
            q = self._recent(self._key(email), now)
            if len(q) < self.limit:
                return 0
            return max(1, int(q[0] + self.window - now))

    def failed(self, email: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._fails) > 100_000:  # bounded memory under a spray of addresses
                self._fails.clear()
            self._recent(self._key(email), now).append(now)

    def succeeded(self, email: str) -> None:
        with self._lock:
            self._fails.pop(self._key(email), None)
