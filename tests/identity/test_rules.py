"""Identifier normalisation and extraction."""

from __future__ import annotations

import pytest

from trayecto.identity import IdType, normalize
from trayecto.identity._rules import attributes_from_traits, fold, identifiers_from_event


@pytest.mark.parametrize(
    "raw", ["+34 600 11 22 33", "600112233", "0034600112233", "600-11-22-33", "(+34) 600112233"]
)
def test_phone_formats_become_one_e164(raw: str) -> None:
    assert normalize(IdType.PHONE, raw, "ES") == "+34600112233"


def test_phone_region_and_garbage() -> None:
    assert normalize(IdType.PHONE, "020 7946 0958", "GB") == "+442079460958"
    assert normalize(IdType.PHONE, "12", "ES") is None
    assert normalize(IdType.PHONE, "not a phone", "ES") is None


def test_email_and_codes() -> None:
    assert normalize(IdType.EMAIL, "  Lucia.Garcia@Example.ES ", "ES") == "lucia.garcia@example.es"
    assert normalize(IdType.EMAIL, "lucia@", "ES") is None
    assert normalize(IdType.LOYALTY_CARD, "2901 0840-10832", "ES") == "2901084010832"
    assert normalize(IdType.SOCIAL_HANDLE, "@Olivar_Fan", "ES") == "olivar_fan"
    assert normalize(IdType.EMAIL, True, "ES") is None


def test_fold_groups_spellings() -> None:
    assert fold("  GARCÍA  Núñez ") == fold("garcia nunez") == "garcia nunez"


def test_user_id_namespace_follows_the_channel() -> None:
    def kinds(channel: str) -> list[IdType]:
        ids = identifiers_from_event(
            channel=channel,
            type_="track",
            user_id="X1",
            anonymous_id="a1",
            previous_id=None,
            traits=None,
            context=None,
            region="ES",
        )
        return [k for k, _ in ids]

    assert kinds("web") == [IdType.ONLINE_ID, IdType.ANONYMOUS_ID]
    assert kinds("app")[0] is IdType.ONLINE_ID
    assert kinds("store")[0] is IdType.POS_ID
    assert kinds("marketplace")[0] is IdType.MARKETPLACE_ID


def test_identify_traits_give_identifiers_strongest_first() -> None:
    ids = identifiers_from_event(
        channel="store",
        type_="identify",
        user_id="2901084010832",
        anonymous_id="tablet-MAD",
        previous_id=None,
        traits={"email": "A@B.es", "phone": "604 446 145", "loyalty_card": "2901084010832"},
        context={"device": {"id": "tablet-MAD-dev"}},
        region="ES",
    )
    assert ids == [
        (IdType.POS_ID, "2901084010832"),
        (IdType.LOYALTY_CARD, "2901084010832"),
        (IdType.EMAIL, "a@b.es"),
        (IdType.PHONE, "+34604446145"),
        (IdType.ANONYMOUS_ID, "tablet-MAD"),  # the shop's tablet device: not the shopper's
    ]
    on_the_phone = identifiers_from_event(
        channel="app",
        type_="track",
        user_id=None,
        anonymous_id="a9",
        previous_id=None,
        traits=None,
        context={"device": {"id": "iphone-9"}},
        region="ES",
    )
    assert on_the_phone == [(IdType.DEVICE_ID, "iphone-9"), (IdType.ANONYMOUS_ID, "a9")]


def test_attributes_from_segment_traits_and_records() -> None:
    seg = attributes_from_traits(
        {
            "firstName": "Lucía",
            "lastName": " García  López",
            "email": "LUCIA@x.es",
            "birthday": "1990-02-03T00:00:00Z",
            "gender": "female",
            "address": {
                "street": "Calle Mayor 1",
                "postalCode": "28013",
                "city": "Madrid",
                "country": "es",
            },
        },
        "ES",
    )
    assert seg == {
        "first_name": "Lucía",
        "last_name": "García López",
        "email": "lucia@x.es",
        "birth_date": "1990-02-03",
        "gender": "F",
        "address_line1": "Calle Mayor 1",
        "postcode": "28013",
        "city": "Madrid",
        "country": "ES",
    }
    rec = attributes_from_traits(
        {"first_name": "Ana", "postcode": "08001", "birth_date": "31/12/1990"}, "ES"
    )
    assert rec == {"first_name": "Ana", "postcode": "08001"}
