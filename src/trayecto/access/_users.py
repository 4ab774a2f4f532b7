"""People who use the console: accounts with a role and a language, passwords, sessions.

Passwords are hashed with scrypt (memory-hard; Python's ``hashlib.scrypt``), a random salt
per password, and the cost parameters stored beside the hash so that they can be raised
later: a user whose hash has older parameters is re-hashed at their next login.

A session is a random 256-bit token that lives only in the browser's cookie; the store keeps
its SHA-256, an expiry and a revocation time. A single SHA-256 is right for the token (it is
not guessable, unlike a password), and it means a copy of the database logs nobody in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from trayecto.access._keys import Issued, Role
from trayecto.access._tables import user_sessions, users
from trayecto.db import write_transaction
from trayecto.kernel import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ValidationError,
    new_id,
    utcnow,
)

__all__ = [
    "LOCALES",
    "User",
    "UserSession",
    "authenticate_user",
    "create_user",
    "disable_user",
    "end_session",
    "generate_password",
    "get_user",
    "hash_password",
    "list_users",
    "reset_password",
    "session_user",
    "set_user_locale",
    "start_session",
    "verify_password",
]

#: Languages the console ships.
LOCALES = ("es", "en")

# OWASP's first scrypt setting (N=2^17, r=8, p=1): 128 MiB and about half a second per hash
# on this project's 2-core machines; a login happens once per shift.
SCRYPT_N = 2**17
SCRYPT_R = 8
SCRYPT_P = 1
_DKLEN = 32
_SALT_BYTES = 16
_MIN_PASSWORD = 10
_MAX_PASSWORD = 1024
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NAME = re.compile(r"^[^\x00-\x1f]{1,200}$")

#: The one message for every failed login: it never tells whether the email exists.
BAD_LOGIN = "wrong email or password"


@dataclass(frozen=True, slots=True)
class User:
    id: UUID
    email: str
    name: str
    role: Role
    locale: str
    created_at: datetime
    disabled_at: datetime | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True, slots=True)
class UserSession:
    """A signed-in console session. The token itself is only ever in ``Issued.secret``."""

    id: UUID
    user: User
    created_at: datetime
    expires_at: datetime


# --- passwords ----------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + 2**24, dklen=_DKLEN
    )


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64), with a fresh random salt."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``, compared in constant time."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _outdated(stored: str) -> bool:
    return not stored.startswith(f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}$")


_dummy_hash: list[str] = []


def _burn(password: str) -> None:
    """Spend the time a real check would, so that unknown emails answer as slowly."""
    if not _dummy_hash:
        _dummy_hash.append(hash_password(secrets.token_urlsafe(16)))
    verify_password(password, _dummy_hash[0])


def generate_password() -> str:
    """A random password of 20 URL-safe characters (120 bits)."""
    return secrets.token_urlsafe(15)


# --- checks -------------------------------------------------------------------------------


def _norm_email(email: str) -> str:
    return email.strip().lower()


def _check_email(email: str) -> str:
    email = _norm_email(email)
    if len(email) > 320 or not _EMAIL.match(email):
        raise ValidationError(f"{email[:60]!r} is not an email address", field="email")
    return email


def _check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise ValidationError("name must be 1 to 200 printable characters", field="name")
    return name


def _check_role(role: str | Role) -> Role:
    try:
        return Role(role)
    except ValueError:
        allowed = ", ".join(x.value for x in Role)
        raise ValidationError(
            f"unknown role {role!r}; use one of: {allowed}", field="role"
        ) from None


def _check_locale(locale: str) -> str:
    locale = locale.strip().lower()
    if locale not in LOCALES:
        raise ValidationError(
            f"unknown language {locale!r}; use one of: {', '.join(LOCALES)}", field="locale"
        )
    return locale


def _check_password(password: str) -> str:
    if not _MIN_PASSWORD <= len(password) <= _MAX_PASSWORD:
        raise ValidationError(
            f"a password needs {_MIN_PASSWORD} to {_MAX_PASSWORD} characters",
            code="weak_password",
            field="password",
        )
    return password


def _user(row: sa.Row[tuple[object, ...]]) -> User:
    m = row._mapping
    return User(
        id=m["id"],
        email=m["email"],
        name=m["name"],
        role=Role(m["role"]),
        locale=m["locale"],
        created_at=m["created_at"],
        disabled_at=m["disabled_at"],
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- users --------------------------------------------------------------------------------


def create_user(
    engine: Engine, email: str, name: str, role: str | Role, password: str, locale: str = "es"
) -> User:
    """Create a console user. The password is kept only as its scrypt hash."""
    values = {
        "id": new_id(),
        "email": _check_email(email),
        "name": _check_name(name),
        "role": _check_role(role).value,
        "locale": _check_locale(locale),
        "password_hash": hash_password(_check_password(password)),
        "created_at": utcnow(),
        "disabled_at": None,
    }
    try:
        with write_transaction(engine) as conn:
            conn.execute(users.insert().values(**values))
    except IntegrityError:
        raise ConflictError(
            "a user with this email already exists", code="user_exists", field="email"
        ) from None
    return get_user(engine, values["email"])  # type: ignore[arg-type]


def get_user(engine: Engine, email: str) -> User:
    with engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.email == _norm_email(email))).first()
    if row is None:
        raise NotFoundError("no user with this email", code="user_not_found", field="email")
    return _user(row)


def list_users(engine: Engine) -> list[User]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(users).order_by(users.c.created_at)).all()
    return [_user(r) for r in rows]


def disable_user(engine: Engine, email: str) -> User:
    """Disable a user and end their sessions at once. Disabling twice is harmless."""
    now = utcnow()
    with write_transaction(engine) as conn:
        uid = conn.execute(
            sa.select(users.c.id).where(users.c.email == _norm_email(email))
        ).scalar()
        if uid is None:
            raise NotFoundError("no user with this email", code="user_not_found", field="email")
        conn.execute(
            users.update()
            .where(users.c.id == uid, users.c.disabled_at.is_(None))
            .values(disabled_at=now)
        )
        conn.execute(
            user_sessions.update()
            .where(user_sessions.c.user_id == uid, user_sessions.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    return get_user(engine, email)


def reset_password(engine: Engine, email: str, password: str) -> User:
    """Set a new password and end the user's sessions (they sign in again)."""
    hashed = hash_password(_check_password(password))
    now = utcnow()
    with write_transaction(engine) as conn:
        uid = conn.execute(
            sa.select(users.c.id).where(users.c.email == _norm_email(email))
        ).scalar()
        if uid is None:
            raise NotFoundError("no user with this email", code="user_not_found", field="email")
        conn.execute(users.update().where(users.c.id == uid).values(password_hash=hashed))
        conn.execute(
            user_sessions.update()
            .where(user_sessions.c.user_id == uid, user_sessions.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    return get_user(engine, email)


def set_user_locale(engine: Engine, user_id: UUID, locale: str) -> None:
    locale = _check_locale(locale)
    with write_transaction(engine) as conn:
        conn.execute(users.update().where(users.c.id == user_id).values(locale=locale))


def authenticate_user(engine: Engine, email: str, password: str) -> User:
    """The active user with this email and password, else ``AuthenticationError`` with one
    message for an unknown email and a wrong password alike (and the same time spent)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.email == _norm_email(email))).first()
    if row is None or len(password) > _MAX_PASSWORD:
        _burn(password[:_MAX_PASSWORD])
        raise AuthenticationError(BAD_LOGIN, code="invalid_credentials", field="email")
    stored = row._mapping["password_hash"]
    if not verify_password(password, stored):
        raise AuthenticationError(BAD_LOGIN, code="invalid_credentials", field="email")
    user = _user(row)
    if not user.active:
        # Only someone who knows the password learns that the account is disabled.
        raise AuthenticationError(
            "this account is disabled; ask an administrator", code="user_disabled", field="email"
        )
    if _outdated(stored):
        with write_transaction(engine) as conn:
            conn.execute(
                users.update()
                .where(users.c.id == user.id)
                .values(password_hash=hash_password(password))
            )
    return user


# --- sessions -----------------------------------------------------------------------------


def start_session(engine: Engine, user: User, lifetime: timedelta) -> Issued[UserSession]:
    """Open a session for ``user``; the token (``secret``) goes in a cookie, never stored."""
    if lifetime <= timedelta(0):
        raise ValidationError("a session lifetime must be positive", field="lifetime")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    sid = new_id()
    with write_transaction(engine) as conn:
        # Housekeeping: this user's sessions that ended more than a week ago.
        conn.execute(
            user_sessions.delete().where(
                user_sessions.c.user_id == user.id,
                user_sessions.c.expires_at < now - timedelta(days=7),
            )
        )
        conn.execute(
            user_sessions.insert().values(
                id=sid,
                token_hash=_token_hash(token),
                user_id=user.id,
                created_at=now,
                expires_at=now + lifetime,
                revoked_at=None,
            )
        )
    return Issued(UserSession(sid, user, now, now + lifetime), token)


def session_user(engine: Engine, token: str | None) -> UserSession:
    """The live session of ``token`` (not expired, not revoked, its user active)."""
    if not token:
        raise AuthenticationError("sign in first", code="no_session")
    s = user_sessions.c
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(users, s.id.label("session_id"), s.created_at.label("session_created"))
            .add_columns(s.expires_at, s.revoked_at)
            .select_from(user_sessions.join(users, users.c.id == s.user_id))
            .where(s.token_hash == _token_hash(token))
        ).first()
    if row is None:
        raise AuthenticationError("sign in first", code="no_session")
    m = row._mapping
    if m["revoked_at"] is not None or m["disabled_at"] is not None:
        raise AuthenticationError("your session has ended; sign in again", code="session_ended")
    if m["expires_at"] <= utcnow():
        raise AuthenticationError("your session has expired; sign in again", code="session_expired")
    return UserSession(m["session_id"], _user(row), m["session_created"], m["expires_at"])


def end_session(engine: Engine, token: str | None) -> None:
    """Revoke the session of ``token`` (signing out). Unknown or ended tokens are ignored."""
    if not token:
        return
    with write_transaction(engine) as conn:
        conn.execute(
            user_sessions.update()
            .where(
                user_sessions.c.token_hash == _token_hash(token),
                user_sessions.c.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
        )
