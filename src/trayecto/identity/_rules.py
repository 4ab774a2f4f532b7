"""Identifier types, their rules, and normalisation; attributes read from events and records.

Pure functions, no I/O: the graph and the importers use them, the tests pin them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import lru_cache
from typing import Any

import phonenumbers

__all__ = [
    "ATTRIBUTES",
    "RULES",
    "IdRule",
    "IdType",
    "Identifier",
    "attributes_from_traits",
    "fold",
    "identifiers_from_event",
    "identifiers_from_record",
    "normalize",
    "normalize_email",
    "normalize_phone",
]


class IdType(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    CUSTOMER_NUMBER = "customer_number"
    LOYALTY_CARD = "loyalty_card"
    # The userId each system gives its customers: one namespace per system, so the web
    # store's account id and a shop till's customer id never collide.
    ONLINE_ID = "online_id"
    POS_ID = "pos_id"
    MARKETPLACE_ID = "marketplace_id"
    CALL_CENTER_ID = "call_center_id"
    WHATSAPP_ID = "whatsapp_id"
    SOCIAL_HANDLE = "social_handle"
    EMAIL_ID = "email_id"
    ANONYMOUS_ID = "anonymous_id"
    DEVICE_ID = "device_id"


@dataclass(frozen=True, slots=True)
class IdRule:
    """``strong`` identifiers merge profiles; ``weak`` ones only attach anonymous activity.
    ``max_per_profile`` caps distinct values in one customer (1 = unique per person): a
    merge that would exceed it is refused. ``priority`` picks whose profile an event joins
    when its identifiers point at several. ``corroborate`` names the attributes (of
    ``first_name``, ``birth_date``) that must not contradict a customer's when an
    identifier of this type is all that links a message to it: identifiers a household
    shares in practice (its web account, customer number, landline)."""

    strong: bool
    max_per_profile: int
    priority: int
    corroborate: tuple[str, ...] = ()


#: Who someone says they are, checked where an identifier may be a household's.
_HOUSEHOLD = ("first_name", "birth_date")

RULES: dict[IdType, IdRule] = {
    IdType.ONLINE_ID: IdRule(True, 1, 100, _HOUSEHOLD),
    IdType.CUSTOMER_NUMBER: IdRule(True, 1, 95, _HOUSEHOLD),
    IdType.POS_ID: IdRule(True, 2, 90),
    IdType.LOYALTY_CARD: IdRule(True, 2, 90),
    IdType.MARKETPLACE_ID: IdRule(True, 3, 80),
    IdType.EMAIL: IdRule(True, 5, 70),
    IdType.PHONE: IdRule(True, 4, 60, _HOUSEHOLD),
    IdType.WHATSAPP_ID: IdRule(True, 3, 55),
    IdType.CALL_CENTER_ID: IdRule(True, 2, 50),
    IdType.SOCIAL_HANDLE: IdRule(True, 5, 40),
    IdType.EMAIL_ID: IdRule(True, 5, 40),
    IdType.DEVICE_ID: IdRule(False, 50, 20),
    IdType.ANONYMOUS_ID: IdRule(False, 500, 10),
}

#: Which identifier type a message's ``userId`` is, by the channel of its source.
USER_ID_BY_CHANNEL: dict[str, IdType] = {
    "web": IdType.ONLINE_ID,
    "app": IdType.ONLINE_ID,
    "store": IdType.POS_ID,
    "marketplace": IdType.MARKETPLACE_ID,
    "call_center": IdType.CALL_CENTER_ID,
    "whatsapp": IdType.WHATSAPP_ID,
    "social": IdType.SOCIAL_HANDLE,
    "email": IdType.EMAIL_ID,
}

#: The golden record's attributes (trayecto's own customer field names).
ATTRIBUTES = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "birth_date",
    "gender",
    "address_line1",
    "address_line2",
    "postcode",
    "city",
    "region",
    "country",
)

Identifier = tuple[IdType, str]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(raw: str) -> str | None:
    value = raw.strip().lower()
    return value if _EMAIL.match(value) else None


def normalize_phone(raw: str, region: str) -> str | None:
    """E.164, or None if the text is not a possible phone number."""
    return _phone(raw.strip(), region)


# Parsing a number costs about 50 µs; a file or a stream repeats numbers (the same row is
# normalised for its identifiers and for its attributes, a household shares a landline).
@lru_cache(maxsize=1 << 16)
def _phone(text: str, region: str) -> str | None:
    if not text or sum(c.isdigit() for c in text) < 6:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize(kind: IdType, raw: Any, region: str = "ES") -> str | None:
    """The canonical form of an identifier, or None if it is not one."""
    if raw is None or isinstance(raw, bool | dict | list):
        return None
    text = str(raw).strip()
    if not text:
        return None
    if kind is IdType.EMAIL:
        return normalize_email(text)
    if kind in (IdType.PHONE, IdType.WHATSAPP_ID):
        return normalize_phone(text, region)
    if kind is IdType.SOCIAL_HANDLE:
        return text.lower().lstrip("@") or None
    if kind in (IdType.CUSTOMER_NUMBER, IdType.LOYALTY_CARD):
        return re.sub(r"[\s-]", "", text).upper() or None
    return text[:200]


@lru_cache(maxsize=1 << 17)  # names, cities and postcodes repeat a lot
def fold(text: str) -> str:
    """Lower case, accents and punctuation removed, spaces collapsed: for grouping values
    that differ only in how they were typed ("GARCÍA" and "garcia")."""
    if text.isascii():  # no accents to drop: the same result, five times faster
        plain = text.lower()
    else:
        decomposed = unicodedata.normalize("NFKD", text.casefold())
        plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_PUNCTUATION.sub(" ", plain).split())


_PUNCTUATION = re.compile(r"[^\w\s]")


_TRAIT_KEYS: dict[IdType, tuple[str, ...]] = {
    IdType.EMAIL: ("email",),
    IdType.PHONE: ("phone", "mobile"),
    IdType.CUSTOMER_NUMBER: ("customer_number", "customerNumber"),
    IdType.LOYALTY_CARD: ("loyalty_card", "loyaltyCard"),
}


def _traits_identifiers(traits: dict[str, Any], region: str) -> list[Identifier]:
    out: list[Identifier] = []
    for kind, keys in _TRAIT_KEYS.items():
        for key in keys:
            value = normalize(kind, traits.get(key), region)
            if value:
                out.append((kind, value))
    return out


#: Channels whose devices are the shop's own hardware (see ``identifiers_from_event``).
SHOP_CHANNELS = frozenset({"store"})


def identifiers_from_event(
    *,
    channel: str,
    type_: str,
    user_id: str | None,
    anonymous_id: str | None,
    previous_id: str | None,
    traits: dict[str, Any] | None,
    context: dict[str, Any] | None,
    region: str,
) -> list[Identifier]:
    """Every identifier a message carries, normalised, strongest first."""
    out: list[Identifier] = []
    user_kind = USER_ID_BY_CHANNEL.get(channel, IdType.ONLINE_ID)
    if user_id:
        value = normalize(user_kind, user_id, region)
        if value:
            out.append((user_kind, value))
            if user_kind is IdType.WHATSAPP_ID:
                out.append((IdType.PHONE, value))  # a WhatsApp number is a phone number
    if type_ == "identify" and traits:
        out += _traits_identifiers(traits, region)
    ctx_traits = context.get("traits") if context else None
    if isinstance(ctx_traits, dict):
        out += _traits_identifiers(ctx_traits, region)
    if anonymous_id:
        out.append((IdType.ANONYMOUS_ID, anonymous_id[:200]))
    if type_ == "alias" and previous_id:
        out.append((IdType.ANONYMOUS_ID, previous_id[:200]))
    device = context.get("device") if context else None
    # A shop's till, mobile till or tablet belongs to the shop, not to whoever is served
    # at it: its id would tie every shopper to the first one seen there (until a second
    # known shopper showed it shared). Devices of the other channels are the person's own.
    if isinstance(device, dict) and channel not in SHOP_CHANNELS:
        dev = device.get("id")
        if isinstance(dev, str) and dev and dev != anonymous_id:
            out.append((IdType.DEVICE_ID, dev[:200]))
    seen: set[Identifier] = set()
    unique = [i for i in out if not (i in seen or seen.add(i))]  # type: ignore[func-returns-value]
    unique.sort(key=lambda i: -RULES[i[0]].priority)
    return unique


def identifiers_from_record(record: dict[str, str], region: str) -> list[Identifier]:
    out: list[Identifier] = []
    for kind, key in (
        (IdType.CUSTOMER_NUMBER, "customer_number"),
        (IdType.LOYALTY_CARD, "loyalty_card"),
        (IdType.EMAIL, "email"),
        (IdType.PHONE, "phone"),
    ):
        value = normalize(kind, record.get(key), region)
        if value:
            out.append((kind, value))
    out.sort(key=lambda i: -RULES[i[0]].priority)
    return out


def _iso_date(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip()[:10]).isoformat()
    except ValueError:
        return None


def attributes_from_traits(traits: dict[str, Any], region: str) -> dict[str, str]:
    """Golden-record attributes from Segment traits (camelCase or snake_case) or a
    customer record (trayecto's field names)."""
    out: dict[str, str] = {}

    def put(attr: str, value: Any) -> None:
        if isinstance(value, str | int) and not isinstance(value, bool):
            text = " ".join(str(value).split())
            if text:
                out.setdefault(attr, text)

    put("first_name", traits.get("first_name") or traits.get("firstName"))
    put("last_name", traits.get("last_name") or traits.get("lastName"))
    if "first_name" not in out and "last_name" not in out:
        name = traits.get("name")
        if isinstance(name, str) and name.strip():
            first, _, last = name.strip().partition(" ")
            put("first_name", first)
            put("last_name", last)
    email = normalize(IdType.EMAIL, traits.get("email"), region)
    if email:
        out["email"] = email
    phone = normalize(IdType.PHONE, traits.get("phone"), region)
    if phone:
        out["phone"] = phone
    birth = _iso_date(traits.get("birth_date") or traits.get("birthday") or traits.get("birthDate"))
    if birth:
        out["birth_date"] = birth
    gender = traits.get("gender")
    if isinstance(gender, str) and gender.strip():
        out["gender"] = gender.strip().upper()[:1]
    address = traits.get("address")
    source = address if isinstance(address, dict) else traits
    put("address_line1", source.get("address_line1") or source.get("street"))
    put("address_line2", source.get("address_line2"))
    put("postcode", source.get("postcode") or source.get("postalCode") or source.get("postal_code"))
    put("city", source.get("city"))
    put("region", source.get("region") or source.get("state"))
    country = source.get("country")
    if isinstance(country, str) and country.strip():
        out["country"] = country.strip().upper()[:2]
    return out
