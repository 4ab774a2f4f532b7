"""The event log on a real database: idempotent appends, filters, pagination, migrations."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
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


def test_a_retry_is_the_same_message_timestamp_included(
    platform: Platform, origin: collect.Origin
) -> None:
    """The idempotency key is (source, the message's own timestamp as sent, messageId): an
    SDK's retry resends the very message, so it stores nothing twice; the same messageId
    stamped at another time is another message (Segment keeps it too, past its window)."""
    first = make_events(origin, 1)
    later = make_events(origin, 1, timestamp=(T0 + timedelta(hours=3)).isoformat())
    untimed = make_events(origin, 1, prefix="n", timestamp=None)
    with write_transaction(platform.engine) as conn:
        assert collect.append_events(conn, first + untimed) == 2
    with write_transaction(platform.engine) as conn:
        # A retry of both (skew correction moves occurred_at, not the key), and a new one.
        retry = make_events(origin, 1) + make_events(origin, 1, prefix="n", timestamp=None)
        assert collect.append_events(conn, retry) == 0
        assert collect.append_events(conn, later) == 1
    assert collect.count_events(platform.engine) == 3


def test_every_index_of_the_log_is_time_ordered(platform: Platform) -> None:
    """An index on a random key costs each append a page write of its own (10x slower on
    SQLite): the log keeps only keys that grow with time."""
    with platform.engine.connect() as conn:
        found = {tuple(ix["column_names"]) for ix in sa.inspect(conn).get_indexes("events")}
        pk = sa.inspect(conn).get_pk_constraint("events")["constrained_columns"]
    assert pk == ["id"]  # UUIDv7
    assert found == {("source_id", "message_ts", "message_id"), ("occurred_at",)}


def test_unindexed_filters_scan_a_bounded_window_and_say_where_to_go_on(
    platform: Platform, origin: collect.Origin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("trayecto.collect._store.SCAN_BUDGET", 4)
    with write_transaction(platform.engine) as conn:
        collect.append_events(conn, make_events(origin, 25))
    expected = [f"m{i}" for i in range(25) if i % 3 == 1]
    for newest_first in (True, False):
        seen: list[str] = []
        sizes: list[int] = []
        cursor = None
        while True:
            page = collect.query_events(
                platform.engine,
                collect.EventFilter(user_id="u1"),
                limit=100,
                cursor=cursor,
                newest_first=newest_first,
            )
            seen += [e.message_id for e in page.data]
            sizes.append(len(page.data))
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == (list(reversed(expected)) if newest_first else expected)
        assert max(sizes) <= 2  # no page read more than 4 events of the log
        assert len(sizes) >= 25 // 4
    # Indexed filters alone are not bounded: one page holds everything.
    page = collect.query_events(platform.engine, collect.EventFilter(source_id=origin.source_id))
    assert len(page.data) == 25
    assert page.next_cursor is None


def test_migration_0007_keeps_old_messages_idempotent(
    platform: Platform, origin: collect.Origin
) -> None:
    """Down to 0006 and up again: the key's timestamp is filled from the stored messages, so
    a retry of a message stored before the migration is still recognised."""
    from alembic import command
    from alembic.config import Config

    from trayecto.db.migrate import MIGRATIONS

    stored = make_events(origin, 5) + make_events(origin, 2, prefix="n", timestamp=None)
    with write_transaction(platform.engine) as conn:
        assert collect.append_events(conn, stored) == 7
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = platform.engine
    command.downgrade(cfg, "0006")
    assert db.current_revision(platform.engine) == "0006"
    db.upgrade(platform.engine)
    assert db.current_revision(platform.engine) == db.HEAD
    with write_transaction(platform.engine) as conn:
        assert collect.append_events(conn, make_events(origin, 6)) == 1  # m5 only
        assert collect.append_events(conn, make_events(origin, 2, prefix="n", timestamp=None)) == 0
    assert collect.count_events(platform.engine) == 8


def test_the_log_id_order_is_its_commit_order(platform: Platform, origin: collect.Origin) -> None:
    """Worker processes make ids concurrently; a batch whose ids were made earlier may be
    committed later. A follower that read up to the newest id must still see it."""
    early = make_events(origin, 3, prefix="early")  # ids made first...
    late = make_events(origin, 3, prefix="late")
    with write_transaction(platform.engine) as conn:
        collect.append_events(conn, late)  # ...but committed second
    checkpoint = collect.read_log(platform.engine, None)[-1].id
    with write_transaction(platform.engine) as conn:
        assert collect.append_events(conn, early) == 3
    after = collect.read_log(platform.engine, checkpoint)
    assert [e.message_id for e in after] == ["early0", "early1", "early2"]
    assert all(e.id > checkpoint for e in after)
    # Ids already in order are kept as they were made.
    back = collect.events_by_id(platform.engine, [e.id for e in late])
    assert sorted(e.message_id for e in back.values()) == ["late0", "late1", "late2"]


def test_concurrent_appends_commit_in_id_order(platform: Platform, origin: collect.Origin) -> None:
    """Two writers at once (two server processes, or tracking beside an import): the one
    whose ids were made first commits second. It waits for the other's commit, and its
    rows still sort after every row a follower has read, on PostgreSQL as on SQLite."""
    early = make_events(origin, 3, prefix="early")
    late = make_events(origin, 3, prefix="late")
    started, done = threading.Event(), []

    def second_writer() -> None:
        started.set()
        with write_transaction(platform.engine) as conn:
            done.append(collect.append_events(conn, early))

    worker = threading.Thread(target=second_writer)
    with write_transaction(platform.engine) as conn:
        collect.append_events(conn, late)
        worker.start()
        assert started.wait(10)
        time.sleep(0.3)
        assert not done  # it waits for this transaction to commit
    worker.join(30)
    assert done == [3]
    first = collect.read_log(platform.engine, None)
    assert [e.message_id for e in first[:3]] == ["late0", "late1", "late2"]
    checkpoint = first[2].id  # a follower that read the first commit
    after = collect.read_log(platform.engine, checkpoint)
    assert [e.message_id for e in after] == ["early0", "early1", "early2"]


def test_the_platform_knows_when_events_are_arriving(
    platform: Platform, origin: collect.Origin
) -> None:
    """What the stitching worker asks before giving way to ingestion (SQLite, one writer)."""
    assert not platform.ingesting()  # an empty log
    with write_transaction(platform.engine) as conn:
        collect.append_events(conn, make_events(origin, 2))  # received long ago
    assert not platform.ingesting()
    fresh = collect.check_message(
        {"type": "track", "event": "Viewed", "userId": "u9", "messageId": "now"},
        origin=origin,
        received_at=datetime.now(UTC),
        max_bytes=32768,
    )
    with write_transaction(platform.engine) as conn:
        collect.append_events(conn, [fresh])
    assert platform.ingesting()
    assert not platform.ingesting(within=0.0)


def test_migration_0008_swaps_the_placement_functions(platform: Platform) -> None:
    """PostgreSQL writes a batch of orders with trayecto_place(); trayecto_hold() (one
    order's holds) is gone, and comes back on the way down."""
    from alembic import command
    from alembic.config import Config

    from trayecto.db.migrate import MIGRATIONS

    if platform.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no stored functions: it writes each order in a savepoint")

    def functions() -> set[str]:
        with platform.engine.connect() as conn:
            return set(
                conn.exec_driver_sql(
                    "SELECT proname FROM pg_proc WHERE proname IN ('trayecto_place', 'trayecto_hold')"
                ).scalars()
            )

    assert functions() == {"trayecto_place"}
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = platform.engine
    command.downgrade(cfg, "0007")
    assert functions() == {"trayecto_hold"}
    db.upgrade(platform.engine)
    assert functions() == {"trayecto_place"}


def test_migration_0009_indexes_only_the_holds_that_expire(platform: Platform) -> None:
    """Order holds (no expiry, five an order) stay out of the index that finds expired cart
    and payment holds; the downgrade brings the full index back."""
    from alembic import command
    from alembic.config import Config

    from trayecto.db.migrate import MIGRATIONS

    def indexes() -> dict[str, str]:
        with platform.engine.connect() as conn:
            if platform.engine.dialect.name == "postgresql":
                rows = conn.exec_driver_sql(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'reservations'"
                )
            else:
                rows = conn.exec_driver_sql(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
                    " AND tbl_name = 'reservations' AND sql IS NOT NULL"
                )
            return {name: sql for name, sql in rows}

    now = indexes()
    assert "ix_reservations_status_expires_at" not in now
    assert "WHERE" in now["ix_reservations_expiring"]
    assert "expires_at IS NOT NULL" in now["ix_reservations_expiring"]
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = platform.engine
    command.downgrade(cfg, "0008")
    before = indexes()
    assert "ix_reservations_expiring" not in before
    assert "WHERE" not in before["ix_reservations_status_expires_at"]
    db.upgrade(platform.engine)
    assert indexes() == now
