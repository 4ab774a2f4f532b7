"""The event log on a real database: idempotent appends, filters, pagination, migrations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from trayecto import access, collect, db
from trayecto.bootstrap import Platform
from trayecto.db import write_transaction
from trayecto.kernel import ValidationError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_events(
    origin: collect.Origin, n: int, prefix: str = "m", **over: object
) -> list[collect.NativeEvent]:
    out = []
    for i in range(n):
        msg = {
            "type": "track",
            "event": "Product Viewed" if i % 2 else "Order Completed",
            "userId": f"u{i % 3}",
            "messageId": f"{prefix}{i}",
            "properties": {"i": i, "price": "12.90", "texto": "Aceite ñ"},
            "context": {"locale": "es-ES"},
            "timestamp": (T0 + timedelta(minutes=i)).isoformat(),
        }
        msg.update(over)
        out.append(
            collect.check_message(
                msg, origin=origin, received_at=T0 + timedelta(days=1), max_bytes=32768
            )
        )
    return out


@pytest.fixture
def origin(platform: Platform) -> collect.Origin:
    src = access.create_source(platform.engine, "web", "web").record
    return collect.Origin(src.id, src.channel.value, src.location_id)


def test_append_is_idempotent_on_message_id(platform: Platform, origin: collect.Origin) -> None:
    batch = make_events(origin, 10)
    with write_transaction(platform.engine) as conn:
        assert collect.append_events(conn, batch) == 10
    retry = make_events(origin, 12)  # the same 10 plus 2 new ones
    with write_transaction(platform.engine) as conn:
        assert collect.append_events(conn, retry) == 2
    assert collect.count_events(platform.engine) == 12


def test_duplicates_inside_one_batch_are_stored_once(
    platform: Platform, origin: collect.Origin
) -> None:
    batch = make_events(origin, 3) + make_events(origin, 3)
    with write_transaction(platform.engine) as conn:
        collect.append_events(conn, batch)
    assert collect.count_events(platform.engine) == 3


def test_round_trip_keeps_every_field(platform: Platform, origin: collect.Origin) -> None:
    [event] = make_events(origin, 1)
    with write_transaction(platform.engine) as conn:
        collect.append_events(conn, [event])
    [back] = collect.query_events(platform.engine, collect.EventFilter()).data
    assert back == event


def test_filters_and_cursor_pagination(platform: Platform, origin: collect.Origin) -> None:
    with write_transaction(platform.engine) as conn:
        collect.append_events(conn, make_events(origin, 25))
    flt = collect.EventFilter(user_id="u1")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = collect.query_events(platform.engine, flt, limit=3, cursor=cursor)
        seen += [e.message_id for e in page.data]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    expected = [f"m{i}" for i in range(25) if i % 3 == 1]
    assert sorted(seen, key=lambda m: int(m[1:])) == expected
    assert seen == list(reversed(expected))  # newest first, no repeats, none missing
    assert pages == 3
    asc = collect.query_events(platform.engine, flt, limit=100, newest_first=False)
    assert [e.message_id for e in asc.data] == expected

    window = collect.EventFilter(since=T0 + timedelta(minutes=5), until=T0 + timedelta(minutes=8))
    got = collect.query_events(platform.engine, window).data
    assert sorted(e.message_id for e in got) == ["m5", "m6", "m7"]
    assert collect.count_events(platform.engine, collect.EventFilter(event="Order Completed")) == 13
    assert collect.count_events(platform.engine, collect.EventFilter(channel="app")) == 0
    assert collect.counts_by_channel(platform.engine) == {"web": 25}


def test_bad_cursor_is_a_clear_error(platform: Platform) -> None:
    with pytest.raises(ValidationError) as info:
        collect.query_events(platform.engine, collect.EventFilter(), cursor="!!!")
    assert info.value.field == "cursor"


def test_migrations_match_the_tables(platform: Platform) -> None:
    assert db.current_revision(platform.engine) == db.head_revision() == db.HEAD
    with platform.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": False}), db.metadata
        )
    assert diff == []
    db.upgrade(platform.engine)  # idempotent
