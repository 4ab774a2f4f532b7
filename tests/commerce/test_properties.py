"""Property-based tests (hypothesis) of the invariants: on hand = sum of movements,
0 <= reserved <= on hand, ATP never negative, the state machine never skips or reverses,
and the sourcing optimiser is exact."""

from __future__ import annotations

import itertools
from pathlib import Path
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.commerce.conftest import order_body, write
from trayecto import commerce
from trayecto.bootstrap import Platform
from trayecto.commerce import GroupStatus, Method
from trayecto.kernel import ConflictError, TrayectoError

LOCS = ("L1", "L2", "L3")
SKUS = ("P1", "P2")

op = st.one_of(
    st.tuples(
        st.just("order"), st.sampled_from(SKUS), st.integers(1, 4), st.sampled_from(list(Method))
    ),
    st.tuples(st.just("count"), st.sampled_from(SKUS), st.sampled_from(LOCS), st.integers(0, 6)),
    st.tuples(st.just("step"), st.integers(0, 50), st.sampled_from(list(GroupStatus))),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
)


@pytest.fixture
def shop(platform: Platform, tmp_path: Path) -> Platform:
    locs = (
        "id,name,type,latitude,longitude,capabilities\n"
        "L1,Almacén,ecommerce_warehouse,40.4,-3.7,ship\n"
        "L2,Tienda,shop,41.4,2.2,ship|click_and_collect|ship_to_store\n"
        "L3,Tienda 2,shop,39.5,-0.4,click_and_collect|ship_to_store\n"
        "L4,Punto,pickup_point,39.4,-0.4,\n"
    )
    prods = "sku,name,price,currency\nP1,Uno,1.00,EUR\nP2,Dos,2.00,EUR\n"
    stock = "sku,location_id,on_hand\nP1,L1,5\nP1,L2,3\nP2,L2,2\nP2,L3,4\n"
    for kind, text in (("locations", locs), ("products", prods), ("stock", stock)):
        commerce.import_catalogue(platform.engine, kind, write(tmp_path, f"{kind}.csv", text))
    return platform


def _check(p: Platform) -> None:
    assert commerce.check_ledger(p.engine) == []
    for lv in commerce.stock_levels(p.engine):
        assert 0 <= lv.reserved <= lv.on_hand
        assert lv.available >= 0


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(op, min_size=1, max_size=14))
def test_stock_invariants_hold_under_any_sequence(
    shop: Platform, ops: list[tuple[object, ...]]
) -> None:
    orders: list[UUID] = []
    refusals: list[str] = []
    n = len(commerce.find_orders(shop.engine, limit=200))
    for i, o in enumerate(ops):
        try:
            if o[0] == "order":
                _, sku, qty, method = o
                where = "L4" if method is Method.PICKUP_POINT else "L2"
                f: dict[str, object] = {"method": method.value, "location_id": where}
                if method is Method.DELIVERY:
                    f = {
                        "method": "delivery",
                        "address": {
                            "line1": "x",
                            "postcode": "28001",
                            "city": "Madrid",
                            "country": "ES",
                        },
                    }
                req = commerce.check_order(
                    order_body(f"P-{n}-{i}", lines=[(str(sku), int(qty))], fulfilment=f)
                )  # type: ignore[call-overload]
                orders.append(commerce.place_order(shop.engine, req)[0])
            elif o[0] == "count":
                _, sku, loc, qty = o
                path = write(
                    Path(shop.settings.resolved_home),
                    "c.csv",
                    f"sku,location_id,on_hand\n{sku},{loc},{qty}\n",
                )
                commerce.import_catalogue(shop.engine, "stock", path)
            elif o[0] == "step" and orders:
                _, k, status = o
                view = commerce.get_order(shop.engine, orders[int(k) % len(orders)])  # type: ignore[call-overload]
                group = view["fulfilment_groups"][-1]
                if status is GroupStatus.REJECTED:  # the location refuses it: re-sourced
                    commerce.reject_group(
                        shop.engine, UUID(view["id"]), UUID(group["id"]), reason="property"
                    )
                else:
                    commerce.advance_group(
                        shop.engine, UUID(view["id"]), UUID(group["id"]), status.value
                    )  # type: ignore[union-attr]
            elif o[0] == "cancel" and orders:
                commerce.cancel_order(shop.engine, orders[int(o[1]) % len(orders)])  # type: ignore[call-overload]
        except ConflictError as exc:
            refusals.append(exc.code)
        _check(shop)
    assert set(refusals) <= {"insufficient_stock", "illegal_transition", "count_below_reserved"}


