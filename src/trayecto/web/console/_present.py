"""What the console pages show, built from the public faces: labels in the reader's
language, values formatted for people, provenance spelled out. No queries here."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trayecto import access, identity
from trayecto.web.console._commerce_labels import status_label
from trayecto.web.console._i18n import N_, Formatter

__all__ = [
    "CHANNEL_LABELS",
    "ROLE_LABELS",
    "Labels",
    "channel_rows",
    "consents",
    "golden_rows",
    "identity_groups",
    "merges",
    "refusals",
    "summaries",
    "timeline",
]

Gettext = Callable[[str], str]

CHANNEL_LABELS = {
    "web": N_("Web"),
    "app": N_("App"),
    "store": N_("Shop"),
    "marketplace": N_("Marketplace"),
    "call_center": N_("Call centre"),
    "whatsapp": N_("WhatsApp"),
    "social": N_("Social media"),
    "email": N_("Email"),
    "import": N_("Imported records"),
}
#: The order channels are listed in (the identities of imports last).
CHANNEL_ORDER = [c.value for c in access.Channel] + ["import"]

ROLE_LABELS = {
    "admin": N_("Administrator"),
    "marketing": N_("Marketing"),
    "agent": N_("Customer service agent"),
    "store_staff": N_("Shop staff"),
}

ID_TYPE_LABELS = {
    "email": N_("Email"),
    "phone": N_("Phone"),
    "customer_number": N_("Customer number"),
    "loyalty_card": N_("Loyalty card"),
    "online_id": N_("Online account"),
    "pos_id": N_("Shop till customer id"),
    "marketplace_id": N_("Marketplace buyer"),
    "call_center_id": N_("Call centre customer id"),
    "whatsapp_id": N_("WhatsApp number"),
    "social_handle": N_("Social media handle"),
    "email_id": N_("Email platform id"),
    "anonymous_id": N_("Anonymous visitor id"),
    "device_id": N_("Device"),
    "name": N_("Name"),
}

ATTRIBUTE_LABELS = {
    "first_name": N_("First name"),
    "last_name": N_("Last name"),
    "email": N_("Email"),
    "phone": N_("Phone"),
    "birth_date": N_("Birth date"),
    "gender": N_("Gender"),
    "address_line1": N_("Address"),
    "address_line2": N_("Address (line 2)"),
    "postcode": N_("Postcode"),
    "city": N_("City"),
    "region": N_("Region"),
    "country": N_("Country"),
}

#: The fields the model compares (``identity.Candidate.evidence``), in its words.
FIELD_LABELS = {
    "first_name": ATTRIBUTE_LABELS["first_name"],
    "last_name": ATTRIBUTE_LABELS["last_name"],
    "birth_date": ATTRIBUTE_LABELS["birth_date"],
    "address": N_("Address, postcode and city"),
    "email": ATTRIBUTE_LABELS["email"],
    "phone": ATTRIBUTE_LABELS["phone"],
}

#: The comparison levels of the matching model (``identity.latest_model().described``);
#: a level not listed here is shown as the model names it.
LEVEL_LABELS = {
    "exact": N_("exact"),
    "swapped with the last name": N_("swapped with the last name"),
    "swapped with the first name": N_("swapped with the first name"),
    "one typo": N_("one typo"),
    "similar, part or short form": N_("similar, part or short form"),
    "different first names: different people": N_("different first names: different people"),
    "typos": N_("typos"),
    "one surname in common": N_("one surname in common"),
    "different": N_("different"),
    "day and month swapped": N_("day and month swapped"),
    "one digit off": N_("one digit off"),
    "different birth dates: different people": N_("different birth dates: different people"),
    "same address": N_("same address"),
    "similar address, same postcode": N_("similar address, same postcode"),
    "same postcode": N_("same postcode"),
    "same city": N_("same city"),
    "another city": N_("another city"),
    "an email in common": N_("an email in common"),
    "typo in the email": N_("typo in the email"),
    "a number in common": N_("a number in common"),
    "same last 6 digits or one digit off": N_("same last 6 digits or one digit off"),
    "missing on either side": N_("missing on one side"),
}

ATTRIBUTE_ORDER = list(ATTRIBUTE_LABELS)

RULE_LABELS = {
    "most_recent": N_("most recent"),
    "most_trusted": N_("most trusted source"),
    "most_frequent": N_("most frequent"),
}

MERGE_KIND_LABELS = {
    "deterministic": N_("Exact match"),
    "probabilistic": N_("Probable match"),
    "manual": N_("Merged by hand"),
}

MERGE_REASON_LABELS = {
    "shared strong identifier": N_("They share an identifier that belongs to one person."),
    "anonymous activity identified": N_("Anonymous activity was later identified."),
}
_PROBABLE = N_("The matching model found them to be one person (%(p)s probability).")
_BY_HAND = N_("Merged in the review queue by %(who)s.")
_REVIEWED = "accepted in review by "  # how identity words a merge decided in review

REFUSAL_LABELS = {
    "weak_identifier": N_(
        "Only a shared device or session linked two known customers, so they were kept apart."
    ),
    "max_per_profile": N_("The merged customer would have held too many values of one identifier."),
    "conflicting_attributes": N_(
        "Only an identifier a household may share linked them, and the name or birth date "
        "says another person, so they were kept apart."
    ),
}

EVENT_LABELS = {
    "identify": N_("Identified themselves"),
    "page": N_("Viewed a page"),
    "screen": N_("Viewed a screen in the app"),
    "alias": N_("Linked an earlier id"),
    "group": N_("Joined a group"),
}

ORDER_KIND_LABELS = {
    "order_placed": N_("Order placed"),
    "order_status": N_("Order status changed"),
    "group_allocated": N_("Shipment assigned to a location"),
    "group_status": N_("Shipment status changed"),
}

CONSENT_PURPOSE_LABELS = {
    "marketing": N_("Marketing"),
    "analytics": N_("Analytics"),
    "personalisation": N_("Personalisation"),
}

CONSENT_CHANNEL_LABELS = {
    "email": N_("Email"),
    "sms": N_("SMS"),
    "whatsapp": N_("WhatsApp"),
    "push": N_("Push notifications"),
    "phone": N_("Phone calls"),
    "all": N_("All channels"),
}

CONSENT_ORIGIN_LABELS = {
    "event": N_("from an event"),
    "api": N_("through the API"),
    "import": N_("from an import"),
}

_WEAK = {"anonymous_id", "device_id"}


@dataclass(frozen=True)
class Labels:
    """Translated labels for one reader."""

    _: Gettext

    def of(self, table: Mapping[str, str], key: str | None, fallback: str | None = None) -> str:
        if key is None:
            return fallback or "—"
        msg = table.get(key)
        return self._(msg) if msg else (fallback or key.replace("_", " "))

    def channel(self, key: str | None) -> str:
        return self.of(CHANNEL_LABELS, key or "import")

    def role(self, key: str) -> str:
        return self.of(ROLE_LABELS, key)


@dataclass
class Row:
    label: str
    value: str
    extra: dict[str, Any] = field(default_factory=dict)


def _show_value(fmt: Formatter, kind: str, value: Any) -> str:
    text = "" if value is None else str(value)
    if kind in ("phone", "whatsapp_id") and text.startswith("+"):
        return fmt.phone(text)
    if kind == "birth_date":
        return fmt.date_value(text)
    return text


def summaries(
    found: Sequence[identity.CustomerSummary], lb: Labels, fmt: Formatter
) -> list[dict[str, Any]]:
    return [
        {
            "id": str(c.id),
            "name": c.display_name,
            "email": c.email,
            "phone": fmt.phone(c.phone) if c.phone else None,
            "city": c.city,
            "last_seen": fmt.ago(c.last_seen_at) if c.last_seen_at else None,
            "last_seen_full": fmt.when(c.last_seen_at) if c.last_seen_at else None,
            "matched_on": lb.of(ID_TYPE_LABELS, c.matched_on),
        }
        for c in found
    ]


def golden_rows(
    view: identity.CustomerView, names: Mapping[str, str], lb: Labels, fmt: Formatter
) -> list[dict[str, Any]]:
    """Each golden attribute with where it came from: source, channel, when, rule."""
    order = {a: i for i, a in enumerate(ATTRIBUTE_ORDER)}
    rows = []
    for attr, v in sorted(view.golden.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])):
        rows.append(
            {
                "attribute": attr,
                "label": lb.of(ATTRIBUTE_LABELS, attr),
                "value": _show_value(fmt, attr, v.get("value")),
                "source": names.get(str(v.get("source_id") or "")),
                "channel": v.get("channel") or "import",
                "channel_label": lb.channel(v.get("channel")),
                "origin": v.get("origin"),
                "when": fmt.when(v.get("observed_at")),
                "when_iso": fmt.iso(v.get("observed_at")),
                "rule": lb.of(RULE_LABELS, v.get("rule")),
                "count": int(v.get("count") or 0),
                "alternatives": int(v.get("alternatives") or 0),
            }
        )
    return rows


def identity_groups(
    view: identity.CustomerView, names: Mapping[str, str], lb: Labels, fmt: Formatter
) -> list[dict[str, Any]]:
    """Identifiers grouped by the channel they were seen on; anonymous ones apart."""
    groups: dict[str, dict[str, Any]] = {}
    for i in view.identities:
        ch = i.get("channel") or "import"
        g = groups.setdefault(
            ch, {"channel": ch, "label": lb.channel(ch), "strong": [], "weak": []}
        )
        row = {
            "type": lb.of(ID_TYPE_LABELS, i["type"]),
            "value": _show_value(fmt, i["type"], i["value"]),
            "source": names.get(i.get("source_id") or ""),
            "shared": bool(i.get("shared")),
            "since": fmt.when(i.get("first_seen_at")),
        }
        g["weak" if i["type"] in _WEAK or not i.get("strong") else "strong"].append(row)
    rank = {c: n for n, c in enumerate(CHANNEL_ORDER)}
    return sorted(groups.values(), key=lambda g: rank.get(g["channel"], 99))


def channel_rows(view: identity.CustomerView, lb: Labels, fmt: Formatter) -> list[dict[str, Any]]:
    rank = {c: n for n, c in enumerate(CHANNEL_ORDER)}
    rows = []
    for ch, c in sorted(view.channels.items(), key=lambda kv: rank.get(kv[0], 99)):
        rows.append(
            {
                "channel": ch,
                "label": lb.channel(ch),
                "count": int(c.get("events", 0)),
                "events": fmt.number(int(c.get("events", 0))),
                "first": fmt.date(c.get("first_seen_at")),
                "last": fmt.when(c.get("last_seen_at")),
                "last_ago": fmt.ago(c.get("last_seen_at")),
            }
        )
    return rows


def _evidence(evidence: Mapping[str, Any] | None, lb: Labels, fmt: Formatter) -> list[str]:
    """What a merge's or refusal's stored evidence says, in the visitor's words: the shared
    identifiers, the fields the model found alike, the channel and record it came from, the
    attributes that disagreed. Internal ids and scores (shown in the reason) are left out."""
    out: list[str] = []
    for key, value in (evidence or {}).items():
        if key == "identifiers" and isinstance(value, list):
            for item in value:
                kind, _, val = str(item).partition(":")
                out.append(f"{lb.of(ID_TYPE_LABELS, kind)}: {_show_value(fmt, kind, val)}")
        elif key == "fields" and isinstance(value, list):
            for e in value:
                if isinstance(e, Mapping) and float(e.get("weight") or 0.0) > 0:
                    level = lb.of(LEVEL_LABELS, str(e.get("level") or ""), fallback="—")
                    out.append(f"{lb.of(FIELD_LABELS, str(e.get('field', '')))}: {level}")
        elif key == "channel" and isinstance(value, str):
            out.append(lb.channel(value))
        elif key == "record_id" and isinstance(value, str):
            out.append(lb._("record %(id)s") % {"id": value})
        elif key == "type" and isinstance(value, str):
            out.append(lb.of(ID_TYPE_LABELS, value))
        elif key in ATTRIBUTE_LABELS and isinstance(value, str):
            out.append(f"{lb.of(ATTRIBUTE_LABELS, key)}: {value}")
    return out


def _reason(m: identity.Merge, lb: Labels, fmt: Formatter) -> str:
    p = (m.evidence or {}).get("probability")
    if m.kind == "probabilistic" and isinstance(p, int | float):
        return lb._(_PROBABLE) % {"p": fmt.percent(float(p))}
    if m.kind == "manual" and m.reason.startswith(_REVIEWED):
        who = m.reason.removeprefix(_REVIEWED).removeprefix("console:")
        return lb._(_BY_HAND) % {"who": who}
    return lb.of(MERGE_REASON_LABELS, m.reason, fallback=m.reason)


def merges(view: identity.CustomerView, lb: Labels, fmt: Formatter) -> list[dict[str, Any]]:
    return [
        {
            "kind": lb.of(MERGE_KIND_LABELS, m.kind),
            "reason": _reason(m, lb, fmt),
            "evidence": _evidence(m.evidence, lb, fmt),
            "when": fmt.when(m.created_at),
            "undone": fmt.when(m.removed_at) if m.removed_at else None,
        }
        for m in reversed(view.merges)
    ]


def refusals(view: identity.CustomerView, lb: Labels, fmt: Formatter) -> list[dict[str, Any]]:
    return [
        {
            "reason": lb.of(REFUSAL_LABELS, r.get("rule"), fallback=r.get("reason")),
            "evidence": _evidence(r.get("evidence"), lb, fmt),
            "when": fmt.when(r.get("at")),
        }
        for r in view.refusals
    ]


def consents(
    statements: Iterable[Mapping[str, Any]] | None,
    names: Mapping[str, str],
    lb: Labels,
    fmt: Formatter,
) -> list[dict[str, Any]]:
    """Consent statements (``identity.get_consents``' current ones, or its history)."""
    rows = []
    for c in statements or []:
        source_id = c.get("source_id")
        rows.append(
            {
                "purpose": lb.of(CONSENT_PURPOSE_LABELS, c.get("purpose")),
                "channel": lb.of(CONSENT_CHANNEL_LABELS, c.get("channel")),
                "granted": bool(c.get("granted")),
                "source": names.get(str(source_id)) if source_id else None,
                "origin": lb.of(CONSENT_ORIGIN_LABELS, c.get("origin")),
                "when": fmt.when(c.get("recorded_at")),
            }
        )
    return rows


def _scalars(data: Mapping[str, Any] | None, limit: int) -> list[tuple[str, str]]:
    out = []
    for k, v in (data or {}).items():
        if isinstance(v, str | int | float | bool) and str(v) != "":
            out.append((str(k), str(v)[:140]))
        if len(out) >= limit:
            break
    return out


def timeline(
    items: Iterable[dict[str, Any]], names: Mapping[str, str], lb: Labels, fmt: Formatter
) -> list[dict[str, Any]]:
    """Timeline items from the API's providers, grouped by day (newest first)."""
    _ = lb._
    days: list[dict[str, Any]] = []
    for i in items:
        ch = i.get("channel") or "import"
        entry: dict[str, Any] = {
            "kind": i["kind"],
            "channel": ch,
            "channel_label": lb.channel(ch),
            "time": fmt.when(i["occurred_at"]),
            "iso": fmt.iso(i["occurred_at"]),
            "details": [],
            "badge": None,
            "amount": None,
        }
        if i["kind"] == "order":
            number = i.get("external_id")
            entry["title"] = (
                _("Order %(number)s") % {"number": number} if number else str(i.get("title"))
            )
            entry["subtitle"] = lb.of(ORDER_KIND_LABELS, str(i.get("order_kind", "")), fallback="")
            if i.get("status"):
                entry["badge"] = status_label(lb, i["status"])
            entry["amount"] = fmt.money(i.get("total"), i.get("currency"))
            detail = i.get("detail") or {}
            if isinstance(detail, Mapping) and detail.get("location_id"):
                entry["details"].append((_("Location"), str(detail["location_id"])))
        else:
            typ = i.get("type")
            if typ == "track":
                entry["title"] = str(i.get("title") or _("Activity"))
            elif typ in ("page", "screen") and i.get("title") not in (None, typ):
                entry["title"] = f"{lb.of(EVENT_LABELS, typ)}: {i['title']}"
            else:
                entry["title"] = lb.of(EVENT_LABELS, typ, fallback=str(i.get("title") or typ))
            source = names.get(str(i.get("source_id") or "")) or ""
            entry["subtitle"] = "" if source == entry["channel_label"] else source
            if i.get("location_id"):
                entry["details"].append((_("Shop"), str(i["location_id"])))
            entry["details"] += _scalars(
                i.get("traits") if typ == "identify" else i.get("properties"), 6
            )
        day = fmt.day(i["occurred_at"])
        if not days or days[-1]["day"] != day:
            days.append({"day": day, "items": []})
        days[-1]["items"].append(entry)
    return days
