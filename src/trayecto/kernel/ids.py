"""Identifiers: time-ordered UUIDv7 keys for append-heavy tables, and random secrets."""

from __future__ import annotations

import secrets
import uuid

from uuid_utils import compat as _uuid_compat

__all__ = ["new_id", "new_secret"]


def new_id() -> uuid.UUID:
    """A UUIDv7: random enough to be unguessable, ordered by creation time for cheap inserts."""
    return _uuid_compat.uuid7()


def new_secret(prefix: str, nbytes: int = 24) -> str:
    """A high-entropy secret such as a write key, shown once and stored only as a hash."""
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"
