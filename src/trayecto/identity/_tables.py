"""Tables of the identity domain.

A *profile* is the atomic unit: a set of identifiers that arrived together, never split.
A *customer* is a connected component of profiles under active links; its id is the id of
its oldest profile, so merging and then unmerging gives every customer its old id back.
"""

from __future__ import annotations

import sqlalchemy as sa

from trayecto.db import JSONDoc, UTCDateTime, metadata

profiles = sa.Table(
    "id_profiles",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("customer_id", sa.Uuid(), nullable=False, index=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

identities = sa.Table(
    "id_identities",
    metadata,
    sa.Column("type", sa.String(20), primary_key=True),
    sa.Column("value", sa.String(320), primary_key=True),
    sa.Column("profile_id", sa.Uuid(), nullable=False, index=True),
    sa.Column("channel", sa.String(20), nullable=True),
    sa.Column("source_id", sa.Uuid(), nullable=True),
    sa.Column("shared", sa.Boolean(), nullable=False, default=False),
    sa.Column("first_seen_at", UTCDateTime(), nullable=False),
)

links = sa.Table(
    "id_links",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("a_profile_id", sa.Uuid(), nullable=False, index=True),
    sa.Column("b_profile_id", sa.Uuid(), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),  # deterministic|probabilistic|manual
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("evidence", JSONDoc, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("removed_at", UTCDateTime(), nullable=True),
    sa.Column("removed_reason", sa.String(500), nullable=True),
)

refusals = sa.Table(
    "id_refusals",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("a_profile_id", sa.Uuid(), nullable=False),
    sa.Column("b_profile_id", sa.Uuid(), nullable=False),
    sa.Column("rule", sa.String(40), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("evidence", JSONDoc, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

records = sa.Table(
    "id_records",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("source_id", sa.Uuid(), nullable=False),
    sa.Column("record_id", sa.String(200), nullable=False),
    sa.Column("profile_id", sa.Uuid(), nullable=False, index=True),
    sa.Column("attributes", JSONDoc, nullable=False),
    sa.Column("traits", JSONDoc, nullable=True),
    sa.Column("observed_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("source_id", "record_id"),
)

# One row per (profile, attribute, folded value, source): how often and when it was seen.
observations = sa.Table(
    "id_observations",
    metadata,
    sa.Column("profile_id", sa.Uuid(), primary_key=True),
    sa.Column("attribute", sa.String(30), primary_key=True),
    sa.Column("folded", sa.String(320), primary_key=True),
    sa.Column("source_id", sa.Uuid(), primary_key=True),
    sa.Column("value", sa.String(320), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("origin", sa.String(10), nullable=False),  # record | event
    sa.Column("count", sa.Integer(), nullable=False),
    sa.Column("first_seen_at", UTCDateTime(), nullable=False),
    sa.Column("last_seen_at", UTCDateTime(), nullable=False),
)

# The customer as the console and API see it: golden record, search keys, counts.
customers = sa.Table(
    "id_customers",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("status", sa.String(10), nullable=False),  # active | merged
    sa.Column("merged_into", sa.Uuid(), nullable=True),
    sa.Column("display_name", sa.String(200), nullable=True),
    sa.Column("name_key", sa.String(200), nullable=True, index=True),  # "lucia garcia"
    sa.Column("name_key_rev", sa.String(200), nullable=True, index=True),  # "garcia lucia"
    sa.Column("golden", JSONDoc, nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# Which profile each event was attributed to; the timeline reads through it.
event_profiles = sa.Table(
    "id_event_profiles",
    metadata,
    sa.Column("event_id", sa.Uuid(), primary_key=True),
    sa.Column("profile_id", sa.Uuid(), nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("type", sa.String(10), nullable=False),
    sa.Index("ix_id_event_profiles_profile_time", "profile_id", "occurred_at"),
)

# How far each consumer of the event log has read.
checkpoints = sa.Table(
    "id_checkpoints",
    metadata,
    sa.Column("consumer", sa.String(40), primary_key=True),
    sa.Column("last_event_id", sa.Uuid(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# Consent per purpose and channel, append-only: the latest row of each (purpose, channel)
# across a customer's profiles is the current state; all rows are the history.
consents = sa.Table(
    "id_consents",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("profile_id", sa.Uuid(), nullable=False, index=True),
    sa.Column("purpose", sa.String(20), nullable=False),  # marketing|analytics|personalisation
    sa.Column("channel", sa.String(20), nullable=False),  # email|sms|whatsapp|push|phone|all
    sa.Column("granted", sa.Boolean(), nullable=False),
    sa.Column("origin", sa.String(10), nullable=False),  # event|api|import
    sa.Column("source_id", sa.Uuid(), nullable=True),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    sa.Column("evidence", JSONDoc, nullable=True),
)

# Identifiers of erased people, as keyed hashes (HMAC-SHA256): no readable PII, but the
# same identifier arriving again is recognised and not stored.
suppressions = sa.Table(
    "id_suppressions",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

# The audit trail of erasures: who, when, how much; never what.
erasures = sa.Table(
    "id_erasures",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("customer_id", sa.Uuid(), nullable=False),
    sa.Column("requested_by", sa.String(200), nullable=False),
    sa.Column("counts", JSONDoc, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

# Probabilistic matching: each run, its learned model and what it found.
match_runs = sa.Table(
    "id_match_runs",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),  # running|done|failed
    sa.Column("params", JSONDoc, nullable=False),  # thresholds, blocking rules
    sa.Column("model", JSONDoc, nullable=True),  # learned m/u probabilities and weights
    sa.Column("stats", JSONDoc, nullable=True),
)

# Candidate pairs: auto-merged above the upper threshold, queued for review between the
# two, with the per-field evidence an agent needs to decide.
match_candidates = sa.Table(
    "id_match_candidates",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("run_id", sa.Uuid(), nullable=False, index=True),
    sa.Column("a_profile_id", sa.Uuid(), nullable=False),
    sa.Column("b_profile_id", sa.Uuid(), nullable=False),
    sa.Column("probability", sa.Float(), nullable=False),
    sa.Column("match_weight", sa.Float(), nullable=False),
    sa.Column("evidence", JSONDoc, nullable=False),
    sa.Column(
        "status", sa.String(20), nullable=False, index=True
    ),  # pending|accepted|rejected|auto_merged|refused
    sa.Column("link_id", sa.Uuid(), nullable=True),
    sa.Column("decided_by", sa.String(200), nullable=True),
    sa.Column("decided_at", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("a_profile_id", "b_profile_id"),
)

# What each customer looked like when it was last matched, so a run only scores new and
# changed customers against all (incremental).
match_index = sa.Table(
    "id_match_index",
    metadata,
    sa.Column("customer_id", sa.Uuid(), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("matched_at", UTCDateTime(), nullable=False),
)
