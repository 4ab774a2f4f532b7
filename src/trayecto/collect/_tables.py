"""The append-only event log: every interaction from every touchpoint, as received."""

from __future__ import annotations

import sqlalchemy as sa

from trayecto.db import JSONDoc, UTCDateTime, metadata

events = sa.Table(
    "events",
    metadata,
    # UUIDv7: time-ordered, so the primary key doubles as the log's receive order.
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("source_id", sa.Uuid(), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("location_id", sa.String(100), nullable=True),
    sa.Column("type", sa.String(10), nullable=False),
    sa.Column("event", sa.String(200), nullable=True),
    sa.Column("message_id", sa.String(200), nullable=False),
    sa.Column("anonymous_id", sa.String(200), nullable=True),
    sa.Column("user_id", sa.String(200), nullable=True),
    sa.Column("group_id", sa.String(200), nullable=True),
    sa.Column("previous_id", sa.String(200), nullable=True),
    sa.Column("traits", JSONDoc, nullable=True),
    sa.Column("properties", JSONDoc, nullable=True),
    sa.Column("context", JSONDoc, nullable=True),
    sa.Column("extra", JSONDoc, nullable=True),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("original_timestamp", UTCDateTime(), nullable=True),
    sa.Column("sent_at", UTCDateTime(), nullable=True),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    # The message's own timestamp as sent (before clock-skew correction), in microseconds
    # since the epoch; 0 when it had none. Part of the idempotency key: a retry resends the
    # same message, timestamp included.
    sa.Column("message_ts", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    # Every index is time-ordered, so each append writes at the end of each index rather
    # than dirtying a random page per row (10x the append rate on SQLite). There is no index
    # on user_id or anonymous_id: identity attributes every event to a profile and is the
    # index of people (``identity.event_refs``).
    sa.Index("uq_events_message", "source_id", "message_ts", "message_id", unique=True),
    sa.Index("ix_events_occurred_at", "occurred_at"),
)
