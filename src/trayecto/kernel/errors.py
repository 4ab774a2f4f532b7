"""The one exception hierarchy. Every error has a stable code, a message, an optional field.

The web layer turns any ``TrayectoError`` into
``{"error": {"code": ..., "message": ..., "field": ...}}`` with ``http_status``;
the CLI prints the message and exits non-zero. Anything else reaching a user is a bug.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "TrayectoError",
    "UnavailableError",
    "ValidationError",
]


class TrayectoError(Exception):
    """Base class. ``code`` is stable and documented; ``message`` says what to do next."""

    http_status = 400
    default_code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.field = field
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "error": {"code": self.code, "message": self.message, "field": self.field}
        }
        body.update(self.details)
        return body


class ValidationError(TrayectoError):
    http_status = 400
    default_code = "invalid"


class AuthenticationError(TrayectoError):
    http_status = 401
    default_code = "unauthenticated"


class PermissionDeniedError(TrayectoError):
    http_status = 403
    default_code = "forbidden"


class NotFoundError(TrayectoError):
    http_status = 404
    default_code = "not_found"


class ConflictError(TrayectoError):
    http_status = 409
    default_code = "conflict"


class PayloadTooLargeError(TrayectoError):
    http_status = 413
    default_code = "payload_too_large"


class UnavailableError(TrayectoError):
    """A dependency (the database) failed; the client should retry."""

    http_status = 503
    default_code = "unavailable"
