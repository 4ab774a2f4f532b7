"""Connected components of a customer's profiles under its remaining links (for unmerge)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from uuid import UUID

__all__ = ["components"]


def components(members: Sequence[UUID], edges: Iterable[tuple[UUID, UUID]]) -> list[list[UUID]]:
    """The components of ``members`` under ``edges`` (edges that leave ``members`` are
    ignored), in order of their oldest (smallest) profile id."""
    member_set = set(members)
    adj: dict[UUID, set[UUID]] = defaultdict(set)
    for a, b in edges:
        if a in member_set and b in member_set:
            adj[a].add(b)
            adj[b].add(a)
    seen: set[UUID] = set()
    result: list[list[UUID]] = []
    for start in sorted(members):
        if start in seen:
            continue
        comp, stack = [], [start]
        seen.add(start)
        while stack:
            p = stack.pop()
            comp.append(p)
            for q in adj[p] - seen:
                seen.add(q)
                stack.append(q)
        result.append(comp)
    return result
