"""The identity graph: deterministic stitching with guard rails, merge and unmerge.

All work happens inside the caller's transaction through a ``Graph``, which caches what it
has read (identifier owners, profile → customer, identifier counts per customer) so that a
batch of thousands of events costs few queries.

Rules, in the order they apply to one message's identifiers:

1. The message joins the profile that owns its highest-priority *strong* identifier; if no
   strong identifier is known yet, a new profile is made for the new ones; a message with
   only weak identifiers joins the owner of the first one, or a new profile.
2. New identifiers are added to that profile unless the customer would then hold more
   distinct values of a type than ``max_per_profile`` allows; those go to a profile of their
   own and the refused link is recorded (``max_per_profile``).
3. Every other customer owning one of the message's identifiers is linked to it — a merge —
   unless the union breaks ``max_per_profile``, or the only evidence is weak (an anonymous
   id, a device) while both customers already hold strong identifiers: a shared shop
   tablet never fuses two known people. Refusals are recorded and the weak identifier is
   marked shared, after which it attributes nothing on its own.

Before all three, a customer reached only through identifiers a household shares in
practice (``IdRule.corroborate``: web account, customer number, phone) is set aside when
the message's first name or birth date contradicts it (``_corroborate``): the message
keeps a profile of its own and the refused link is recorded (``conflicting_attributes``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from trayecto.db import bulk_insert
from trayecto.identity._clusters import components
from trayecto.identity._corroborate import KnownAttributes
from trayecto.identity._rules import RULES, Identifier, IdType
from trayecto.identity._tables import customers, identities, links, profiles, refusals
from trayecto.kernel import NotFoundError, ValidationError, new_id, utcnow

__all__ = ["Graph"]


class Graph:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._owner: dict[Identifier, UUID | None] = {}
        self._shared: set[Identifier] = set()
        self._customer: dict[UUID, UUID] = {}
        self._counts: dict[UUID, dict[str, set[str]]] = {}
        self.dirty: set[UUID] = set()  # customers whose golden record must be recomputed
        self.retired: set[UUID] = set()  # customer ids merged away in this batch
        # Write-behind: new profiles, customers and identities are inserted in bulk, before
        # any statement that could read or update them (like an ORM's autoflush).
        self._new_profiles: list[dict[str, Any]] = []
        self._new_customers: list[dict[str, Any]] = []
        self._new_identities: list[dict[str, Any]] = []
        self._new_links: list[dict[str, Any]] = []
        self._new_refusals: list[dict[str, Any]] = []
        # Merges not yet written, in order, and where each merged-away customer went.
        self._merges: list[dict[str, Any]] = []
        self._redirect: dict[UUID, UUID] = {}
        #: Names and birth dates per customer, for identifiers that need corroboration.
        self.known = KnownAttributes(conn, self.flush)

    def flush(self) -> None:
        """Write everything pending, in an order that keeps the store consistent."""
        for table, rows in (
            (profiles, self._new_profiles),
            (customers, self._new_customers),
            (identities, self._new_identities),
            (links, self._new_links),
            (refusals, self._new_refusals),
        ):
            if rows:
                bulk_insert(self.conn, table, rows)
                rows.clear()
        if self._merges:
            # In order: a customer merged twice in one batch ends up where the last went.
            self.conn.execute(
                profiles.update()
                .where(profiles.c.customer_id == sa.bindparam("gone"))
                .values(customer_id=sa.bindparam("keep")),
                self._merges,
            )
            self.conn.execute(
                customers.update()
                .where(customers.c.id == sa.bindparam("gone"))
                .values(
                    status="merged", merged_into=sa.bindparam("keep"), updated_at=sa.bindparam("at")
                ),
                self._merges,
            )
            self._merges = []

    # --- reads, cached -------------------------------------------------------------------

    def prefetch(self, ids: Iterable[Identifier]) -> None:
        """Look up the owners of many identifiers at once (a batch's worth)."""
        missing = [i for i in ids if i not in self._owner]
        for start in range(0, len(missing), 500):
            self._lookup(missing[start : start + 500])
        owned = {o for i in missing if (o := self._owner.get(i)) is not None}
        unknown = [p for p in owned if p not in self._customer]
        for start in range(0, len(unknown), 500):
            part = unknown[start : start + 500]
            rows = self.conn.execute(
                sa.select(profiles.c.id, profiles.c.customer_id).where(profiles.c.id.in_(part))
            ).all()
            self._customer.update({r.id: r.customer_id for r in rows})

    def owners(self, ids: Sequence[Identifier]) -> dict[Identifier, UUID]:
        missing = [i for i in ids if i not in self._owner]
        if missing:
            self._lookup(missing)
        return {i: o for i in ids if (o := self._owner[i]) is not None}

    def _lookup(self, missing: Sequence[Identifier]) -> None:
        if missing:
            by_type: dict[str, list[str]] = defaultdict(list)
            for kind, value in missing:
                by_type[kind.value].append(value)
            for kind_s, values in by_type.items():
                rows = self.conn.execute(
                    sa.select(
                        identities.c.value, identities.c.profile_id, identities.c.shared
                    ).where(identities.c.type == kind_s, identities.c.value.in_(values))
                ).all()
                found = {r.value: r for r in rows}
                for v in values:
                    key = (IdType(kind_s), v)
                    row = found.get(v)
                    self._owner[key] = row.profile_id if row else None
                    if row is not None and row.shared:
                        self._shared.add(key)

    def customer_of(self, profile_id: UUID) -> UUID:
        cid = self._customer.get(profile_id)
        if cid is None:
            cid = self.conn.execute(
                sa.select(profiles.c.customer_id).where(profiles.c.id == profile_id)
            ).scalar_one()
        while cid in self._redirect:
            cid = self._redirect[cid]
        self._customer[profile_id] = cid
        return cid

    def profiles_of(self, customer_id: UUID) -> list[UUID]:
        self.flush()
        return list(
            self.conn.execute(
                sa.select(profiles.c.id).where(profiles.c.customer_id == customer_id)
            ).scalars()
        )

    def prefetch_customers(self, profile_ids: Iterable[UUID]) -> None:
        """Read in a few queries what linking many profiles will need: each profile's
        customer and each customer's identifier values (a batch of probabilistic matches
        links thousands of pairs; one query per pair would dominate)."""
        wanted = set(profile_ids)
        todo = [p for p in wanted if p not in self._customer]
        for start in range(0, len(todo), 500):
            part = todo[start : start + 500]
            rows = self.conn.execute(
                sa.select(profiles.c.id, profiles.c.customer_id).where(profiles.c.id.in_(part))
            ).all()
            self._customer.update({r.id: r.customer_id for r in rows})
        cids = list({self.customer_of(p) for p in wanted} - set(self._counts))
        if cids:
            self.flush()
        for start in range(0, len(cids), 500):
            part = cids[start : start + 500]
            found: dict[UUID, dict[str, set[str]]] = {c: defaultdict(set) for c in part}
            for r in self.conn.execute(
                sa.select(profiles.c.customer_id, identities.c.type, identities.c.value)
                .join(profiles, profiles.c.id == identities.c.profile_id)
                .where(profiles.c.customer_id.in_(part))
            ):
                found[r.customer_id][r.type].add(r.value)
            self._counts.update(found)

    def _values(self, customer_id: UUID) -> dict[str, set[str]]:
        vals = self._counts.get(customer_id)
        if vals is None:
            self.flush()
            rows = self.conn.execute(
                sa.select(identities.c.type, identities.c.value)
                .join(profiles, profiles.c.id == identities.c.profile_id)
                .where(profiles.c.customer_id == customer_id)
            ).all()
            vals = defaultdict(set)
            for r in rows:
                vals[r.type].add(r.value)
            self._counts[customer_id] = vals
        return vals

    def _has_strong(self, customer_id: UUID) -> bool:
        return any(RULES[IdType(t)].strong and v for t, v in self._values(customer_id).items())

    def is_shared(self, ident: Identifier) -> bool:
        return ident in self._shared

    # --- writes ----------------------------------------------------------------------------

    def new_profile(self, at: datetime) -> UUID:
        pid = new_id()
        self._new_profiles.append({"id": pid, "customer_id": pid, "created_at": at})
        self._new_customers.append({"id": pid, "status": "active", "golden": {}, "updated_at": at})
        self._customer[pid] = pid
        self._counts[pid] = defaultdict(set)
        self.known.fresh(pid)
        self.dirty.add(pid)
        return pid

    def attach(
        self,
        profile_id: UUID,
        ids: Iterable[Identifier],
        at: datetime,
        channel: str | None,
        source_id: UUID | None,
    ) -> None:
        rows = [
            {
                "type": k.value,
                "value": v,
                "profile_id": profile_id,
                "channel": channel,
                "source_id": source_id,
                "shared": False,
                "first_seen_at": at,
            }
            for k, v in ids
        ]
        if not rows:
            return
        self._new_identities.extend(rows)
        cid = self.customer_of(profile_id)
        vals = self._values(cid)
        for k, v in ids:
            self._owner[(k, v)] = profile_id
            vals[k.value].add(v)
        self.dirty.add(cid)

    def would_exceed(self, customer_id: UUID, ids: Iterable[Identifier]) -> IdType | None:
        vals = self._values(customer_id)
        extra: dict[str, set[str]] = defaultdict(set)
        for k, v in ids:
            if v not in vals.get(k.value, ()):
                extra[k.value].add(v)
        for t, new in extra.items():
            if len(vals.get(t, set()) | new) > RULES[IdType(t)].max_per_profile:
                return IdType(t)
        return None

    def refuse(
        self, a: UUID, b: UUID, rule: str, reason: str, evidence: dict[str, Any], at: datetime
    ) -> None:
        self._new_refusals.append(
            {
                "id": new_id(),
                "a_profile_id": a,
                "b_profile_id": b,
                "rule": rule,
                "reason": reason,
                "evidence": evidence,
                "created_at": at,
            }
        )

    def mark_shared(self, ident: Identifier) -> None:
        if ident in self._shared:
            return
        self.flush()
        self._shared.add(ident)
        self.conn.execute(
            identities.update()
            .where(identities.c.type == ident[0].value, identities.c.value == ident[1])
            .values(shared=True)
        )

    def try_link(
        self,
        a: UUID,
        b: UUID,
        evidence: Sequence[Identifier],
        at: datetime,
        *,
        kind: str = "deterministic",
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> bool:
        """Link profiles ``a`` and ``b`` (merging their customers) unless a rule forbids it."""
        ca, cb = self.customer_of(a), self.customer_of(b)
        if ca == cb:
            return True
        shown = [f"{k.value}:{v}" for k, v in evidence]
        ev: dict[str, Any] = {"identifiers": shown, **(details or {})}
        strong = any(RULES[k].strong for k, _ in evidence)
        if kind == "deterministic" and not strong and self._has_strong(ca) and self._has_strong(cb):
            for ident in evidence:
                self.mark_shared(ident)
            self.refuse(
                a,
                b,
                "weak_identifier",
                "only a weak identifier (shared device or session) links two known customers",
                ev,
                at,
            )
            return False
        union = self._values(ca)
        other = self._values(cb)
        for t in set(union) | set(other):
            n = len(union.get(t, set()) | other.get(t, set()))
            if n > RULES[IdType(t)].max_per_profile:
                self.refuse(
                    a,
                    b,
                    "max_per_profile",
                    f"the merged customer would hold {n} values of {t}",
                    ev | {"type": t},
                    at,
                )
                return False
        self._new_links.append(
            {
                "id": new_id(),
                "a_profile_id": a,
                "b_profile_id": b,
                "kind": kind,
                "reason": reason
                or ("shared strong identifier" if strong else "anonymous activity identified"),
                "evidence": ev,
                "created_at": at,
                "removed_at": None,
                "removed_reason": None,
            }
        )
        self._merge_customers(ca, cb, at)
        return True

    def _merge_customers(self, ca: UUID, cb: UUID, at: datetime) -> None:
        keep, gone = (ca, cb) if ca < cb else (cb, ca)
        merged = self._values(keep)
        for t, vs in self._values(gone).items():
            merged[t] |= vs
        self._merges.append({"gone": gone, "keep": keep, "at": at})
        self._redirect[gone] = keep
        self._counts.pop(gone, None)
        self.known.merge(keep, gone)
        self.dirty.discard(gone)
        self.retired.add(gone)
        self.dirty.add(keep)

    # --- unmerge ---------------------------------------------------------------------------

    def unlink(self, link_id: UUID, reason: str, at: datetime | None = None) -> list[UUID]:
        """Remove a link and split its customer into the components that remain.

        Each component takes the id of its oldest profile, so a merge followed by its
        unmerge gives both customers back their ids, identities, events and golden records.
        Returns the resulting customer ids.
        """
        at = at or utcnow()
        self.flush()
        row = self.conn.execute(sa.select(links).where(links.c.id == link_id)).first()
        if row is None:
            raise NotFoundError("no such merge", code="merge_not_found", field="link_id")
        if row.removed_at is not None:
            raise ValidationError(
                "this merge was already undone", code="merge_already_undone", field="link_id"
            )
        self.conn.execute(
            links.update()
            .where(links.c.id == link_id)
            .values(removed_at=at, removed_reason=reason[:500])
        )
        cluster = self.customer_of(row.a_profile_id)
        return self.recluster(cluster, at)

    def recluster(self, customer_id: UUID, at: datetime) -> list[UUID]:
        self.flush()
        members = list(
            self.conn.execute(
                sa.select(profiles.c.id).where(profiles.c.customer_id == customer_id)
            ).scalars()
        )
        edges = self.conn.execute(
            sa.select(links.c.a_profile_id, links.c.b_profile_id).where(
                links.c.removed_at.is_(None), links.c.a_profile_id.in_(members)
            )
        ).all()
        result: list[UUID] = []
        for comp in components(members, edges):
            cid = min(comp)
            result.append(cid)
            self.conn.execute(
                profiles.update().where(profiles.c.id.in_(comp)).values(customer_id=cid)
            )
            self.conn.execute(
                customers.update()
                .where(customers.c.id == cid)
                .values(status="active", merged_into=None, updated_at=at)
            )
            for p in comp:
                self._customer[p] = cid
            self._redirect.pop(cid, None)
            self._counts.pop(cid, None)
            self.known.forget(cid)
            self.dirty.add(cid)
            self.retired.discard(cid)
        return result
