"""What the review page shows of a candidate pair: both customers side by side and, field
by field, the two values, how alike the model found them and how much that counted for or
against their being one person. No queries here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trayecto import identity
from trayecto.web.console._i18n import N_, Formatter
from trayecto.web.console._present import FIELD_LABELS, LEVEL_LABELS, Labels

__all__ = ["FIELD_LABELS", "LEVEL_LABELS", "STATUS_LABELS", "candidate", "status_label"]

STATUS_LABELS = {
    "pending": N_("waiting for review"),
    "accepted": N_("merged"),
    "rejected": N_("kept apart"),
    "auto_merged": N_("merged automatically"),
    "refused": N_("refused by the safety rules"),
}

#: A field whose weight is this close to zero neither supports nor contradicts the match.
NEUTRAL = 0.05
#: Bits of evidence that fill half of a field's bar (the other half is for the opposite).
BAR_FULL = 6.0


def status_label(lb: Labels, status: str) -> str:
    return lb.of(STATUS_LABELS, status)


def _value(fmt: Formatter, field: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = str(value)
    if field == "phone":
        return " · ".join(fmt.phone(p) if p.startswith("+") else p for p in text.split(" · "))
    if field == "birth_date":
        return fmt.date_value(text)
    return text


def _side(c: identity.CustomerBrief, fmt: Formatter) -> dict[str, Any]:
    place = " ".join(x for x in (c.postcode, c.city) if x)
    facts = [
        x
        for x in (
            c.email,
            fmt.phone(c.phone) if c.phone else None,
            fmt.date_value(c.birth_date) if c.birth_date else None,
            ", ".join(x for x in (c.address, place) if x) or None,
        )
        if x
    ]
    return {
        "id": str(c.id),
        "name": c.display_name,
        "href": f"/console/customers/{c.id}",
        "facts": facts,
        "active": c.status == "active",
    }


def _bar(weight: float) -> dict[str, float]:
    """A diverging bar in an SVG whose view box runs from -50 to 50."""
    width = round(min(abs(weight) / BAR_FULL, 1.0) * 50, 1)
    return {"x": 0.0 if weight >= 0 else -width, "width": width}


def _fields(
    evidence: Sequence[Mapping[str, Any]], lb: Labels, fmt: Formatter
) -> list[dict[str, Any]]:
    rows = []
    for e in evidence:
        field = str(e.get("field", ""))
        weight = float(e.get("weight") or 0.0)
        verdict = "agree" if weight > NEUTRAL else "disagree" if weight < -NEUTRAL else "neutral"
        rows.append(
            {
                "field": field,
                "label": lb.of(FIELD_LABELS, field),
                "left": _value(fmt, field, e.get("left")),
                "right": _value(fmt, field, e.get("right")),
                "level": lb.of(LEVEL_LABELS, str(e.get("level") or ""), fallback="—"),
                "weight": fmt.signed(weight),
                "verdict": verdict,
                "bar": _bar(weight),
            }
        )
    return rows


def candidate(c: identity.Candidate, lb: Labels, fmt: Formatter) -> dict[str, Any]:
    """One pair for the page. The fields' weights and the prior (how likely any two
    customers are one person before looking at them) add up to the total match weight."""
    fields = _fields(c.evidence, lb, fmt)
    prior = c.match_weight - sum(float(e.get("weight") or 0.0) for e in c.evidence)
    return {
        "id": str(c.id),
        "status": c.status,
        "status_label": status_label(lb, c.status),
        "probability": fmt.percent(c.probability),
        "weight": fmt.signed(c.match_weight),
        "prior": fmt.signed(prior),
        "prior_bar": _bar(prior),
        "created": fmt.when(c.created_at),
        "created_iso": fmt.iso(c.created_at),
        "one_already": c.a.id == c.b.id,
        "a": _side(c.a, fmt),
        "b": _side(c.b, fmt),
        "fields": fields,
        "agree": sum(1 for f in fields if f["verdict"] == "agree"),
        "disagree": sum(1 for f in fields if f["verdict"] == "disagree"),
    }
