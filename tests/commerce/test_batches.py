"""Orders placed in batches (``place_orders`` and the order desk): one snapshot and one
write for many orders, each order with its own answer. Runs on SQLite and, under
scripts/with-postgres.sh, on PostgreSQL (where the write is ``trayecto_place()``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from tests.commerce.conftest import order_body
from trayecto import commerce
from trayecto.bootstrap import Platform
from trayecto.commerce import _placement
from trayecto.kernel import NotFoundError, TrayectoError


def _req(external_id: str, **kw: Any) -> commerce.OrderRequest:
    return commerce.check_order(order_body(external_id, **kw))


def _count(p: Platform, sql: str) -> int:
    with p.engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def _reserved(p: Platform, sku: str) -> int:
    return _count(p, f"SELECT coalesce(sum(reserved), 0) FROM stock WHERE sku = '{sku}'")


def test_a_batch_sources_each_order_on_what_the_ones_before_left(
    retailer: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    rounds = []
    real_round = _placement._round

    def counted(*args: Any, **kw: Any) -> Any:
        rounds.append(1)
        return real_round(*args, **kw)

    monkeypatch.setattr(_placement, "_round", counted)
    # SKU-2: two units a delivery can take (ECOM-ZGZ; SHOP-SEV does not ship)
    reqs = [
        _req("B-1", lines=[("SKU-2", 2)]),
        _req("B-2", lines=[("SKU-2", 1), ("SKU-3", 1)]),  # its SKU-2 is gone: refused whole
        _req("B-3", lines=[("SKU-1", 2)]),
        _req("B-1", lines=[("SKU-2", 2)]),  # B-1 again in the same batch: placed once
        _req("B-4", fulfilment={"method": "click_and_collect", "location_id": "NOWHERE"}),
    ]
    answers = commerce.place_orders(retailer.engine, reqs)
    first, second, third, again, fifth = answers
    assert isinstance(first, tuple)
    assert first[1] is True
    assert isinstance(second, TrayectoError)
    assert second.code == "insufficient_stock"
    assert isinstance(third, tuple)
    assert third[1] is True
    assert again == (first[0], False, None)
    assert isinstance(fifth, NotFoundError)
    assert fifth.field == "fulfilment.location_id"
    assert _count(retailer, "SELECT count(*) FROM orders") == 2
    assert len(rounds) == 1  # B-2 saw B-1's units gone in the snapshot: no write lost a race
    assert _reserved(retailer, "SKU-2") == 2
    assert _reserved(retailer, "SKU-3") == 0  # nothing of B-2 is held
    assert _reserved(retailer, "SKU-1") == 2
    assert commerce.check_ledger(retailer.engine) == []
    # each order is whole: its lines, groups, holds and history
    view = commerce.get_order(retailer.engine, third[0])
    assert [(ln["sku"], ln["quantity"]) for ln in view["lines"]] == [("SKU-1", 2)]
    assert view["status"] == "allocated"
    # placed again later, every order of the batch answers the stored one
    later = commerce.place_orders(retailer.engine, [reqs[0], reqs[2]])
    assert later == [(first[0], False, None), (third[0], False, None)]


def test_an_order_whose_units_went_since_the_snapshot_is_tried_again_alone(
    retailer: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A concurrent order takes SKU-2's last deliverable units between the batch's snapshot
    and its write: that order is refused (nothing of it kept), the rest is written."""
    real = _placement.session_of
    stolen: list[Any] = []

    @contextmanager
    def racing(engine: sa.Engine, lease: Any = None) -> Iterator[Any]:
        with real(engine, lease) as session:
            read = session.read

            def read_then_steal(*args: Any, **kw: Any) -> Any:
                snapshot = read(*args, **kw)
                if not stolen:  # the first snapshot only
                    stolen.append(None)
                    stolen[0] = commerce.place_order(engine, _req("THIEF", lines=[("SKU-2", 2)]))
                return snapshot

            session.read = read_then_steal
            yield session

    monkeypatch.setattr(_placement, "session_of", racing)
    ok, late = commerce.place_orders(
        retailer.engine,
        [_req("R-1", lines=[("SKU-1", 1)]), _req("R-2", lines=[("SKU-2", 1), ("SKU-3", 1)])],
    )
    assert isinstance(ok, tuple)
    assert ok[1] is True
    assert isinstance(late, TrayectoError)
    assert late.code == "insufficient_stock"
    assert stolen[0][1] is True
    ids = {r[0] for r in _rows(retailer, "SELECT external_id FROM orders")}
    assert ids == {"R-1", "THIEF"}
    for table in ("order_lines", "fulfilment_groups", "reservations", "allocations",
                  "payments", "order_events"):  # fmt: skip
        orphans = _count(
            retailer,
            f"SELECT count(*) FROM {table} WHERE order_id NOT IN (SELECT id FROM orders)",
        )
        assert orphans == 0, table
    assert _reserved(retailer, "SKU-3") == 0  # R-2's other line took nothing either
    assert _reserved(retailer, "SKU-2") == 2
    assert _reserved(retailer, "SKU-1") == 1
    assert commerce.check_ledger(retailer.engine) == []


