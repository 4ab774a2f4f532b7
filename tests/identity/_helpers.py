"""Build per-person event histories for identity tests (after PostHog's journeys_for)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from trayecto import identity
from trayecto.identity._tables import identities, profiles
from trayecto.kernel import new_id

SOURCE = UUID(int=7)
KEY = b"test-key-" * 4
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
_clock = itertools.count()


def touch(
    channel: str = "web",
    type_: str = "track",
    *,
    user: str | None = None,
    anon: str | None = None,
    previous: str | None = None,
    traits: dict[str, Any] | None = None,
    device: str | None = None,
    source: UUID = SOURCE,
) -> identity.Touch:
    return identity.Touch(
        event_id=new_id(),
        source_id=source,
        channel=channel,
        type=type_,
        user_id=user,
        anonymous_id=anon,
        previous_id=previous,
        traits=traits,
        context={"device": {"id": device}} if device else None,
        occurred_at=T0 + timedelta(minutes=next(_clock)),
    )


def run(engine: Engine, *touches: identity.Touch) -> None:
    identity.process_touches(engine, list(touches), "ES", KEY)


def customer_of(engine: Engine, kind: str, value: str) -> UUID:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(profiles.c.customer_id)
            .join(identities, identities.c.profile_id == profiles.c.id)
            .where(identities.c.type == kind, identities.c.value == value)
        ).scalar_one()


def active_customers(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM id_customers WHERE status = 'active'")
            ).scalar_one()
        )


def snapshot(engine: Engine) -> dict[str, Any]:
    """Everything merge and unmerge may touch, except the audit trail of links and refusals."""
    queries = {
        "profiles": "SELECT id, customer_id FROM id_profiles ORDER BY id",
        "customers": "SELECT id, status, merged_into, display_name, name_key, name_key_rev, golden "
        "FROM id_customers ORDER BY id",
        "identities": "SELECT type, value, profile_id, shared FROM id_identities ORDER BY type, value",
        "events": "SELECT event_id, profile_id FROM id_event_profiles ORDER BY event_id",
        "observations": "SELECT profile_id, attribute, folded, value, count FROM id_observations "
        "ORDER BY profile_id, attribute, folded",
    }
    with engine.connect() as conn:
        return {k: [tuple(r) for r in conn.execute(sa.text(q)).all()] for k, q in queries.items()}
