"""The exact optimiser behind sourcing: an uncapacitated facility-location problem over an
order's lines, solved by depth-first branch and bound (see ``optimise``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

INF = float("inf")

__all__ = ["INF", "optimise", "search", "singles_of"]


# --- the exact optimiser -------------------------------------------------------------------


def optimise(
    options: Sequence[Sequence[tuple[int, float]]],
    fixed: Sequence[float],
    split_penalty: float,
    max_locations: int = 99,
) -> tuple[float, list[int]]:
    """Minimise ``Σ_l v[l, j_l] + Σ_{j used} fixed[j] + split_penalty * (|used| - 1)``.

    ``options[l]`` lists ``(location index, variable cost)`` of the locations that can
    serve line ``l`` whole. Exact: depth-first branch and bound over lines (fewest options
    first), seeded by the best single location; returns ``(cost, location per line)`` or
    ``(inf, [])`` when no assignment exists."""
    costs = [dict(o) for o in options]
    opens = [[(v + fixed[j], j, v) for j, v in o] for o in options]
    return search(costs, opens, fixed, split_penalty, max_locations)


def singles_of(
    costs: Sequence[Mapping[int, float]], fixed: Sequence[float]
) -> list[tuple[float, int]]:
    """Every location serving all lines alone, with its cost, cheapest first."""
    if not costs:
        return []
    first = min(costs, key=len)
    out = []
    for j in first:
        total = fixed[j]
        for line in costs:
            w = line.get(j)
            if w is None:
                break
            total += w
        else:
            out.append((total, j))
    out.sort()
    return out


def search(
    costs: Sequence[Mapping[int, float]],
    opens: Sequence[list[tuple[float, int, float]]],
    fixed: Sequence[float],
    split_penalty: float,
    max_locations: int,
    singles: list[tuple[float, int]] | None = None,
) -> tuple[float, list[int]]:
    """``optimise`` on prepared lines: per line, location -> variable cost, and the list of
    (variable + fixed cost, location, variable cost) to open a location for it."""
    n = len(costs)
    if n == 0:
        return 0.0, []
    if not all(costs):
        return INF, []
    order = sorted(range(n), key=lambda i: len(costs[i]))
    line_costs = [costs[i] for i in order]
    to_open = [sorted(opens[i]) for i in order]  # cheapest to open first
    min_v = [min(c.values()) for c in line_costs]
    # tail[k] = Σ_{l ≥ k} min_v[l]: a lower bound for the lines still to place
    tail = [0.0] * (n + 1)
    for k in range(n - 1, -1, -1):
        tail[k] = tail[k + 1] + min_v[k]

    best = INF
    best_pick: list[int] = []
    if singles is None:
        singles = singles_of(costs, fixed)
    if singles:  # seed: the best single location that serves every line
        best, best_pick = singles[0][0], [singles[0][1]] * n

    pick = [0] * n
    used = [0] * len(fixed)  # lines assigned to each location
    opened: list[int] = []  # the locations in use, in the order they were opened

    def dfs(k: int, cost: float) -> None:
        nonlocal best, best_pick
        if k == n:
            if cost < best - 1e-12:
                best, best_pick = cost, pick.copy()
            return
        rest = tail[k + 1]
        limit = best - 1e-12 - rest
        if cost + min_v[k] >= limit:
            return
        line = line_costs[k]
        # a location already in use costs only its variable cost...
        for j in opened[:]:
            v = line.get(j)
            if v is None or cost + v >= limit:
                continue
            pick[k] = j
            used[j] += 1
            dfs(k + 1, cost + v)
            used[j] -= 1
            limit = best - 1e-12 - rest
        # ... a new one its fixed cost and the split penalty too (cheapest first: stop at
        # the first that cannot beat the best plan found so far)
        if len(opened) >= max_locations:
            return
        base = cost + (split_penalty if opened else 0.0)
        for vf, j, _ in to_open[k]:
            c = base + vf
            if c >= limit:
                break
            if used[j]:
                continue
            pick[k] = j
            used[j] = 1
            opened.append(j)
            dfs(k + 1, c)
            opened.pop()
            used[j] = 0
            limit = best - 1e-12 - rest

    dfs(0, 0.0)
    dfs = None  # type: ignore[assignment]  # it refers to itself: a cycle for the collector
    if not best_pick:
        return INF, []
    out = [0] * n
    for pos, i in enumerate(order):
        out[i] = best_pick[pos]
    return best, out
