"""The sourcing explanation for people: every location considered, why it was left out or
chosen, what the chosen plan cost and of what, the next best plan, split lines, planned
transfers; then each re-sourcing the same way. Built from the explanation the order
stores (``commerce.get_order(...)["sourcing"]`` and its ``order_resourced`` events).

The cost components are recomputed from the stored policy, distances and units; they are
shown only when they add up to the cost the engine stored, so the page never shows a
breakdown that is not the engine's. No queries here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trayecto.web.console._commerce_labels import LOCATION_TYPE_LABELS, METHOD_LABELS
from trayecto.web.console._i18n import N_, Formatter
from trayecto.web.console._order_present import Places, promise_text
from trayecto.web.console._present import Labels

__all__ = ["EXCLUSION_LABELS", "explanations"]

#: Why the engine left a location out (``_sourcing._exclusion`` and friends).
EXCLUSION_LABELS = {
    "inactive": N_("Closed down (inactive)."),
    "a pickup point holds no stock": N_("A pickup point holds no stock."),
    "cannot ship (no 'ship' capability)": N_("It cannot send parcels (no shipping)."),
    "a drop-ship supplier ships to customers only, not to a shop": N_(
        "A drop-ship supplier sends only to customers' homes, not to a shop."
    ),
    "daily picking capacity used up": N_("Its picking capacity for the day was used up."),
    "closed all week": N_("It is closed every day of the week."),
    "holds none of the order's SKUs": N_("It had none of the order's products available."),
}
_REJECTED_PREFIX = "rejected a group of this order: "
_REJECTED = N_("It rejected a shipment of this order (%(reason)s).")
#: Cost differences below this are rounding (the engine stores costs to 3 decimals).
_TOLERANCE = 0.01


def _why_excluded(lb: Labels, text: str) -> str:
    if text.startswith(_REJECTED_PREFIX):
        return lb._(_REJECTED) % {"reason": text.removeprefix(_REJECTED_PREFIX)}
    return lb.of(EXCLUSION_LABELS, text, fallback=text)


def _units(
    view: Mapping[str, Any], group_ids: set[str], splits: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, int]]:
    """Units each location was given by this plan: location → SKU → units."""
    out: dict[str, dict[str, int]] = {}
    for g in view["fulfilment_groups"]:
        if g["id"] in group_ids:
            held = out.setdefault(g["location_id"], {})
            for ln in g["lines"]:
                held[ln["sku"]] = held.get(ln["sku"], 0) + int(ln["quantity"])
    return out


def _components(
    expl: Mapping[str, Any],
    units: Mapping[str, Mapping[str, int]],
    places: Places,
    lb: Labels,
    fmt: Formatter,
) -> list[dict[str, str]] | None:
    """The chosen plan's cost, term by term, or None when it cannot be rebuilt exactly."""
    _ = lb._
    policy = expl.get("policy") or {}
    by_id = {c["location_id"]: c for c in expl.get("candidates") or []}
    pickup = expl.get("pickup_location_id")
    rows: list[dict[str, str]] = []
    total = 0.0

    def add(label: str, amount: float) -> None:
        nonlocal total
        total += amount
        rows.append({"label": label, "amount": fmt.cost(amount)})

    try:
        for loc_id in expl.get("chosen") or []:
            cand = by_id[loc_id]
            kind = str(cand["type"])
            name = places.name(loc_id)
            taken = units.get(loc_id, {})
            count = sum(taken.values())
            if loc_id == pickup:
                add(_("%(place)s: the pickup shop itself, no parcel") % {"place": name}, 0.0)
            else:
                base = float(policy["shipment_cost"][kind])
                add(_("%(place)s: parcel") % {"place": name}, base)
                km = float(cand.get("distance_km") or 0.0)
                add(
                    _("%(place)s: distance, %(km)s km") % {"place": name, "km": fmt.number(km)},
                    float(cand["shipment_cost"]) - base,
                )
            add(
                _("%(place)s: picking, units: %(units)d") % {"place": name, "units": count},
                float(policy["pick_cost"][kind]) * count,
            )
            if kind == "shop":
                reserve = int(policy["walk_in_reserve"])
                taken_from_reserve = sum(
                    max(0, q - max(0, int(cand["available"].get(sku, 0)) - reserve))
                    for sku, q in taken.items()
                )
                if taken_from_reserve:
                    add(
                        _("%(place)s: taken from the walk-in reserve, units: %(units)d")
                        % {"place": name, "units": taken_from_reserve},
                        float(policy["walk_in_penalty"]) * taken_from_reserve,
                    )
        extra = len(expl.get("chosen") or []) - 1
        if extra > 0:
            add(
                _("Split penalty, shipments beyond the first: %(n)d") % {"n": extra},
                float(policy["split_penalty"]) * extra,
            )
    except (KeyError, TypeError, ValueError):
        return None
    if abs(total - float(expl.get("cost") or 0.0)) > _TOLERANCE:
        return None
    return rows


