"""Corroboration: identifiers that people share in practice link only when the names agree.

A household shares a web account, a customer number, a landline. Such an identifier is
still strong evidence that a message belongs to a customer, unless the message says who
it is and that contradicts the customer: another first name (not a typo, a short form,
a nickname or a first and last name typed into each other's field), or another birth
date (not a slip: one digit off, two digits or day and month swapped). Which identifier
types need this is a rule of the type (``IdRule.corroborate``); a missing value on either
side is no evidence and never blocks.

The comparisons mirror the probabilistic model's "different first names" and "different
birth dates" vetoes (``_match_model``): Jaro-Winkler as DuckDB computes it, one edit, a
shared word, a prefix.
"""

from __future__ import annotations

import inspect
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from rapidfuzz.distance import OSA, JaroWinkler
from sqlalchemy.engine import Connection

from trayecto.identity._rules import fold
from trayecto.identity._tables import observations, profiles

__all__ = [
    "CHECKED",
    "KnownAttributes",
    "contradictions",
    "jaro_winkler",
    "same_birth_date",
    "same_first_name",
]

#: What a message and a customer are compared on (last names only to recognise a swap).
CHECKED = ("first_name", "last_name", "birth_date")

# Common Spanish short forms that share no letters with the full name (those that do,
# "Manu"/"Manuel", "Edu"/"Eduardo", are found by prefix or Jaro-Winkler).
_NICKNAMES: dict[str, tuple[str, ...]] = {
    "pepe": ("jose",),
    "pepa": ("josefa",),
    "paco": ("francisco",),
    "paca": ("francisca",),
    "curro": ("francisco",),
    "quique": ("enrique",),
    "nacho": ("ignacio",),
    "chema": ("jose maria",),
    "chus": ("maria jesus", "jesus"),
    "lola": ("dolores", "maria dolores"),
    "loli": ("dolores", "maria dolores"),
    "concha": ("concepcion", "maria concepcion"),
    "conchi": ("concepcion", "maria concepcion"),
    "charo": ("rosario", "maria rosario"),
    "pili": ("pilar", "maria pilar"),
    "maite": ("maria teresa",),
    "merche": ("mercedes",),
    "manolo": ("manuel",),
    "lolo": ("manuel",),
    "chelo": ("consuelo",),
    "rocio": ("maria rocio",),
    "nando": ("fernando",),
    "fito": ("adolfo",),
    "toni": ("antonio",),
    "tono": ("antonio",),
    "kike": ("enrique",),
    "juanma": ("juan manuel",),
    "juanjo": ("juan jose",),
    "josemi": ("jose miguel",),
    "mariajo": ("maria jose",),
}


def jaro_winkler(a: str, b: str) -> float:
    """Jaro-Winkler similarity (RapidFuzz), the same as DuckDB's ``jaro_winkler_similarity``
    on the folded names compared here: the common-prefix bonus (0.1 per letter, up to 4)
    only above a Jaro similarity of 0.7."""
    return float(JaroWinkler.similarity(a, b))


def _one_edit(a: str, b: str) -> bool:
    """At most one insertion, deletion, substitution or swap of two neighbours (optimal
    string alignment distance ≤ 1)."""
    return bool(OSA.distance(a, b, score_cutoff=1) <= 1)


def _formal(name: str) -> set[str]:
    return {name, *_NICKNAMES.get(name, ())}


def same_first_name(a: str, b: str) -> bool:
    """Whether two folded first names may be one person's: equal, one typo, similar
    (Jaro-Winkler ≥ 0.88), a word in common ("jose luis"/"jose"), one the start of the
    other ("manu"/"manuel"), or a known short form ("pepe"/"jose")."""
    if not a or not b:
        return True
    if _one_edit(a, b) or jaro_winkler(a, b) >= 0.88:
        return True
    if {w for w in a.split() if len(w) >= 3} & {w for w in b.split() if len(w) >= 3}:
        return True
    if min(len(a), len(b)) >= 3 and (a.startswith(b) or b.startswith(a)):
        return True
    return bool(_formal(a) & _formal(b))


def same_birth_date(a: str, b: str) -> bool:
    """Whether two ISO dates may be one person's: equal, day and month swapped, or one
    slip of a digit (one wrong, or two neighbours swapped: 1987 → 1978)."""
    if a == b or _one_edit(a, b):
        return True
    return a[:4] == b[:4] and a[5:7] == b[8:10] and a[8:10] == b[5:7]


def _normal(attribute: str, value: str) -> str:
    return value.strip()[:10] if attribute == "birth_date" else fold(value)


