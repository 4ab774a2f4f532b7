"""The Segment message contract: every rule of check_message and check_batch."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trayecto.collect import InvalidMessage, Origin, check_batch, check_message

ORIGIN = Origin(uuid.UUID(int=1), "web", None)
NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def check(msg: Any, **kw: Any):  # type: ignore[no-untyped-def]
    kw.setdefault("origin", ORIGIN)
    kw.setdefault("received_at", NOW)
    kw.setdefault("max_bytes", 32 * 1024)
    return check_message(msg, **kw)


def reason(msg: Any, **kw: Any) -> tuple[str, str]:
    with pytest.raises(InvalidMessage) as info:
        check(msg, **kw)
    return info.value.code, info.value.field


def test_track_becomes_native_event_with_everything_kept() -> None:
    msg = {
        "type": "track",
        "event": "Product Viewed",
        "userId": "u1",
        "anonymousId": "a1",
        "messageId": "m1",
        "properties": {"sku": "AOVE-500", "price": 12.9},
        "context": {"ip": "1.2.3.4", "library": {"name": "x"}},
        "integrations": {"All": True},
        "timestamp": "2026-11-22T11:00:00Z",
    }
    e = check(msg)
    assert (e.type, e.event, e.user_id, e.anonymous_id, e.message_id) == (
        "track",
        "Product Viewed",
        "u1",
        "a1",
        "m1",
    )
    assert e.properties == {"sku": "AOVE-500", "price": 12.9}
    assert e.context == {"ip": "1.2.3.4", "library": {"name": "x"}}
    assert e.extra == {"integrations": {"All": True}}
    assert e.occurred_at == datetime(2026, 11, 22, 11, 0, tzinfo=UTC)
    assert e.received_at == NOW
    assert e.channel == "web"
    assert e.id.version == 7


@pytest.mark.parametrize(
    ("msg", "code", "field"),
    [
        ({"type": "track", "userId": "u"}, "missing_field", "event"),
        ({"type": "track", "event": "  ", "userId": "u"}, "missing_field", "event"),
        ({"type": "track", "event": "E"}, "missing_field", "userId"),
        ({"type": "boom", "userId": "u"}, "invalid_type", "type"),
        ({"userId": "u"}, "missing_field", "type"),
        ({"type": "alias", "userId": "u"}, "missing_field", "previousId"),
        ({"type": "alias", "previousId": "p"}, "missing_field", "userId"),
        ({"type": "group", "userId": "u"}, "missing_field", "groupId"),
        ({"type": "identify", "userId": "u", "traits": [1]}, "invalid_type", "traits"),
        (
            {"type": "track", "event": "E", "userId": "u", "properties": "x"},
            "invalid_type",
            "properties",
        ),
        ({"type": "track", "event": "E", "userId": "u", "context": 3}, "invalid_type", "context"),
        ({"type": "track", "event": "E", "userId": {"a": 1}}, "invalid_type", "userId"),
        ({"type": "track", "event": "E", "userId": True}, "invalid_type", "userId"),
        ({"type": "track", "event": "E", "userId": "u" * 201}, "too_long", "userId"),
        (
            {"type": "track", "event": "E", "userId": "u", "messageId": 5},
            "invalid_type",
            "messageId",
        ),
        (
            {"type": "track", "event": "E", "userId": "u", "timestamp": "yesterday"},
            "invalid_timestamp",
            "timestamp",
        ),
        (
            {"type": "track", "event": "E", "userId": "u", "timestamp": 5},
            "invalid_timestamp",
            "timestamp",
        ),
        (
            {"type": "track", "event": "E", "userId": "u", "properties": {"x": "a\u0000b"}},
            "invalid_character",
            "",
        ),
        ("not an object", "invalid_type", ""),
    ],
)
def test_bad_messages_are_named(msg: Any, code: str, field: str) -> None:
    assert reason(msg) == (code, field)


def test_numeric_ids_are_kept_as_text() -> None:
    e = check({"type": "identify", "userId": 12345, "traits": {"email": "a@b.es"}})
    assert e.user_id == "12345"
    assert e.traits == {"email": "a@b.es"}


def test_each_type_maps_its_fields() -> None:
    assert check({"type": "page", "name": "Home", "anonymousId": "a"}).event == "Home"
    assert check({"type": "screen", "name": "Cart", "anonymousId": "a"}).event == "Cart"
    g = check({"type": "group", "groupId": "g1", "userId": "u", "traits": {"name": "Acme"}})
    assert (g.group_id, g.traits) == ("g1", {"name": "Acme"})
    a = check({"type": "alias", "previousId": "anon-1", "userId": "u"})
    assert (a.previous_id, a.user_id) == ("anon-1", "u")


def test_forced_type_from_endpoint() -> None:
    e = check({"event": "E", "userId": "u"}, forced_type="track")
    assert e.type == "track"
    assert reason({"type": "identify", "userId": "u"}, forced_type="track") == (
        "invalid_type",
        "type",
    )


def test_clock_skew_is_corrected_with_sent_at() -> None:
    # The client's clock is 1 hour fast: it says the event happened at 13:00 and it sent
    # it 10 s later at 13:00:10; the server received it at 12:00:00.
    e = check(
        {
            "type": "track",
            "event": "E",
            "userId": "u",
            "timestamp": "2026-11-22T13:00:00Z",
            "sentAt": "2026-11-22T13:00:10Z",
        }
    )
    assert e.occurred_at == NOW - timedelta(seconds=10)
    assert e.original_timestamp == datetime(2026, 11, 22, 13, 0, tzinfo=UTC)
    assert e.sent_at == datetime(2026, 11, 22, 13, 0, 10, tzinfo=UTC)


def test_batch_sent_at_applies_to_each_message() -> None:
    batch = {
        "sentAt": "2026-11-22T12:30:00+00:00",
        "batch": [
            {"type": "track", "event": "E", "userId": "u", "timestamp": "2026-11-22T12:29:00Z"}
        ],
    }
    out = check_batch(batch, origin=ORIGIN, received_at=NOW, max_message_bytes=32768)
    assert out.events[0].occurred_at == NOW - timedelta(minutes=1)


def test_without_timestamp_event_time_is_receive_time() -> None:
    assert check({"type": "track", "event": "E", "userId": "u"}).occurred_at == NOW


def test_offsets_and_naive_times_become_utc() -> None:
    e = check(
        {"type": "track", "event": "E", "userId": "u", "timestamp": "2026-11-22T13:00:00+01:00"}
    )
    assert e.occurred_at == datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    e = check({"type": "track", "event": "E", "userId": "u", "timestamp": "2026-11-22T13:00:00"})
    assert e.occurred_at == datetime(2026, 11, 22, 13, 0, tzinfo=UTC)


def test_missing_message_id_is_derived_from_content_stably() -> None:
    msg = {"type": "track", "event": "E", "userId": "u", "timestamp": "2026-11-22T10:00:00Z"}
    a = check(dict(msg, sentAt="2026-11-22T10:00:01Z"))
    b = check(dict(msg, sentAt="2026-11-22T10:05:00Z"))  # a retry, sent later
    c = check(dict(msg, event="F"))
    assert a.message_id == b.message_id
    assert a.message_id.startswith("sha256:")
    assert c.message_id != a.message_id


def test_message_size_limit() -> None:
    big = {"type": "track", "event": "E", "userId": "u", "properties": {"x": "y" * 40_000}}
    assert reason(big) == ("message_too_large", "")
    ok = {"type": "track", "event": "E", "userId": "u", "properties": {"x": "y" * 30_000}}
    assert check(ok).properties == {"x": "y" * 30_000}


def test_batch_context_merges_under_message_context() -> None:
    batch = {
        "context": {"library": {"name": "sdk"}, "locale": "es-ES"},
        "batch": [{"type": "track", "event": "E", "userId": "u", "context": {"locale": "en-GB"}}],
    }
    out = check_batch(batch, origin=ORIGIN, received_at=NOW, max_message_bytes=32768)
    assert out.events[0].context == {"library": {"name": "sdk"}, "locale": "en-GB"}


def test_store_source_location_and_override() -> None:
    shop = Origin(uuid.UUID(int=2), "store", "MAD-SERRANO")
    assert (
        check({"type": "track", "event": "E", "userId": "u"}, origin=shop).location_id
        == "MAD-SERRANO"
    )
    e = check(
        {"type": "track", "event": "E", "userId": "u", "context": {"location_id": "SEV-CENTRO"}},
        origin=shop,
    )
    assert e.location_id == "SEV-CENTRO"


def test_half_bad_batch_keeps_good_and_names_bad_by_index() -> None:
    batch = {
        "batch": [
            {"type": "track", "event": "A", "userId": "u"},
            {"type": "track", "userId": "u"},
            {"type": "identify", "anonymousId": "x"},
            "junk",
        ]
    }
    out = check_batch(batch, origin=ORIGIN, received_at=NOW, max_message_bytes=32768)
    assert [e.event for e in out.events] == ["A", None]
    assert [(r.index, r.code, r.field) for r in out.rejections] == [
        (1, "missing_field", "batch[1].event"),
        (3, "invalid_type", "batch[3]"),
    ]


@pytest.mark.parametrize("body", [[], {"batch": "x"}, {"nobatch": []}, 3])
def test_not_a_batch(body: Any) -> None:
    with pytest.raises(InvalidMessage):
        check_batch(body, origin=ORIGIN, received_at=NOW, max_message_bytes=32768)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(
    event=st.text(min_size=1, max_size=50).filter(lambda s: s.strip() and "\x00" not in s),
    user=st.text(min_size=1, max_size=50).filter(lambda s: "\x00" not in s),
    props=st.dictionaries(st.text(max_size=10), json_values, max_size=6),
)
def test_any_valid_track_is_accepted_and_kept_whole(
    event: str, user: str, props: dict[str, Any]
) -> None:
    if b"\\u0000" in orjson.dumps(props):
        return
    e = check({"type": "track", "event": event, "userId": user, "properties": props})
    assert e.event == event
    assert e.user_id == user
    assert e.properties == props
