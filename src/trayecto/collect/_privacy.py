"""Anonymising events of an erased person: the log keeps what happened, not who."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from trayecto.collect._tables import events
from trayecto.db import write_transaction

__all__ = ["ERASED", "anonymise_events"]

ERASED = "[erased]"
# Context keys that describe the software, not the person; everything else (ip, traits,
# userAgent, page URLs with query strings, device ids, location) is dropped.
_SAFE_CONTEXT = frozenset({"library", "locale", "app", "os", "timezone", "location_id"})
_DIGITS = re.compile(r"\D")


class _Scrubber:
    def __init__(self, values: Iterable[str]) -> None:
        self.texts = sorted({v.casefold() for v in values if len(v) >= 3}, key=len, reverse=True)
        self.digits = {d for v in values if len(d := _DIGITS.sub("", v)) >= 7}

    def text(self, value: str) -> str:
        folded = value.casefold()
        if any(t in folded for t in self.texts):
            return ERASED
        digits = _DIGITS.sub("", value)
        if digits and any(d in digits for d in self.digits):
            return ERASED
        return value

    def any(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.any(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.any(v) for v in value]
        return value


def anonymise_events(
    engine: Engine,
    event_ids: Iterable[UUID],
    *,
    pii_values: Iterable[str] = (),
) -> int:
    """Strip the person from their events: ids, traits and personal context go; properties
    keep their shape with any value that mentions the person replaced by ``[erased]``.
    Returns how many events were anonymised.

    The events are named by id: identity attributes every event of the log to a profile, so
    a person's events are those of their profiles (the log has no index on person ids; a
    random-key index would cost every append a page write)."""
    scrub = _Scrubber(pii_values)
    ids = list(set(event_ids))
    conds = []
    for start in range(0, len(ids), 500):
        conds.append(events.c.id.in_(ids[start : start + 500]))
    if not conds:
        return 0
    with write_transaction(engine) as conn:
        rows = conn.execute(
            sa.select(events.c.id, events.c.properties, events.c.context).where(sa.or_(*conds))
        ).all()
        updates = [
            {
                "eid": r.id,
                "properties": scrub.any(r.properties) if r.properties else None,
                "context": {k: v for k, v in (r.context or {}).items() if k in _SAFE_CONTEXT}
                or None,
            }
            for r in rows
        ]
        if updates:
            conn.execute(
                events.update()
                .where(events.c.id == sa.bindparam("eid"))
                .values(
                    user_id=None,
                    anonymous_id=None,
                    previous_id=None,
                    group_id=None,
                    traits=None,
                    extra=None,
                    properties=sa.bindparam("properties"),
                    context=sa.bindparam("context"),
                ),
                updates,
            )
    return len(updates)
