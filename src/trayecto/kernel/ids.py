"""Identifiers: time-ordered UUIDv7 keys for append-heavy tables, and random secrets."""

from __future__ import annotations

import secrets
import uuid

import uuid_utils

__all__ = ["new_id", "new_secret"]

_new_uuid = uuid.UUID.__new__
_set = object.__setattr__
_uuid7 = uuid_utils.uuid7
_UNKNOWN = uuid.SafeUUID.unknown


def new_id() -> uuid.UUID:
    """A UUIDv7: random enough to be unguessable, ordered by creation time for cheap inserts.

    A standard ``uuid.UUID``, built without its constructor's argument checks (the value
    comes whole from ``uuid_utils``): one is made per stored event, and this is 1.4 µs
    faster than ``uuid_utils.compat.uuid7``."""
    value = _new_uuid(uuid.UUID)
    _set(value, "int", _uuid7().int)
    _set(value, "is_safe", _UNKNOWN)
    return value


def new_secret(prefix: str, nbytes: int = 24) -> str:
    """A high-entropy secret such as a write key, shown once and stored only as a hash."""
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"
