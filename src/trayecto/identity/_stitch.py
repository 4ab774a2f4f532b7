"""Real-time deterministic stitching of events and customer records into the graph."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from trayecto.db import dialect_insert
from trayecto.identity._consent import consents_from_context, consents_from_traits, write_consents
from trayecto.identity._corroborate import contradictions
from trayecto.identity._graph import Graph
from trayecto.identity._privacy import suppressed
from trayecto.identity._rules import (
    RULES,
    Identifier,
    attributes_from_traits,
    fold,
    identifiers_from_event,
)
from trayecto.identity._tables import event_profiles, observations

__all__ = [
    "Observation",
    "StitchResult",
    "Touch",
    "better_spelling",
    "merge_observations",
    "place",
    "stitch_touches",
    "upsert_observations",
    "write_observations",
]


@dataclass(frozen=True, slots=True)
class Touch:
    """What identity needs from one stored event."""

    event_id: UUID
    source_id: UUID
    channel: str
    type: str
    user_id: str | None
    anonymous_id: str | None
    previous_id: str | None
    traits: dict[str, Any] | None
    context: dict[str, Any] | None
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class Observation:
    profile_id: UUID
    attribute: str
    value: str
    source_id: UUID
    channel: str
    origin: str
    at: datetime


def _contradicted(
    graph: Graph,
    ids: Sequence[Identifier],
    owners: Mapping[Identifier, UUID],
    attrs: Mapping[str, str],
) -> dict[UUID, tuple[list[Identifier], list[dict[str, Any]]]]:
    """Customers this message reaches only through identifiers that need corroboration
    (no other strong identifier vouches for them) and whose names or birth date the
    message contradicts: customer → (those identifiers, what contradicts)."""
    via: dict[UUID, list[Identifier]] = defaultdict(list)
    vouched: set[UUID] = set()
    for ident in ids:
        owner = owners.get(ident)
        if owner is None:
            continue
        rule = RULES[ident[0]]
        if rule.corroborate:
            via[graph.customer_of(owner)].append(ident)
        elif rule.strong:
            vouched.add(graph.customer_of(owner))
    out: dict[UUID, tuple[list[Identifier], list[dict[str, Any]]]] = {}
    for cid, shared in via.items():
        if cid in vouched:
            continue
        fields = {f for kind, _ in shared for f in RULES[kind].corroborate}
        found = contradictions(graph.known.of(cid), attrs, fields)
        if found:
            out[cid] = (shared, found)
    return out


def _refuse_conflicts(
    graph: Graph,
    primary: UUID,
    owners: Mapping[Identifier, UUID],
    apart: Mapping[UUID, tuple[list[Identifier], list[dict[str, Any]]]],
    at: datetime,
) -> None:
    for shared, found in apart.values():
        said = "; ".join(
            f"{c['attribute'].replace('_', ' ')} {c['value']!r} is not {' / '.join(c['known'])}"
            for c in found
        )
        kinds = ", ".join(sorted({k.value for k, _ in shared}))
        evidence: dict[str, Any] = {
            "identifiers": [f"{k.value}:{v}" for k, v in shared],
            **{c["attribute"]: f"{c['value']} ≠ {' / '.join(c['known'])}" for c in found},
            "conflicts": found,
        }
        graph.refuse(
            primary,
            owners[shared[0]],
            "conflicting_attributes",
            f"only {kinds} links them, which a household may share, and {said}"[:500],
            evidence,
            at,
        )


def place(
    graph: Graph,
    ids: Sequence[Identifier],
    at: datetime,
    channel: str,
    source_id: UUID | None,
    attrs: Mapping[str, str] | None = None,
) -> UUID | None:
    """Put a set of identifiers that arrived together into the graph; return the profile
    the message belongs to (None when its only identifier is a shared device). ``attrs``
    (first and last name, birth date, as ``attributes_from_traits`` reads them) are what
    the message says about the person: checked against a customer reached only through
    an identifier a household may share."""
    if not ids:
        return None
    owners = every_owner = graph.owners(ids)
    others = _contradicted(graph, ids, owners, attrs) if attrs else {}
    if others:
        # Those customers are someone else: their identifiers neither place nor link this
        # message (they stay theirs); the message keeps a profile of its own.
        ids = [i for i in ids if i not in owners or graph.customer_of(owners[i]) not in others]
        owners = {i: o for i, o in owners.items() if i in ids}
        if not ids:
            primary = graph.new_profile(at)
            _refuse_conflicts(graph, primary, every_owner, others, at)
            return primary
    strong_owned = [i for i in ids if i in owners and RULES[i[0]].strong]
    weak_owned = [i for i in ids if i in owners and not RULES[i[0]].strong]
    unowned = [i for i in ids if i not in owners]

    if strong_owned:
        primary = owners[strong_owned[0]]
    elif any(RULES[k].strong for k, _ in unowned) or not weak_owned:
        primary = graph.new_profile(at)
    else:
        usable = [i for i in weak_owned if not graph.is_shared(i)]
        primary = owners[usable[0]] if usable else graph.new_profile(at)

    # New identifiers join the primary profile unless that breaks a per-person limit.
    refused: set[UUID] = set()
    if unowned:
        rule = graph.would_exceed(graph.customer_of(primary), unowned)
        if rule is None:
            graph.attach(primary, unowned, at, channel, source_id)
        else:
            keep = [i for i in unowned if i[0] is not rule]
            apart = [i for i in unowned if i[0] is rule]
            if keep and graph.would_exceed(graph.customer_of(primary), keep) is None:
                graph.attach(primary, keep, at, channel, source_id)
            else:
                apart = unowned
            other = graph.new_profile(at)
            graph.attach(other, apart, at, channel, source_id)
            graph.refuse(
                primary,
                other,
                "max_per_profile",
                f"one customer may hold at most {RULES[rule].max_per_profile} {rule.value}",
                {"identifiers": [f"{k.value}:{v}" for k, v in ids]},
                at,
            )
            refused.add(graph.customer_of(primary))
            if ids[0] in apart:
                primary = other

    # Every other customer holding one of these identifiers is the same person.
    linked_to = graph.customer_of(primary)
    for ident in strong_owned + weak_owned:
        owner = owners[ident]
        if graph.customer_of(owner) == linked_to or graph.customer_of(owner) in refused:
            continue
        if not RULES[ident[0]].strong and graph.is_shared(ident):
            continue  # a shared till or tablet says nothing about who this is
        evidence = [i for i in ids if owners.get(i) == owner]
        if graph.try_link(primary, owner, evidence, at):
            linked_to = graph.customer_of(primary)

    if others:
        _refuse_conflicts(graph, primary, every_owner, others, at)
    if all(not RULES[kind].strong and graph.is_shared((kind, v)) for kind, v in ids):
        # Only shared devices or sessions (the shop's tablet, the till): whose message
        # it is cannot be told, so it is attributed to no one. One identifier of its own
        # (a till ticket, a browser's cookie) is enough: the message joins its profile.
        return None
    return primary


@dataclass
class StitchResult:
    attributed: int = 0
    observations: list[Observation] = field(default_factory=list)
    #: Events of people who were erased: the caller anonymises them in the log.
    suppressed_events: list[UUID] = field(default_factory=list)


def stitch_touches(
    conn: Connection, graph: Graph, touches: Sequence[Touch], region: str, key: bytes
) -> StitchResult:
    """Stitch a batch of events: attribute each to a profile, collect the attribute
    observations and consent statements they carry, and set aside the events of erased
    people."""
    result = StitchResult()
    attributed: list[dict[str, Any]] = []
    seen = result.observations
    per_touch = [
        identifiers_from_event(
            channel=t.channel,
            type_=t.type,
            user_id=t.user_id,
            anonymous_id=t.anonymous_id,
            previous_id=t.previous_id,
            traits=t.traits,
            context=t.context,
            region=region,
        )
        for t in touches
    ]
    every = {i for ids in per_touch for i in ids}
    erased = suppressed(conn, key, every)
    graph.prefetch(every - erased)
    for t, ids in zip(touches, per_touch, strict=True):
        if erased and any(i in erased for i in ids):
            result.suppressed_events.append(t.event_id)
            continue
        said = attributes_from_traits(t.traits, region) if t.type == "identify" and t.traits else {}
        profile = place(graph, ids, t.occurred_at, t.channel, t.source_id, said)
        if profile is None:
            continue
        attributed.append(
            {
                "event_id": t.event_id,
                "profile_id": profile,
                "occurred_at": t.occurred_at,
                "channel": t.channel,
                "type": t.type,
            }
        )
        if said:
            for attr, value in said.items():
                seen.append(
                    Observation(
                        profile, attr, value, t.source_id, t.channel, "event", t.occurred_at
                    )
                )
            graph.known.add(graph.customer_of(profile), said)
        if t.type == "identify" and t.traits:
            graph.dirty.add(graph.customer_of(profile))
        changes = consents_from_context(t.context) + (
            consents_from_traits(t.traits) if t.type == "identify" else []
        )
        if changes:
            write_consents(
                conn,
                profile,
                graph.profiles_of(graph.customer_of(profile)),
                changes,
                origin="event",
                source_id=t.source_id,
                at=t.occurred_at,
                evidence={"event_id": str(t.event_id), "channel": t.channel},
            )
    if attributed:
        ins = dialect_insert(conn, event_profiles).on_conflict_do_nothing()
        conn.execute(ins, attributed)
    result.attributed = len(attributed)
    return result


def better_spelling(a: str, b: str) -> str:
    """Of two spellings of one value, the more informative: mixed case, then accents."""

    def score(v: str) -> tuple[int, int]:
        return (int(not v.islower() and not v.isupper()), sum(1 for c in v if ord(c) > 127))

    return b if score(b) > score(a) else a


def write_observations(conn: Connection, seen: Sequence[Observation]) -> None:
    """Upsert observations: one row per (profile, attribute, folded value, source)."""
    upsert_observations(conn, merge_observations(seen))


def merge_observations(seen: Sequence[Observation]) -> list[dict[str, Any]]:
    """Observations as rows of ``id_observations``: one per (profile, attribute, folded
    value, source), counted, with the better spelling and the first and last time seen."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for o in seen:
        key = (o.profile_id, o.attribute, fold(o.value)[:320] or o.value[:320], o.source_id)
        row = merged.get(key)
        if row is None:
            merged[key] = {
                "profile_id": o.profile_id,
                "attribute": o.attribute,
                "folded": key[2],
                "source_id": o.source_id,
                "value": o.value[:320],
                "channel": o.channel,
                "origin": o.origin,
                "count": 1,
                "first_seen_at": o.at,
                "last_seen_at": o.at,
            }
        else:
            row["count"] += 1
            row["value"] = better_spelling(row["value"], o.value[:320])
            row["last_seen_at"] = max(row["last_seen_at"], o.at)
            row["first_seen_at"] = min(row["first_seen_at"], o.at)
    return list(merged.values())


def upsert_observations(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Add rows made by ``merge_observations`` to those stored (counts add up)."""
    if not rows:
        return
    ins = dialect_insert(conn, observations)
    ex = ins.excluded
    stmt = ins.on_conflict_do_update(
        index_elements=["profile_id", "attribute", "folded", "source_id"],
        set_={
            "count": observations.c.count + ex.count,
            # Keep the better-written spelling of the same value: one with mixed case wins
            # over "lucia" or "LUCIA".
            "value": sa.case(
                (
                    sa.or_(
                        observations.c.value == sa.func.lower(observations.c.value),
                        observations.c.value == sa.func.upper(observations.c.value),
                    ),
                    ex.value,
                ),
                else_=observations.c.value,
            ),
            "last_seen_at": sa.case(
                (ex.last_seen_at >= observations.c.last_seen_at, ex.last_seen_at),
                else_=observations.c.last_seen_at,
            ),
            "first_seen_at": sa.case(
                (ex.first_seen_at < observations.c.first_seen_at, ex.first_seen_at),
                else_=observations.c.first_seen_at,
            ),
        },
    )
    conn.execute(stmt, rows)