@given(
    method=st.sampled_from(list(Method)),
    transfer=st.booleans(),
    wishes=st.lists(st.sampled_from(list(GroupStatus)), max_size=20),
)
def test_state_machine_never_skips_or_reverses(
    method: Method, transfer: bool, wishes: list[GroupStatus]
) -> None:
    from trayecto.commerce._model import RANK, check_transition

    if method is not Method.DELIVERY and method is not Method.CLICK_AND_COLLECT:
        transfer = True
    status = GroupStatus.ALLOCATED
    path = [status]
    for want in wishes:
        legal = want in commerce.next_statuses(status, method, transfer)
        try:
            check_transition(status, want, method, transfer)
        except ConflictError:
            assert not legal
            continue
        assert legal
        if want is GroupStatus.REJECTED:  # only before the goods are packed
            assert status in (GroupStatus.ALLOCATED, GroupStatus.PICKING)
        elif want is not GroupStatus.CANCELLED:
            assert RANK[want] > RANK[status]  # only forward
            assert (
                RANK[want] - RANK[status] <= 2
            )  # packed→ready skips "shipped" only without transfer
        status = want
        path.append(status)
    if status in (
        GroupStatus.DELIVERED,
        GroupStatus.COLLECTED,
        GroupStatus.CANCELLED,
        GroupStatus.REJECTED,
    ):
        assert commerce.next_statuses(status, method, transfer) == frozenset()
    if GroupStatus.DELIVERED in path:
        assert method is Method.DELIVERY
        assert GroupStatus.SHIPPED in path
    if GroupStatus.COLLECTED in path:
        assert GroupStatus.READY_FOR_PICKUP in path
    if transfer and GroupStatus.READY_FOR_PICKUP in path:
        assert GroupStatus.SHIPPED in path


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    n_lines=st.integers(1, 5),
    n_locs=st.integers(1, 7),
    penalty=st.floats(0, 10),
    max_locations=st.integers(1, 4),
)
def test_optimiser_is_exact(
    data: st.DataObject, n_lines: int, n_locs: int, penalty: float, max_locations: int
) -> None:
    fixed = data.draw(st.lists(st.floats(0, 20), min_size=n_locs, max_size=n_locs))
    options = []
    for _ in range(n_lines):
        opts = data.draw(
            st.lists(
                st.tuples(st.integers(0, n_locs - 1), st.floats(0, 10)),
                min_size=1,
                max_size=n_locs,
                unique_by=lambda x: x[0],
            )
        )
        options.append(opts)
    cost, pick = commerce.optimise(options, fixed, penalty, max_locations)
    feasible = [
        sum(v for (_, v) in choice)
        + sum(fixed[j] for j in {j for j, _ in choice})
        + penalty * (len({j for j, _ in choice}) - 1)
        for choice in itertools.product(*options)
        if len({j for j, _ in choice}) <= max_locations
    ]
    if not feasible:
        assert (cost, pick) == (float("inf"), [])
        return
    assert cost == pytest.approx(min(feasible), abs=1e-9)
    # the plan is one of the options of each line and costs what it says
    assert all(j in dict(o) for o, j in zip(options, pick, strict=True))
    used = set(pick)
    assert len(used) <= max_locations
    assert cost == pytest.approx(
        sum(dict(o)[j] for o, j in zip(options, pick, strict=True))
        + sum(fixed[j] for j in used)
        + penalty * (len(used) - 1),
        abs=1e-9,
    )


def test_order_status_from_groups() -> None:
    s = GroupStatus
    assert commerce.order_status([s.SHIPPED, s.PACKED]) == "partially_shipped"
    assert commerce.order_status([s.DELIVERED, s.COLLECTED]) == "completed"
    assert commerce.order_status([s.CANCELLED, s.PICKING]) == "picking"
    assert commerce.order_status([s.CANCELLED]) == "cancelled"


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n_sites=st.integers(1, 6), n_skus=st.integers(1, 3))
def test_the_engine_finds_the_cheapest_plan(data: st.DataObject, n_sites: int, n_skus: int) -> None:
    """The engine's cost model, written out independently, solved by brute force."""
    from trayecto.commerce import LocationType, Policy, Site

    types = [t for t in LocationType if t is not LocationType.PICKUP_POINT]
    sites = [
        Site(
            id=f"L{i}",
            type=data.draw(st.sampled_from(types)),
            latitude=data.draw(st.floats(36, 43)),
            longitude=data.draw(st.floats(-8, 3)),
            capabilities=frozenset({commerce.Capability.SHIP}),
        )
        for i in range(n_sites)
    ]
    skus = [f"S{k}" for k in range(n_skus)]
    demand = {s: data.draw(st.integers(1, 3)) for s in skus}
    available = {
        (site.id, s): q
        for site in sites
        for s in skus
        if (q := data.draw(st.integers(0, 6))) >= demand[s]
    }
    if not all(any((site.id, s) in available for site in sites) for s in skus):
        return  # some line nobody holds whole: splits are another story
    policy = Policy()
    dest = (40.4, -3.7)
    plan = commerce.source(
        demand, sites, available, method=Method.DELIVERY, policy=policy, destination=dest
    )
    fixed = {
        s.id: policy.shipment_cost[s.type.value]
        + policy.per_km * commerce.haversine_km((s.latitude, s.longitude), dest)
        for s in sites
    }

    def var(site: Site, sku: str) -> float:
        q, a = demand[sku], available[(site.id, sku)]
        v = policy.pick_cost[site.type.value] * q
        if site.type is LocationType.SHOP:
            v += policy.walk_in_penalty * max(0, q - max(0, a - policy.walk_in_reserve))
        return v

    holders = [[s for s in sites if (s.id, sku) in available] for sku in skus]
    best = min(
        sum(var(site, sku) for site, sku in zip(choice, skus, strict=True))
        + sum(fixed[i] for i in {s.id for s in choice})
        + policy.split_penalty * (len({s.id for s in choice}) - 1)
        for choice in itertools.product(*holders)
        if len({s.id for s in choice}) <= policy.max_locations
    )
    assert plan.cost == pytest.approx(best, abs=1e-9)
    assert plan.explanation["chosen"] == plan.locations


