"""Shared building blocks: errors with stable codes, ids, clock, JSON helpers."""

from trayecto.kernel.clock import parse_timestamp, utcnow
from trayecto.kernel.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    TrayectoError,
    UnavailableError,
    ValidationError,
)
from trayecto.kernel.ids import new_id, new_secret

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "TrayectoError",
    "UnavailableError",
    "ValidationError",
    "new_id",
    "new_secret",
    "parse_timestamp",
    "utcnow",
]