def _rows(p: Platform, sql: str) -> list[Any]:
    with p.engine.connect() as conn:
        return list(conn.execute(sa.text(sql)))


def test_the_desk_answers_every_order_of_a_burst(retailer: Platform) -> None:
    desk = commerce.OrderDesk(retailer.engine, lanes=2, max_batch=8)
    channels = ("web", "app", "pos")
    reqs = [_req(f"D-{i}", channel=channels[i % 3], lines=[("SKU-1", 1)]) for i in range(30)]
    try:
        futures = [desk.submit(req) for req in reqs]
        answers: list[Any] = []
        for f in futures:
            try:
                answers.append(f.result(timeout=60))
            except TrayectoError as exc:
                answers.append(exc.code)
    finally:
        desk.close()
    placed = [a for a in answers if isinstance(a, tuple)]
    refused = [a for a in answers if not isinstance(a, tuple)]
    # SKU-1: 18 units; click & collect and shop reserve rules may keep some back
    assert len(placed) + len(refused) == 30
    assert set(refused) <= {"insufficient_stock"}
    assert len(placed) == _reserved(retailer, "SKU-1") <= 18
    assert len({a[0] for a in placed}) == len(placed)
    assert desk.orders == 30
    assert 1 <= desk.batches <= 30
    assert commerce.check_ledger(retailer.engine) == []
    # the desk starts again after close; a placed order sent again answers the stored one
    n, done = next((i, a) for i, a in enumerate(answers) if isinstance(a, tuple))
    try:
        assert desk.place(reqs[n]) == (done[0], False, None)
    finally:
        desk.close()


def _first_batch_held(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, list[int]]:
    """The desk's ``place_orders`` records each batch's size and holds the first batch
    until the event is set (the orders sent meanwhile queue up)."""
    from trayecto.commerce import _desk

    gate = threading.Event()
    sizes: list[int] = []
    real = _desk.place_orders

    def held(engine: sa.Engine, reqs: list[commerce.OrderRequest], **kw: Any) -> Any:
        sizes.append(len(reqs))
        if len(sizes) == 1:
            assert gate.wait(30)
        return real(engine, reqs, **kw)

    monkeypatch.setattr(_desk, "place_orders", held)
    return gate, sizes