_FULFIL = {
    "delivery": {
        "method": "delivery",
        "address": {"line1": "x", "postcode": "28001", "city": "Madrid", "country": "ES"},
    },
    "click_and_collect": {"method": "click_and_collect", "location_id": "L2"},
    "ship_to_store": {"method": "ship_to_store", "location_id": "L3"},
}
_examples = itertools.count()


def _outcome(answer: object, first_of: dict[UUID, int], i: int) -> tuple[object, ...]:
    """What an answer says, independent of ids: created (and where), a copy of the i-th
    answer, or refused (and why)."""
    if isinstance(answer, TrayectoError):
        return ("refused", answer.code)
    assert isinstance(answer, tuple)
    order_id, created, view = answer
    if not created:
        return ("copy of", first_of[order_id])
    first_of[order_id] = i
    assert view is not None
    return ("created", tuple(view["locations"]))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batch=st.lists(
        st.tuples(
            st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 3)), min_size=1, max_size=2),
            st.sampled_from(sorted(_FULFIL)),
            st.integers(0, 5),  # the order's key: the same key twice is the same order
        ),
        min_size=1,
        max_size=8,
    )
)
def test_a_batch_answers_as_its_orders_placed_one_by_one(
    shop: Platform, batch: list[tuple[list[tuple[str, int]], str, int]]
) -> None:
    """place_orders sources each order of a batch on what the ones before it left: every
    answer (created where, refused why, a copy of which) is the one placing the same
    orders one at a time would give, from the same stock."""
    n = next(_examples)
    order_of: dict[int, tuple[list[tuple[str, int]], str]] = {}

    def reqs(tag: str) -> list[commerce.OrderRequest]:
        out = []
        for lines_, method_, key in batch:
            lines, method = order_of.setdefault(key, (lines_, method_))  # a retry: the same
            skus: dict[str, int] = {}
            for sku, qty in lines:
                skus[sku] = skus.get(sku, 0) + qty
            body = order_body(
                f"{tag}-{n}-{key}", lines=sorted(skus.items()), fulfilment=_FULFIL[method]
            )
            out.append(commerce.check_order(body))
        return out

    def run(answers: list[object]) -> list[tuple[object, ...]]:
        first_of: dict[UUID, int] = {}
        return [_outcome(a, first_of, i) for i, a in enumerate(answers)]

    before = {(lv.location_id, lv.sku): lv.reserved for lv in commerce.stock_levels(shop.engine)}
    answers = commerce.place_orders(shop.engine, reqs("B"))
    together = run(answers)
    _check(shop)
    created = [a[0] for a in answers if isinstance(a, tuple) and a[1]]
    again = commerce.place_orders(shop.engine, reqs("B"))  # every order already stored
    for outcome, answer in zip(together, again, strict=True):
        if outcome[0] != "refused":
            assert isinstance(answer, tuple)
            assert answer[1] is False
    for order_id in created:
        commerce.cancel_order(shop.engine, order_id)
    after = {(lv.location_id, lv.sku): lv.reserved for lv in commerce.stock_levels(shop.engine)}
    assert after == before  # the same stock again

    one_by_one: list[object] = []
    for req in reqs("S"):
        try:
            one_by_one.append(commerce.place_order(shop.engine, req))
        except TrayectoError as exc:
            one_by_one.append(exc)
    assert together == run(one_by_one)
    for answer in one_by_one:
        if isinstance(answer, tuple) and answer[1]:
            commerce.cancel_order(shop.engine, answer[0])
    _check(shop)