def _candidates(
    expl: Mapping[str, Any],
    units: Mapping[str, Mapping[str, int]],
    demand: Mapping[str, int],
    places: Places,
    lb: Labels,
    fmt: Formatter,
) -> list[dict[str, Any]]:
    _ = lb._
    chosen = set(expl.get("chosen") or [])
    rows = []
    for c in expl.get("candidates") or []:
        loc_id = c["location_id"]
        available = c.get("available") or {}
        if loc_id in chosen:
            verdict = "chosen"
            taken = units.get(loc_id, {})
            why = _("Chosen: sends %(items)s.") % {
                "items": ", ".join(
                    f"{sku} \N{MULTIPLICATION SIGN} {q}" for sku, q in sorted(taken.items())
                )
                or "—"
            }
        elif c.get("excluded_because"):
            verdict = "excluded"
            why = _why_excluded(lb, str(c["excluded_because"]))
        else:
            verdict = "costlier"
            whole = all(int(available.get(s, 0)) >= q for s, q in demand.items())
            why = (
                _("It could send everything, but every plan using it cost more.")
                if whole
                else _("It had only part of the order; every plan using it cost more.")
            )
        distance = c.get("distance_km")
        rows.append(
            {
                "location_id": loc_id,
                "name": places.name(loc_id),
                "type": lb.of(LOCATION_TYPE_LABELS, c.get("type")),
                "city": places.city(loc_id),
                "distance": None if distance is None else f"{fmt.number(distance)} km",
                "available": ", ".join(f"{s}: {q}" for s, q in sorted(available.items())),
                "shipment_cost": (
                    fmt.cost(c["shipment_cost"]) if c.get("shipment_cost") is not None else None
                ),
                "verdict": verdict,
                "why": why,
            }
        )
    order = {"chosen": 0, "costlier": 1, "excluded": 2}
    rows.sort(key=lambda r: order[r["verdict"]])
    return rows


def _explain(
    expl: Mapping[str, Any],
    group_ids: set[str],
    view: Mapping[str, Any],
    places: Places,
    lb: Labels,
    fmt: Formatter,
) -> dict[str, Any]:
    _ = lb._
    splits = expl.get("splits") or []
    units = _units(view, group_ids, splits)
    demand: dict[str, int] = {}
    for held in units.values():
        for sku, q in held.items():
            demand[sku] = demand.get(sku, 0) + q
    runner = expl.get("runner_up")
    cost = float(expl.get("cost") or 0.0)
    chosen = [places.name(x) for x in expl.get("chosen") or []]
    groups = [g for g in view["fulfilment_groups"] if g["id"] in group_ids]
    return {
        "method": lb.of(METHOD_LABELS, expl.get("method")),
        "pickup": places.name(expl.get("pickup_location_id"))
        if expl.get("pickup_location_id")
        else None,
        "summary": (
            _("One shipment from %(places)s.")
            if len(chosen) == 1
            else _("%(n)d shipments: %(places)s.")
        )
        % {"places": ", ".join(chosen), "n": len(chosen)},
        "cost": fmt.cost(cost),
        "components": _components(expl, units, places, lb, fmt),
        "runner_up": (
            {
                "places": ", ".join(places.name(x) for x in runner.get("locations") or []),
                "cost": fmt.cost(runner["cost"]),
                "more": fmt.cost(float(runner["cost"]) - cost),
            }
            if runner
            else None
        ),
        "splits": [
            {
                "sku": s["sku"],
                "quantity": s["quantity"],
                "pieces": ", ".join(
                    f"{p['quantity']} · {places.name(p['location_id'])}" for p in s["pieces"]
                ),
            }
            for s in splits
        ],
        "transfers": [
            {
                "from": places.name(g["location_id"]),
                "to": places.name(g.get("pickup_location_id")),
                "items": ", ".join(
                    f"{ln['sku']} \N{MULTIPLICATION SIGN} {ln['quantity']}" for ln in g["lines"]
                ),
                "promise": promise_text(
                    lb,
                    fmt,
                    places,
                    g["status"],
                    g["method"],
                    g.get("pickup_location_id"),
                    (g.get("promise") or {}).get("earliest_date"),
                    (g.get("promise") or {}).get("ready_at"),
                ),
            }
            for g in groups
            if g.get("transfer")
        ],
        "candidates": _candidates(expl, units, demand, places, lb, fmt),
    }


def explanations(
    view: Mapping[str, Any], places: Places, lb: Labels, fmt: Formatter
) -> list[dict[str, Any]]:
    """The placement's explanation, then one per re-sourcing, oldest first."""
    out: list[dict[str, Any]] = []
    first = view.get("sourcing") or {}
    original = {
        str(e["group_id"])
        for e in view["history"]
        if e["kind"] == "group_allocated" and not (e.get("detail") or {}).get("resourced_from")
    }
    if first.get("candidates") is not None:
        out.append(
            {"resourced": False, "when": None, **_explain(first, original, view, places, lb, fmt)}
        )
    for e in view["history"]:
        detail = e.get("detail") or {}
        if e["kind"] == "order_resourced" and isinstance(detail.get("sourcing"), Mapping):
            new = {str(g) for g in detail.get("new_groups") or []}
            out.append(
                {
                    "resourced": True,
                    "when": fmt.when(e["at"]),
                    **_explain(detail["sourcing"], new, view, places, lb, fmt),
                }
            )
    return out
