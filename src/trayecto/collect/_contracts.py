"""The tracking contract: Segment's message spec, checked and turned into native events.

``check_message`` is the one validator used by the HTTP API and the bulk importer, so a
message that one path accepts the other accepts too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from trayecto.kernel import new_id, parse_timestamp

__all__ = [
    "MESSAGE_TYPES",
    "CheckedBatch",
    "InvalidMessage",
    "NativeEvent",
    "Origin",
    "Rejection",
    "check_batch",
    "check_message",
]

MESSAGE_TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})
MAX_ID_LENGTH = 200
MAX_EVENT_NAME = 200

# Top-level fields with a column of their own; the rest of a message is kept in ``extra``.
_COLUMNS = frozenset(
    {
        "type",
        "messageId",
        "anonymousId",
        "userId",
        "event",
        "name",
        "properties",
        "traits",
        "context",
        "timestamp",
        "originalTimestamp",
        "sentAt",
        "groupId",
        "previousId",
        "writeKey",
        "receivedAt",
    }
)
# Fields left out of the content hash that stands in for a missing messageId: they change
# between retries of the same message.
_VOLATILE = ("sentAt", "writeKey", "receivedAt")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where messages come from: the authenticated source, its channel and shop."""

    source_id: UUID
    channel: str
    location_id: str | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message (or file line) that was not stored, and why."""

    index: int
    code: str
    message: str
    field: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "code": self.code,
            "message": self.message,
            "field": self.field,
        }


@dataclass(slots=True)
class NativeEvent:
    """One stored interaction. Append-only: never updated except by erasure.

    Not a frozen dataclass on purpose: one is built per event received and per event read,
    and a frozen one costs 3.2 µs to build against 0.4 µs (``object.__setattr__`` per
    field). Treat it as read-only all the same."""

    id: UUID
    source_id: UUID
    channel: str
    location_id: str | None
    type: str
    event: str | None
    message_id: str
    anonymous_id: str | None
    user_id: str | None
    group_id: str | None
    previous_id: str | None
    traits: dict[str, Any] | None
    properties: dict[str, Any] | None
    context: dict[str, Any] | None
    extra: dict[str, Any] | None
    occurred_at: datetime
    original_timestamp: datetime | None
    sent_at: datetime | None
    received_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data, as the API and ``events tail --json`` show it."""
        return {
            "id": str(self.id),
            "source_id": str(self.source_id),
            "channel": self.channel,
            "location_id": self.location_id,
            "type": self.type,
            "event": self.event,
            "message_id": self.message_id,
            "anonymous_id": self.anonymous_id,
            "user_id": self.user_id,
            "group_id": self.group_id,
            "previous_id": self.previous_id,
            "traits": self.traits,
            "properties": self.properties,
            "context": self.context,
            "extra": self.extra,
            "occurred_at": self.occurred_at.isoformat(),
            "original_timestamp": _iso(self.original_timestamp),
            "sent_at": _iso(self.sent_at),
            "received_at": self.received_at.isoformat(),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class InvalidMessage(ValueError):
    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def _ident(msg: dict[str, Any], key: str) -> str | None:
    value = msg.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidMessage("invalid_type", f"{key} must be a string", key)
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_ID_LENGTH:
        raise InvalidMessage("too_long", f"{key} is longer than {MAX_ID_LENGTH} characters", key)
    return text


def _obj(msg: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = msg.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidMessage("invalid_type", f"{key} must be a JSON object", key)
    return value


def _time(value: Any, key: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise InvalidMessage("invalid_timestamp", f"{key}: {exc}", key) from None


def check_message(
    msg: Any,
    *,
    origin: Origin,
    received_at: datetime,
    max_bytes: int,
    forced_type: str | None = None,
    batch_sent_at: datetime | None = None,
    batch_context: dict[str, Any] | None = None,
    raw: bytes | None = None,
) -> NativeEvent:
    """Validate one Segment message and build the event to store.

    Event time follows Segment: ``timestamp`` corrected for the client's clock skew,
    ``received_at - (sent_at - timestamp)``, when the client says when it sent the message.
    ``raw``: the message's own JSON text when the caller has it (a file's line), checked
    for size and NUL instead of encoding the message again.
    Raises ``InvalidMessage`` naming the field.
    """
    if not isinstance(msg, dict):
        raise InvalidMessage("invalid_type", "a message must be a JSON object", "")
    encoded = raw.strip() if raw is not None else orjson.dumps(msg)
    if len(encoded) > max_bytes:
        raise InvalidMessage(
            "message_too_large",
            f"message is {len(encoded)} bytes; the limit is {max_bytes}",
            "",
        )
    if b"\\u0000" in encoded:
        raise InvalidMessage("invalid_character", "text may not contain NUL (\\u0000)", "")

    mtype = forced_type or msg.get("type")
    if forced_type and msg.get("type") not in (None, forced_type):
        raise InvalidMessage(
            "invalid_type", f"type {msg.get('type')!r} sent to the /{forced_type} endpoint", "type"
        )
    if mtype not in MESSAGE_TYPES:
        raise InvalidMessage(
            "invalid_type" if mtype is not None else "missing_field",
            "type must be one of: " + ", ".join(sorted(MESSAGE_TYPES)),
            "type",
        )

    user_id = _ident(msg, "userId")
    anonymous_id = _ident(msg, "anonymousId")
    group_id = _ident(msg, "groupId")
    previous_id = _ident(msg, "previousId")
    if mtype == "alias":
        if previous_id is None:
            raise InvalidMessage("missing_field", "alias needs previousId", "previousId")
        if user_id is None:
            raise InvalidMessage("missing_field", "alias needs userId", "userId")
    elif user_id is None and anonymous_id is None:
        raise InvalidMessage("missing_field", "userId or anonymousId is required", "userId")
    if mtype == "group" and group_id is None:
        raise InvalidMessage("missing_field", "group needs groupId", "groupId")

    name: str | None
    if mtype == "track":
        name = msg.get("event")
        if not isinstance(name, str) or not name.strip():
            raise InvalidMessage("missing_field", "track needs an event name", "event")
    elif mtype in ("page", "screen"):
        name = msg.get("name")
        if name is not None and not isinstance(name, str):
            raise InvalidMessage("invalid_type", "name must be a string", "name")
    else:
        name = None
    if name is not None and len(name) > MAX_EVENT_NAME:
        raise InvalidMessage("too_long", f"event name is longer than {MAX_EVENT_NAME}", "event")

    properties = _obj(msg, "properties")
    traits = _obj(msg, "traits")
    context = _obj(msg, "context")
    if batch_context:
        context = {**batch_context, **(context or {})}

    message_id = msg.get("messageId")
    if message_id is None or message_id == "":
        # No messageId: derive one from the content so that a retry is still idempotent.
        stable = {k: v for k, v in msg.items() if k not in _VOLATILE}
        digest = hashlib.sha256(orjson.dumps(stable, option=orjson.OPT_SORT_KEYS)).hexdigest()
        message_id = "sha256:" + digest[:40]
    elif not isinstance(message_id, str):
        raise InvalidMessage("invalid_type", "messageId must be a string", "messageId")
    elif len(message_id) > MAX_ID_LENGTH:
        raise InvalidMessage(
            "too_long", f"messageId is longer than {MAX_ID_LENGTH} characters", "messageId"
        )

    timestamp = _time(msg.get("timestamp"), "timestamp")
    original = _time(msg.get("originalTimestamp"), "originalTimestamp")
    sent_at = _time(msg.get("sentAt"), "sentAt") or batch_sent_at
    base = timestamp or original
    if base is None:
        occurred_at = received_at
    elif sent_at is not None:
        occurred_at = received_at - (sent_at - base)
    else:
        occurred_at = base

    extra = {k: v for k, v in msg.items() if k not in _COLUMNS} or None
    location_id = origin.location_id
    if context is not None:
        loc = context.get("location_id")
        if isinstance(loc, str) and loc:
            location_id = loc

    return NativeEvent(
        id=new_id(),
        source_id=origin.source_id,
        channel=origin.channel,
        location_id=location_id,
        type=mtype,
        event=name,
        message_id=message_id,
        anonymous_id=anonymous_id,
        user_id=user_id,
        group_id=group_id,
        previous_id=previous_id,
        traits=traits,
        properties=properties,
        context=context,
        extra=extra,
        occurred_at=occurred_at,
        original_timestamp=base,
        sent_at=sent_at,
        received_at=received_at,
    )


@dataclass(frozen=True, slots=True)
class CheckedBatch:
    events: list[NativeEvent]
    rejections: list[Rejection]


def check_batch(
    payload: Any,
    *,
    origin: Origin,
    received_at: datetime,
    max_message_bytes: int,
    forced_type: str | None = None,
) -> CheckedBatch:
    """Check a ``/v1/batch`` body (or, with ``forced_type``, a single-message body).

    Good messages become events; each bad one becomes a ``Rejection`` naming its index and
    field (``batch[3].event``). A body that is not a batch at all raises ``InvalidMessage``.
    """
    if not isinstance(payload, dict):
        raise InvalidMessage("invalid_body", "the body must be a JSON object", "")
    try:
        sent_at = _time(payload.get("sentAt"), "sentAt")
    except InvalidMessage:
        sent_at = None
    events: list[NativeEvent] = []
    rejections: list[Rejection] = []
    if forced_type is not None:
        messages: list[Any] = [payload]
        prefix = ""
        batch_context = None
    else:
        batch = payload.get("batch")
        if not isinstance(batch, list):
            raise InvalidMessage(
                "missing_field" if batch is None else "invalid_type",
                "the body needs a 'batch' array of messages",
                "batch",
            )
        messages = batch
        prefix = "batch"
        ctx = payload.get("context")
        batch_context = ctx if isinstance(ctx, dict) else None
    for i, msg in enumerate(messages):
        try:
            events.append(
                check_message(
                    msg,
                    origin=origin,
                    received_at=received_at,
                    max_bytes=max_message_bytes,
                    forced_type=forced_type,
                    batch_sent_at=sent_at if prefix else None,
                    batch_context=batch_context,
                )
            )
        except InvalidMessage as exc:
            where: str | None
            if prefix:
                where = f"{prefix}[{i}]" + (f".{exc.field}" if exc.field else "")
            else:
                where = exc.field or None
            rejections.append(Rejection(i, exc.code, exc.message, where))
    return CheckedBatch(events, rejections)
