"""Time: always timezone-aware UTC inside."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["parse_timestamp", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_timestamp(value: object) -> datetime:
    """Parse an ISO-8601 timestamp (``Z`` or an offset; naive means UTC) into aware UTC.

    Raises ``ValueError`` with a readable message on anything else.
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value[:40]!r} is not an ISO-8601 timestamp") from None
    else:
        raise ValueError("must be an ISO-8601 timestamp string")
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)
