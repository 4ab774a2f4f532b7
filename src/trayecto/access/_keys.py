"""Sources with write keys, and admin API tokens. Secrets are shown once and kept hashed.

Keys are 192-bit random strings, so a single SHA-256 is the right hash: a slow password
hash (bcrypt, argon2) protects guessable secrets and would cost milliseconds per request.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from trayecto.access._tables import api_tokens, sources
from trayecto.db import write_transaction
from trayecto.kernel import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ValidationError,
    new_id,
    new_secret,
    utcnow,
)


class Channel(StrEnum):
    WEB = "web"
    APP = "app"
    STORE = "store"
    MARKETPLACE = "marketplace"
    CALL_CENTER = "call_center"
    WHATSAPP = "whatsapp"
    SOCIAL = "social"
    EMAIL = "email"


class Role(StrEnum):
    ADMIN = "admin"
    MARKETING = "marketing"
    AGENT = "agent"
    STORE_STAFF = "store_staff"


@dataclass(frozen=True, slots=True)
class Source:
    id: UUID
    name: str
    channel: Channel
    location_id: str | None
    key_hint: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: UUID
    name: str
    role: Role
    token_hint: str
    created_at: datetime
    revoked_at: datetime | None


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Issued(Generic[T]):
    """A newly created record and its secret, which is never shown again."""

    record: T
    secret: str


_NAME = re.compile(r"^[^\x00-\x1f]{1,200}$")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _hint(secret: str) -> str:
    return secret[:10] + "…"


def _check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise ValidationError("name must be 1 to 200 printable characters", field="name")
    return name


def _source(row: sa.Row[tuple[object, ...]]) -> Source:
    m = row._mapping
    return Source(
        id=m["id"],
        name=m["name"],
        channel=Channel(m["channel"]),
        location_id=m["location_id"],
        key_hint=m["key_hint"],
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
    )


def _token(row: sa.Row[tuple[object, ...]]) -> ApiToken:
    m = row._mapping
    return ApiToken(
        id=m["id"],
        name=m["name"],
        role=Role(m["role"]),
        token_hint=m["token_hint"],
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
    )


def create_source(
    engine: Engine, name: str, channel: str, location_id: str | None = None
) -> Issued[Source]:
    """Register a source and issue its write key."""
    name = _check_name(name)
    try:
        ch = Channel(channel)
    except ValueError:
        allowed = ", ".join(c.value for c in Channel)
        raise ValidationError(
            f"unknown channel {channel!r}; use one of: {allowed}", field="channel"
        ) from None
    if ch is Channel.STORE and not location_id:
        raise ValidationError(
            "a store source needs --location (the shop it belongs to)", field="location_id"
        )
    key = new_secret("wk")
    values = {
        "id": new_id(),
        "name": name,
        "channel": ch.value,
        "location_id": location_id,
        "key_hash": _hash(key),
        "key_hint": _hint(key),
        "created_at": utcnow(),
        "revoked_at": None,
    }
    try:
        with write_transaction(engine) as conn:
            conn.execute(sources.insert().values(**values))
    except IntegrityError:
        raise ConflictError(
            f"a source named {name!r} already exists", code="source_exists", field="name"
        ) from None
    return Issued(
        Source(
            id=values["id"],  # type: ignore[arg-type]
            name=name,
            channel=ch,
            location_id=location_id,
            key_hint=values["key_hint"],  # type: ignore[arg-type]
            created_at=values["created_at"],  # type: ignore[arg-type]
            revoked_at=None,
        ),
        key,
    )


def list_sources(engine: Engine) -> list[Source]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(sources).order_by(sources.c.created_at)).all()
    return [_source(r) for r in rows]


def get_source(engine: Engine, name: str) -> Source:
    with engine.connect() as conn:
        row = conn.execute(sa.select(sources).where(sources.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no source named {name!r}", code="source_not_found", field="name")
    return _source(row)


def revoke_source(engine: Engine, name: str) -> Source:
    """Revoke a source's write key; its events stay. Revoking twice is harmless."""
    with write_transaction(engine) as conn:
        conn.execute(
            sources.update()
            .where(sources.c.name == name, sources.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    return get_source(engine, name)


def authenticate_write_key(engine: Engine, key: str | None) -> Source:
    """The active source for ``key``, or ``AuthenticationError``."""
    if not key:
        raise AuthenticationError(
            "missing write key: send it as the HTTP Basic user name or as writeKey",
            code="missing_write_key",
            field="writeKey",
        )
    with engine.connect() as conn:
        row = conn.execute(sa.select(sources).where(sources.c.key_hash == _hash(key))).first()
    if row is None:
        raise AuthenticationError("unknown write key", code="invalid_write_key", field="writeKey")
    src = _source(row)
    if src.revoked_at is not None:
        raise AuthenticationError(
            f"the write key of source {src.name!r} was revoked; ask an admin for a new source",
            code="revoked_write_key",
            field="writeKey",
        )
    return src


def create_token(engine: Engine, name: str, role: str = "admin") -> Issued[ApiToken]:
    name = _check_name(name)
    try:
        r = Role(role)
    except ValueError:
        allowed = ", ".join(x.value for x in Role)
        raise ValidationError(
            f"unknown role {role!r}; use one of: {allowed}", field="role"
        ) from None
    token = new_secret("tk")
    values = {
        "id": new_id(),
        "name": name,
        "role": r.value,
        "token_hash": _hash(token),
        "token_hint": _hint(token),
        "created_at": utcnow(),
        "revoked_at": None,
    }
    try:
        with write_transaction(engine) as conn:
            conn.execute(api_tokens.insert().values(**values))
    except IntegrityError:
        raise ConflictError(
            f"a token named {name!r} already exists", code="token_exists", field="name"
        ) from None
    return Issued(
        ApiToken(
            id=values["id"],  # type: ignore[arg-type]
            name=name,
            role=r,
            token_hint=values["token_hint"],  # type: ignore[arg-type]
            created_at=values["created_at"],  # type: ignore[arg-type]
            revoked_at=None,
        ),
        token,
    )


def list_tokens(engine: Engine) -> list[ApiToken]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(api_tokens).order_by(api_tokens.c.created_at)).all()
    return [_token(r) for r in rows]


def revoke_token(engine: Engine, name: str) -> ApiToken:
    with write_transaction(engine) as conn:
        conn.execute(
            api_tokens.update()
            .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        row = conn.execute(sa.select(api_tokens).where(api_tokens.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no token named {name!r}", code="token_not_found", field="name")
    return _token(row)


def authenticate_token(engine: Engine, token: str | None) -> ApiToken:
    if not token:
        raise AuthenticationError(
            "missing API token: send 'Authorization: Bearer TOKEN' "
            "(create one with 'trayecto tokens add NAME')",
            code="missing_token",
            field="Authorization",
        )
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(api_tokens).where(api_tokens.c.token_hash == _hash(token))
        ).first()
    if row is None or row._mapping["revoked_at"] is not None:
        raise AuthenticationError(
            "invalid or revoked API token", code="invalid_token", field="Authorization"
        )
    return _token(row)


_Found = TypeVar("_Found")


class _Remembered(Generic[_Found]):
    """What ``check(engine, key)`` authenticated, remembered for ``ttl`` seconds: a request
    then costs no query. A revoked key stops working within ``ttl``; unknown keys are
    never remembered (``check`` raises, and each costs a lookup, as it should).

    When a remembered key runs out, the requests that arrive together with it (a busy
    server has dozens in flight) ask the database once: the first asks, the others wait
    for its answer (and ask themselves only if it found nothing to remember)."""

    def __init__(
        self, check: Callable[[Engine, str | None], _Found], engine: Engine, ttl: float
    ) -> None:
        self._check = check
        self._engine = engine
        self._ttl = ttl
        self._known: dict[str, tuple[float, _Found]] = {}
        self._lock = threading.Lock()
        self._asking: dict[str, threading.Event] = {}  # key -> set once it was asked
        #: How many times the database was asked (what the cache saves is visible).
        self.lookups = 0

    def known(self, key: str | None) -> _Found | None:
        """What ``key`` authenticated to within ``ttl``, without asking the database."""
        hit = self._known.get(key) if key else None
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def authenticate(self, key: str | None) -> _Found:
        found = self.known(key)
        if found is not None:
            return found
        name = key or ""
        with self._lock:
            asked = self._asking.get(name)
            if asked is None:
                self._asking[name] = threading.Event()
        if asked is not None:  # another request is asking: its answer serves this one
            asked.wait()
            found = self.known(key)
            if found is not None:
                return found
            return self._ask(key)  # it was refused: this one gets its own answer
        try:
            return self._ask(key)
        finally:
            with self._lock:
                self._asking.pop(name).set()

    def _ask(self, key: str | None) -> _Found:
        self.lookups += 1
        found = self._check(self._engine, key)
        if len(self._known) > 10_000:
            self._known.clear()
        self._known[key or ""] = (time.monotonic() + self._ttl, found)
        return found


class WriteKeyCache(_Remembered[Source]):
    """Authenticated write keys, remembered: no query on every tracking request."""

    def __init__(self, engine: Engine, ttl: float = 1.0) -> None:
        super().__init__(authenticate_write_key, engine, ttl)


class ApiTokenCache(_Remembered[ApiToken]):
    """Authenticated API tokens, remembered: no query on every order intake request."""

    def __init__(self, engine: Engine, ttl: float = 1.0) -> None:
        super().__init__(authenticate_token, engine, ttl)
