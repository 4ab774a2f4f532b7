"""Consent per purpose and channel, with its history.

Sources of consent, all ending in ``id_consents`` (append-only, one row per change):
- events: ``context.consent.categoryPreferences`` (Segment's consent management) and
  ``traits.consents`` (``{"marketing": {"email": true}, "analytics": false}``);
- the API (an agent records what the customer said) and customer-record imports
  (columns ``consent_<purpose>[_<channel>]`` holding yes/no).

The current state of a (purpose, channel) is the latest row across the customer's
profiles for that channel or for ``all``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from trayecto.db import write_transaction
from trayecto.identity._tables import consents, profiles
from trayecto.kernel import NotFoundError, ValidationError, new_id, utcnow

__all__ = [
    "CHANNELS",
    "PURPOSES",
    "Consent",
    "ConsentChange",
    "consents_from_context",
    "consents_from_record",
    "consents_from_traits",
    "current_consents",
    "get_consents",
    "may_contact",
    "record_consent",
    "write_consents",
]

PURPOSES = ("marketing", "analytics", "personalisation")
CHANNELS = ("email", "sms", "whatsapp", "push", "phone", "all")

# Segment consent categories → trayecto purposes.
_CATEGORIES = {
    "marketing": "marketing",
    "advertising": "marketing",
    "analytics": "analytics",
    "performance": "analytics",
    "personalization": "personalisation",
    "personalisation": "personalisation",
    "functional": "personalisation",
}
_YES = {"true", "yes", "y", "1", "si", "sí", "granted", "opt-in", "opt_in"}
_NO = {"false", "no", "n", "0", "denied", "opt-out", "opt_out", "revoked"}


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """A consent statement found in data, before it is recorded."""

    purpose: str
    channel: str
    granted: bool


@dataclass(frozen=True, slots=True)
class Consent:
    purpose: str
    channel: str
    granted: bool
    origin: str
    source_id: UUID | None
    recorded_at: datetime
    evidence: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "channel": self.channel,
            "granted": self.granted,
            "origin": self.origin,
            "source_id": str(self.source_id) if self.source_id else None,
            "recorded_at": self.recorded_at.isoformat(),
            "evidence": self.evidence,
        }


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        v = value.strip().lower()
        if v in _YES:
            return True
        if v in _NO:
            return False
    return None


def check(purpose: str, channel: str) -> None:
    if purpose not in PURPOSES:
        raise ValidationError(
            f"purpose must be one of: {', '.join(PURPOSES)}",
            code="invalid_purpose",
            field="purpose",
        )
    if channel not in CHANNELS:
        raise ValidationError(
            f"channel must be one of: {', '.join(CHANNELS)}",
            code="invalid_channel",
            field="channel",
        )


def consents_from_context(context: dict[str, Any] | None) -> list[ConsentChange]:
    prefs = ((context or {}).get("consent") or {}).get("categoryPreferences")
    out: list[ConsentChange] = []
    if isinstance(prefs, dict):
        for category, value in prefs.items():
            purpose = _CATEGORIES.get(str(category).lower())
            flag = _flag(value)
            if purpose and flag is not None:
                out.append(ConsentChange(purpose, "all", flag))
    return out


def consents_from_traits(traits: dict[str, Any] | None) -> list[ConsentChange]:
    given = (traits or {}).get("consents")
    out: list[ConsentChange] = []
    if not isinstance(given, dict):
        return out
    for purpose, value in given.items():
        if purpose not in PURPOSES:
            continue
        flag = _flag(value)
        if flag is not None:
            out.append(ConsentChange(purpose, "all", flag))
        elif isinstance(value, dict):
            for channel, v in value.items():
                f = _flag(v)
                if channel in CHANNELS and f is not None:
                    out.append(ConsentChange(purpose, channel, f))
    return out


def consents_from_record(traits: dict[str, str]) -> list[ConsentChange]:
    """Columns ``consent_marketing_email=yes``, ``consent_analytics=no`` of a record."""
    out: list[ConsentChange] = []
    for key, value in traits.items():
        if not key.startswith("consent_"):
            continue
        purpose, _, channel = key.removeprefix("consent_").partition("_")
        flag = _flag(value)
        if purpose in PURPOSES and (channel or "all") in CHANNELS and flag is not None:
            out.append(ConsentChange(purpose, channel or "all", flag))
    return out


def _rows(conn: Connection, profile_ids: Sequence[UUID]) -> list[Consent]:
    if not profile_ids:
        return []
    rows = conn.execute(
        sa.select(consents)
        .where(consents.c.profile_id.in_(list(profile_ids)))
        .order_by(consents.c.recorded_at, consents.c.id)
    ).all()
    return [
        Consent(r.purpose, r.channel, r.granted, r.origin, r.source_id, r.recorded_at, r.evidence)
        for r in rows
    ]


def current_consents(history: Iterable[Consent]) -> dict[tuple[str, str], Consent]:
    current: dict[tuple[str, str], Consent] = {}
    for c in history:  # oldest first: later rows win
        current[(c.purpose, c.channel)] = c
    return current


def write_consents(
    conn: Connection,
    profile_id: UUID,
    customer_profiles: Sequence[UUID],
    changes: Sequence[ConsentChange],
    *,
    origin: str,
    source_id: UUID | None,
    at: datetime,
    evidence: dict[str, Any] | None = None,
) -> int:
    """Record the changes that differ from the customer's current state; returns how many."""
    if not changes:
        return 0
    current = current_consents(_rows(conn, customer_profiles))
    rows = []
    for ch in changes:
        now = current.get((ch.purpose, ch.channel))
        if now is not None and now.granted == ch.granted:
            continue  # a repetition is not a change
        rows.append(
            {
                "id": new_id(),
                "profile_id": profile_id,
                "purpose": ch.purpose,
                "channel": ch.channel,
                "granted": ch.granted,
                "origin": origin,
                "source_id": source_id,
                "recorded_at": at,
                "evidence": evidence,
            }
        )
    if rows:
        conn.execute(consents.insert(), rows)
    return len(rows)