def _swapped(first: str, last: str, known: Mapping[str, set[str]]) -> bool:
    """First and last name typed into each other's field."""
    return any(same_first_name(last, f) for f in known.get("first_name", ())) and any(
        jaro_winkler(first, k) >= 0.92 for k in known.get("last_name", ())
    )


def contradictions(
    known: Mapping[str, set[str]], message: Mapping[str, str], fields: Iterable[str]
) -> list[dict[str, Any]]:
    """What in ``message`` (attributes as read from a record or traits) contradicts a
    customer ``known`` as these (normalised) values, among ``fields``: empty when nothing
    does. Each item names the attribute, the message's value, the customer's values and
    the best similarity found."""
    out: list[dict[str, Any]] = []
    wanted = set(fields)
    first = _normal("first_name", message.get("first_name", ""))
    firsts = known.get("first_name", set())
    if "first_name" in wanted and first and firsts:
        last = _normal("last_name", message.get("last_name", ""))
        if not any(same_first_name(first, k) for k in firsts) and not (
            last and _swapped(first, last, known)
        ):
            out.append(
                {
                    "attribute": "first_name",
                    "value": message["first_name"],
                    "known": sorted(firsts)[:5],
                    "similarity": round(max(jaro_winkler(first, k) for k in firsts), 3),
                }
            )
    birth = _normal("birth_date", message.get("birth_date", ""))
    births = known.get("birth_date", set())
    if (
        "birth_date" in wanted
        and birth
        and births
        and not any(same_birth_date(birth, k) for k in births)
    ):
        out.append(
            {
                "attribute": "birth_date",
                "value": birth,
                "known": sorted(births)[:5],
                "similarity": round(max(jaro_winkler(birth, k) for k in births), 3),
            }
        )
    return out


class KnownAttributes:
    """Per customer, the names and birth dates it is known by: read lazily from the
    observations of all its profiles, plus what this batch observed (observations are
    written at the end of a batch, and a household's two records often share one)."""

    def __init__(self, conn: Connection, before_read: Callable[[], None]) -> None:
        self.conn = conn
        # The graph owns this object and passes its own ``flush``: held strongly, that
        # bound method would make every graph a reference cycle, freed only by the cyclic
        # garbage collector (which bulk imports pause).
        self._before_read: Callable[[], Callable[[], None] | None] = (
            weakref.WeakMethod(before_read)
            if inspect.ismethod(before_read)
            else lambda: before_read
        )
        self._stored: dict[UUID, dict[str, set[str]]] = {}
        self._batch: dict[UUID, dict[str, set[str]]] = {}

    def fresh(self, customer_id: UUID) -> None:
        """A customer made in this batch: nothing stored to read."""
        self._stored[customer_id] = defaultdict(set)

    def add(self, customer_id: UUID, message: Mapping[str, str]) -> None:
        for attr in CHECKED:
            value = message.get(attr)
            if value and (norm := _normal(attr, value)):
                self._batch.setdefault(customer_id, defaultdict(set))[attr].add(norm)

    def of(self, customer_id: UUID) -> dict[str, set[str]]:
        stored = self._stored.get(customer_id)
        if stored is None:
            if (before_read := self._before_read()) is not None:
                before_read()  # pending merges and profiles must be visible
            stored = defaultdict(set)
            rows = self.conn.execute(
                sa.select(observations.c.attribute, observations.c.folded, observations.c.value)
                .join(profiles, profiles.c.id == observations.c.profile_id)
                .where(profiles.c.customer_id == customer_id, observations.c.attribute.in_(CHECKED))
            ).all()
            for r in rows:
                stored[r.attribute].add(r.value[:10] if r.attribute == "birth_date" else r.folded)
            self._stored[customer_id] = stored
        out: dict[str, set[str]] = defaultdict(set)
        for part in (stored, self._batch.get(customer_id, {})):
            for attr, values in part.items():
                out[attr] |= values
        return out

    def merge(self, keep: UUID, gone: UUID) -> None:
        a, b = self._stored.pop(keep, None), self._stored.pop(gone, None)
        if a is not None and b is not None:
            for attr, values in b.items():
                a[attr] |= values
            self._stored[keep] = a
        # else: read again when needed, once the merge is flushed
        moved = self._batch.pop(gone, None)
        if moved:
            mine = self._batch.setdefault(keep, defaultdict(set))
            for attr, values in moved.items():
                mine[attr] |= values

    def forget(self, customer_id: UUID) -> None:
        self._stored.pop(customer_id, None)
        self._batch.pop(customer_id, None)