def test_orders_waiting_for_a_lane_go_in_one_batch(
    retailer: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the one lane places a first order, ten more arrive: they are placed in two
    batches (the desk's limit is 8), each order with its own answer."""
    gate, sizes = _first_batch_held(monkeypatch)
    desk = commerce.OrderDesk(retailer.engine, lanes=1, max_batch=8)
    try:
        first = desk.submit(_req("G-0", lines=[("SKU-1", 1)]))
        deadline = time.monotonic() + 30
        while not sizes:  # the lane has taken G-0 and waits at the gate
            assert time.monotonic() < deadline, first.exception(timeout=0)
            threading.Event().wait(0.01)
        rest = [desk.submit(_req(f"G-{i}", lines=[("SKU-1", 1)])) for i in range(1, 11)]
        gate.set()
        answers = [f.result(timeout=60) for f in [first, *rest]]
    finally:
        desk.close()
    assert sizes == [1, 8, 2]
    assert (desk.batches, desk.orders) == (3, 11)
    assert all(created for _, created, _ in answers)
    assert len({order_id for order_id, _, _ in answers}) == 11
    assert _reserved(retailer, "SKU-1") == 11
    # PostgreSQL: the lane kept one connection while orders waited (3 batches, 1 check-out)
    # and gave it back when the queue ran dry; the portable store checks out per batch
    leased = 1 if retailer.engine.dialect.name == "postgresql" else 0
    assert desk.checkouts == leased
    assert _checked_out(retailer) == 0


def test_under_load_a_lane_waits_for_as_many_orders_as_last_time(
    retailer: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a linger, a lane that took 4 orders last time and finds 2 waits for more (up
    to the linger) instead of placing 2 now: the next 2 that arrive join them. A lone
    order after that waits the linger once and goes alone; one after it does not wait."""
    gate, sizes = _first_batch_held(monkeypatch)

    def placed(n: int) -> None:
        deadline = time.monotonic() + 30
        while desk.orders < n:
            assert time.monotonic() < deadline, sizes
            threading.Event().wait(0.005)

    def send(*numbers: int) -> list[Any]:
        return [desk.submit(_req(f"L-{i}", lines=[("SKU-1", 1)])) for i in numbers]

    desk = commerce.OrderDesk(retailer.engine, lanes=1, max_batch=4, linger=1.0)
    try:
        futures = send(0)
        while not sizes:  # the lane has taken L-0 and waits at the gate
            threading.Event().wait(0.005)
        futures += send(1, 2, 3, 4)
        gate.set()
        placed(5)  # [1] then [4]
        futures += send(5, 6)  # the lane waits for two more (without a linger: it goes)
        threading.Event().wait(0.1)
        futures += send(7, 8)
        placed(9)
        started = time.monotonic()
        futures += send(9)  # alone: it waits the linger for company, once
        placed(10)
        waited = time.monotonic() - started
        futures += send(10)
        placed(11)
        answers = [f.result(timeout=30) for f in futures]
    finally:
        desk.close()
    assert sizes == [1, 4, 4, 1, 1]
    assert waited >= 0.95
    assert all(created for _, created, _ in answers)
    assert _reserved(retailer, "SKU-1") == 11


def _checked_out(p: Platform) -> int:
    pool = p.engine.pool
    assert isinstance(pool, sa.QueuePool | sa.pool.SingletonThreadPool | sa.pool.StaticPool)
    return pool.checkedout() if isinstance(pool, sa.QueuePool) else 0


def test_a_leased_connection_that_fails_is_replaced(retailer: Platform) -> None:
    """A lease keeps one connection across placements (no check-out, no ping); when the
    server ends it, the placement on it fails, the lease drops it, and the next placement
    takes a fresh one from the pool. Released, it is back in the pool, out of autocommit."""
    from trayecto.commerce._store import Lease

    if retailer.engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL's store places on a lease")
    import psycopg

    engine = retailer.engine
    lease = Lease(engine)
    try:
        for n in range(3):
            (placed,) = commerce.place_orders(engine, [_req(f"L-{n}")], lease=lease)
            assert isinstance(placed, tuple), placed
        assert lease.checkouts == 1
        assert lease.raw is not None
        pg: Any = lease.raw.driver_connection
        assert pg.autocommit is False  # as the pool hands connections out
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pg.info.backend_pid})
        with pytest.raises(psycopg.OperationalError):
            commerce.place_orders(engine, [_req("L-3")], lease=lease)
        assert lease.raw is None
        (placed,) = commerce.place_orders(engine, [_req("L-3")], lease=lease)
        assert isinstance(placed, tuple), placed
        assert placed[1] is True
        assert lease.checkouts == 2
    finally:
        lease.release()
    assert _checked_out(retailer) == 0
    assert _count(retailer, "SELECT count(*) FROM orders WHERE external_id LIKE 'L-%'") == 4


def test_another_order_under_a_key_in_the_batch_comes_after_the_first(
    retailer: Platform,
) -> None:
    """The first order under W-K is refused (too many units); a different order under the
    same key, in the same batch, is then placed on its own; a third answers it."""
    too_many = _req("W-K", lines=[("SKU-2", 50)])
    fits = _req("W-K", lines=[("SKU-1", 1)])
    refused, placed, answered = commerce.place_orders(
        retailer.engine, [too_many, fits, _req("W-K", lines=[("SKU-3", 1)])]
    )
    assert isinstance(refused, TrayectoError)
    assert refused.code == "insufficient_stock"
    assert isinstance(placed, tuple)
    assert placed[1] is True
    assert answered == (placed[0], False, None)
    view = commerce.get_order(retailer.engine, placed[0])
    assert [ln["sku"] for ln in view["lines"]] == ["SKU-1"]


def test_the_snapshot_runs_on_one_good_generic_plan(retailer: Platform) -> None:
    """The snapshot statement is prepared (psycopg does so after 5 runs) and then runs on
    PostgreSQL's generic plan: it is not planned again for every batch (it was, 30 custom
    plans of 30, while its expiry check took the time as a parameter). That generic plan
    must not read every order hold to find the expired cart holds: with the holds of many
    orders stored, one did (57 ms a batch instead of 1 ms)."""
    from datetime import timedelta

    from trayecto.commerce._store import session_of
    from trayecto.commerce._store_pg import _PG_SNAPSHOT
    from trayecto.kernel import utcnow

    if retailer.engine.dialect.name != "postgresql":
        pytest.skip("SQLite plans every statement for its own parameters")
    with retailer.engine.begin() as conn:  # 20,000 order holds: active, never expiring
        conn.exec_driver_sql(
            "INSERT INTO reservations (id, location_id, sku, quantity, kind, status,"
            " created_at) SELECT gen_random_uuid(), 'ECOM-ZGZ', 'SKU-1', 1, 'order', 'active',"
            " now() FROM generate_series(1, 20000)"
        )
        conn.exec_driver_sql("ANALYZE reservations")
    with session_of(retailer.engine) as session:
        pg: Any = session.pg  # type: ignore[attr-defined]
        for n in range(12):
            read = session.read([("web", f"W-{n}")], ["SKU-1", "SKU-2"], utcnow())
            assert not read.expired_holds
        plans = pg.execute("SELECT statement, generic_plans FROM pg_prepared_statements").fetchall()
        commerce.hold_for(
            retailer.engine, "ECOM-ZGZ", "SKU-2", 1, kind="cart",
            expires_at=utcnow() - timedelta(seconds=1),
        )  # fmt: skip
        assert session.read([("web", "W-X")], ["SKU-2"], utcnow()).expired_holds
        assert not session.read([("web", "W-X")], ["SKU-1"], utcnow()).expired_holds
    [generic_runs] = [g for sql, g in plans if "location_load" in sql and "UNION ALL" in sql]
    assert generic_runs > 0, plans  # it runs on the generic plan
    generic = _PG_SNAPSHOT
    for name, n, cast in (("skus", 1, "text[]"), ("channels", 2, "text[]"),
                          ("key_channels", 3, "text[]"), ("key_ids", 4, "text[]"),
                          ("days", 5, "date[]")):  # fmt: skip
        generic = generic.replace(f"%({name})s", f"${n}::{cast}")
    with retailer.engine.connect() as conn:
        conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        conn.exec_driver_sql(f"PREPARE snapshot AS {generic}")
        plan = "\n".join(
            conn.exec_driver_sql(
                "EXPLAIN EXECUTE snapshot('{SKU-1,SKU-2}', '{web}', '{web}', '{W-1}',"
                " '{2026-11-22,2026-11-23,2026-11-24}')"
            ).scalars()
        )
    assert "on reservations" in plan, plan
    assert "Seq Scan on reservations" not in plan, plan


def test_array_literals_carry_any_text(retailer: Platform) -> None:
    """trayecto_place() gets its arrays as literals built in Python: any location id or
    SKU, commas, quotes, backslashes, braces, spaces and the word NULL included, arrives
    as it was sent."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from trayecto.commerce._store_pg import _ints, _texts

    if retailer.engine.dialect.name != "postgresql":
        pytest.skip("the literals are PostgreSQL's array syntax")
    text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))
    with retailer.engine.connect() as conn:
        pg = conn.connection.driver_connection

        @settings(max_examples=200, deadline=None)
        @given(st.lists(text, max_size=8) | st.sampled_from([["NULL", "", " a ", "{x,y}"]]),
               st.lists(st.integers(-(2**31), 2**31 - 1), max_size=8))  # fmt: skip
        def round_trip(texts: list[str], ints: list[int]) -> None:
            got = pg.execute("SELECT %s::text[], %s::integer[]", (_texts(texts), _ints(ints)))
            assert got.fetchone() == (texts, ints)

        round_trip()


def test_closing_the_platform_stops_the_order_desk(retailer: Platform) -> None:
    """The desk's lanes start with the first order and stop when the platform closes
    (they would otherwise outlive it, waiting on its queue)."""

    def lanes() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("order-desk-")}

    before = lanes()  # other platforms' (none, if every test closes its own)
    retailer.order_desk.place(_req("CLOSE-1"))
    started = lanes() - before
    assert started
    retailer.close()
    assert not [t for t in started if t.is_alive()]