def _profiles(conn: Connection, customer_id: UUID) -> list[UUID]:
    return list(
        conn.execute(
            sa.select(profiles.c.id).where(profiles.c.customer_id == customer_id)
        ).scalars()
    )


def record_consent(
    engine: Engine,
    customer_id: UUID,
    purpose: str,
    channel: str,
    granted: bool,
    *,
    origin: str = "api",
    source_id: UUID | None = None,
    evidence: dict[str, Any] | None = None,
) -> bool:
    """Record a consent statement for a customer (from an agent, a form…); returns
    whether it changed anything."""
    check(purpose, channel)
    with write_transaction(engine) as conn:
        pids = _profiles(conn, customer_id)
        if not pids:
            raise NotFoundError("no such customer", code="customer_not_found", field="id")
        n = write_consents(
            conn,
            min(pids),
            pids,
            [ConsentChange(purpose, channel, granted)],
            origin=origin,
            source_id=source_id,
            at=utcnow(),
            evidence=evidence,
        )
    return n > 0


def get_consents(engine: Engine, customer_id: UUID) -> dict[str, Any]:
    """``{"current": [...], "history": [...]}`` for a customer, newest history first."""
    with engine.connect() as conn:
        history = _rows(conn, _profiles(conn, customer_id))
    current = current_consents(history)
    return {
        "current": [c.to_dict() for _, c in sorted(current.items())],
        "history": [c.to_dict() for c in reversed(history)],
    }


def may_contact(engine: Engine, customer_id: UUID, purpose: str, channel: str) -> bool:
    """Whether the latest statement for this purpose on this channel (or on all channels)
    grants it. No statement means no: consent is opt-in."""
    check(purpose, channel)
    with engine.connect() as conn:
        history = _rows(conn, _profiles(conn, customer_id))
    relevant = [c for c in history if c.purpose == purpose and c.channel in (channel, "all")]
    return relevant[-1].granted if relevant else False
