"""The identity graph's rules, on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from tests.identity._helpers import active_customers, customer_of, run, snapshot, touch
from trayecto import identity
from trayecto.bootstrap import Platform
from trayecto.db import write_transaction
from trayecto.identity._golden import refresh_customers
from trayecto.identity._graph import Graph
from trayecto.identity._rules import IdType
from trayecto.identity._stitch import place
from trayecto.identity._tables import links as links_t
from trayecto.identity._tables import profiles
from trayecto.kernel import utcnow


def links(p: Platform) -> list[sa.Row[tuple[object, ...]]]:
    with p.engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT kind, reason, evidence, removed_at FROM id_links")
        ).all()


def refusals(p: Platform) -> list[str]:
    with p.engine.connect() as conn:
        return list(
            conn.execute(sa.text("SELECT rule FROM id_refusals ORDER BY created_at")).scalars()
        )


def test_anonymous_session_joins_the_customer_when_it_identifies(platform: Platform) -> None:
    e = platform.engine
    browse = [touch(anon="anon-1") for _ in range(3)]
    run(e, *browse)
    assert active_customers(e) == 1
    run(e, touch(type_="identify", anon="anon-1", user="C1", traits={"email": "lucia@example.es"}))
    cid = customer_of(e, "online_id", "C1")
    assert customer_of(e, "anonymous_id", "anon-1") == cid
    assert customer_of(e, "email", "lucia@example.es") == cid
    refs = identity.event_refs(e, cid, limit=10)
    assert {r.event_id for r in browse} <= {r.event_id for r in refs}
    assert len(refs) == 4


def test_same_strong_identifier_across_channels_merges_with_evidence(platform: Platform) -> None:
    e = platform.engine
    run(e, touch("web", "identify", user="C1", anon="a1", traits={"email": "ana@x.es"}))
    run(
        e,
        touch(
            "store", "identify", user="2901", traits={"email": "ANA@x.es ", "phone": "600112233"}
        ),
    )
    assert active_customers(e) == 1
    cid = customer_of(e, "pos_id", "2901")
    assert customer_of(e, "online_id", "C1") == cid
    assert customer_of(e, "phone", "+34600112233") == cid
    # The shop identify carried the email the web profile already had: grown, not merged.
    run(e, touch("app", "identify", user="C9", anon="a9", traits={"phone": "+34 600 11 22 33"}))
    # online_id is one per person: C9 cannot join C1's customer, even on a shared phone.
    assert customer_of(e, "online_id", "C9") != cid
    assert refusals(platform) == ["max_per_profile"]


def test_anonymous_profile_merge_is_recorded_with_reason_and_evidence(platform: Platform) -> None:
    e = platform.engine
    run(e, touch(anon="anon-7"))
    run(e, touch("web", "identify", user="C7", traits={"email": "x@y.es"}))
    assert active_customers(e) == 2
    run(e, touch("web", "track", user="C7", anon="anon-7"))
    assert active_customers(e) == 1
    [link] = links(platform)
    assert link.kind == "deterministic"
    assert "anonymous" in link.reason
    assert "anonymous_id:anon-7" in str(link.evidence)


def test_shared_tablet_never_fuses_two_known_customers(platform: Platform) -> None:
    e = platform.engine
    run(e, touch("store", "identify", user="L1", anon="tablet-MAD", traits={"email": "uno@x.es"}))
    run(e, touch("store", "identify", user="L2", anon="tablet-MAD", traits={"email": "dos@x.es"}))
    one, two = customer_of(e, "pos_id", "L1"), customer_of(e, "pos_id", "L2")
    assert one != two
    assert refusals(platform) == ["weak_identifier"]
    with e.connect() as conn:
        shared = conn.execute(
            sa.text("SELECT shared FROM id_identities WHERE value = 'tablet-MAD'")
        ).scalar_one()
    assert shared
    # After that, anonymous activity on the tablet is nobody's.
    orphan = touch("store", "track", anon="tablet-MAD")
    run(e, orphan)
    assert orphan.event_id not in {r.event_id for r in identity.event_refs(e, one, limit=50)}
    # Even with no unique identifier at stake, a device does not fuse two known people.
    run(e, touch("web", "identify", anon="kiosk", traits={"email": "tres@x.es"}))
    run(e, touch("web", "identify", anon="kiosk", traits={"phone": "611223344"}))
    assert customer_of(e, "email", "tres@x.es") != customer_of(e, "phone", "+34611223344")


def _attributed(e: Engine, event_id: UUID) -> int:
    with e.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM id_event_profiles WHERE event_id = :e"),
                {"e": event_id if e.dialect.name == "postgresql" else event_id.hex},
            ).scalar_one()
        )


def test_an_anonymous_till_sale_joins_its_ticket_not_the_tills_first_shopper(
    platform: Platform,
) -> None:
    """A shop's till is the shop's: its device id identifies no shopper. An anonymous sale
    carries its own ticket id, so it joins that ticket's profile (and the customer, once
    a later message names both)."""
    e = platform.engine
    run(e, touch("store", "identify", user="L1", device="till-MAD", traits={"email": "a@x.es"}))
    run(e, touch("store", "identify", user="L2", device="till-MAD", traits={"email": "b@x.es"}))
    sale = touch("store", "track", anon="TK-MAD-0001", device="till-MAD")
    run(e, sale)
    with e.connect() as conn:
        till = conn.execute(
            sa.text("SELECT count(*) FROM id_identities WHERE value = 'till-MAD'")
        ).scalar_one()
    assert till == 0
    assert _attributed(e, sale.event_id) == 1
    ticket = customer_of(e, "anonymous_id", "TK-MAD-0001")
    assert ticket not in (customer_of(e, "pos_id", "L1"), customer_of(e, "pos_id", "L2"))
    # the receipt e-mailed later names the ticket and the shopper: the sale joins her
    run(e, touch("store", "identify", user="L1", anon="TK-MAD-0001"))
    lucia = customer_of(e, "pos_id", "L1")
    assert customer_of(e, "anonymous_id", "TK-MAD-0001") == lucia
    assert sale.event_id in {r.event_id for r in identity.event_refs(e, lucia, limit=50)}


def test_a_shared_device_neither_links_nor_claims_a_new_session(platform: Platform) -> None:
    """A web kiosk two known customers used is shared: a new session on it is its own
    profile (not the first customer's), and a message with only the kiosk is nobody's."""
    e = platform.engine
    run(e, touch("web", "identify", user="W1", device="kiosk-1", traits={"email": "c@x.es"}))
    run(e, touch("web", "identify", user="W2", device="kiosk-1", traits={"email": "d@x.es"}))
    assert refusals(platform) == ["weak_identifier"]
    visit = touch("web", "track", anon="sess-9", device="kiosk-1")
    run(e, visit)
    assert _attributed(e, visit.event_id) == 1
    session = customer_of(e, "anonymous_id", "sess-9")
    assert session not in (customer_of(e, "online_id", "W1"), customer_of(e, "online_id", "W2"))
    orphan = touch("web", "track", device="kiosk-1")
    run(e, orphan)
    assert _attributed(e, orphan.event_id) == 0


def test_household_sharing_email_keeps_two_customer_numbers_apart(platform: Platform) -> None:
    e = platform.engine
    with write_transaction(e) as conn:
        g = Graph(conn)

        place(
            g,
            [(IdType.CUSTOMER_NUMBER, "N1"), (IdType.EMAIL, "familia@x.es")],
            utcnow(),
            "web",
            None,
        )
        place(
            g,
            [(IdType.CUSTOMER_NUMBER, "N2"), (IdType.EMAIL, "familia@x.es")],
            utcnow(),
            "web",
            None,
        )
        g.flush()
        refresh_customers(conn, g.dirty - g.retired, utcnow())
    assert customer_of(e, "customer_number", "N1") != customer_of(e, "customer_number", "N2")
    assert refusals(platform) == ["max_per_profile"]


def test_alias_links_previous_id(platform: Platform) -> None:
    e = platform.engine
    run(e, touch(anon="old-anon"))
    run(e, touch("web", "alias", user="C5", previous="old-anon"))
    assert customer_of(e, "anonymous_id", "old-anon") == customer_of(e, "online_id", "C5")


def test_golden_record_survivorship_and_provenance(platform: Platform) -> None:
    e = platform.engine
    run(
        e,
        touch(
            "web",
            "identify",
            user="C1",
            traits={"firstName": "lucia", "lastName": "garcia", "email": "l@x.es"},
        ),
        touch(
            "web",
            "identify",
            user="C1",
            traits={"firstName": "Lucía", "lastName": "García", "phone": "600000001"},
        ),
        touch(
            "store",
            "identify",
            user="P1",
            traits={"email": "l@x.es", "firstName": "Lucía", "birthday": "1990-01-01"},
        ),
        touch(
            "social",
            "identify",
            user="lucia_g",
            traits={"email": "l@x.es", "birthday": "1991-05-05"},
        ),
        touch("web", "identify", user="C1", traits={"phone": "600000002"}),
    )
    view = identity.get_customer(e, customer_of(e, "online_id", "C1"))
    g = view.golden
    assert g["first_name"]["value"] == "Lucía"  # the best-written spelling of the most frequent
    assert g["first_name"]["rule"] == "most_frequent"
    assert g["first_name"]["count"] == 3
    assert g["phone"]["value"] == "+34600000002"  # most recent
    assert g["birth_date"]["value"] == "1990-01-01"  # the shop is trusted over social
    assert g["birth_date"]["channel"] == "store"
    assert g["birth_date"]["alternatives"] == 1
    assert view.display_name == "Lucía García"
    assert view.counts["events"] == 5
    assert set(view.channels) == {"web", "store", "social"}


def test_search_by_any_identifier_or_name(platform: Platform) -> None:
    e = platform.engine
    run(
        e,
        touch(
            "web",
            "identify",
            user="C1",
            traits={"firstName": "Lucía", "lastName": "García Núñez", "phone": "600112233"},
        ),
    )
    run(
        e,
        touch(
            "web",
            "identify",
            user="C2",
            traits={"firstName": "Pablo", "lastName": "Lucas", "email": "pablo@x.es"},
        ),
    )
    cid = customer_of(e, "online_id", "C1")
    for q in (
        "+34 600 11 22 33",
        "600112233",
        "0034600112233",
        "lucia garcia",
        "García Núñez",
        "C1",
    ):
        found = identity.search_customers(e, q, "ES")
        assert [c.id for c in found][:1] == [cid], q
    assert identity.search_customers(e, "PABLO@x.es", "ES")[0].matched_on == "email"
    assert identity.search_customers(e, "nobody", "ES") == []


def test_unmerge_splits_and_restores(platform: Platform) -> None:
    e = platform.engine
    run(e, touch("web", "identify", user="C1", traits={"email": "a@x.es", "firstName": "Ana"}))
    run(
        e, touch("store", "identify", user="P9", traits={"phone": "611000000", "firstName": "Luis"})
    )
    ana, luis = customer_of(e, "online_id", "C1"), customer_of(e, "pos_id", "P9")
    before = snapshot(e)
    # Ana types her brother's phone on the web: the phone is strong, so they merge.
    run(e, touch("web", "identify", user="C1", traits={"phone": "611000000"}))
    assert customer_of(e, "online_id", "C1") == customer_of(e, "pos_id", "P9") == min(ana, luis)
    view = identity.get_customer(e, ana)
    merge = next(m for m in view.merges if m.removed_at is None)
    assert merge.evidence["identifiers"] == ["phone:+34611000000"]
    assert identity.get_customer(e, max(ana, luis)).id == min(ana, luis)  # old id redirects
    identity.unmerge(e, merge.id, "two people: Ana gave her brother's phone")
    assert (customer_of(e, "online_id", "C1"), customer_of(e, "pos_id", "P9")) == (ana, luis)
    after = snapshot(e)
    assert after["profiles"] == before["profiles"]
    assert after["identities"] == before["identities"]
    old_events = {ev for ev, _ in before["events"]}
    assert [x for x in after["events"] if x[0] in old_events] == before["events"]
    luis_row = [c for c in after["customers"] if str(c[0]).replace("-", "") == luis.hex]
    assert luis_row == [c for c in before["customers"] if str(c[0]).replace("-", "") == luis.hex]
    assert (
        identity.get_customer(e, ana).golden["phone"]["value"] == "+34611000000"
    )  # she did type it
    assert [m.removed_at is not None for m in identity.get_customer(e, ana).merges] == [True]


ids = st.sampled_from(
    ["e1@x.es", "e2@x.es", "e3@x.es", "600000001", "600000002", "C1", "C2", "anon1", "anon2"]
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    history=st.lists(
        st.tuples(
            st.sampled_from(["web", "store", "app"]),
            ids,
            ids,
            st.sampled_from(["Ana", "ANA", "Eva"]),
        ),
        min_size=2,
        max_size=12,
    ),
    pick=st.tuples(st.integers(0, 50), st.integers(0, 50)),
)
def test_merge_then_unmerge_restores_the_original_state_exactly(
    platform: Platform, history, pick
) -> None:  # type: ignore[no-untyped-def]
    e = platform.engine
    with e.begin() as conn:
        for t in (
            "id_links",
            "id_refusals",
            "id_event_profiles",
            "id_observations",
            "id_identities",
            "id_customers",
            "id_profiles",
        ):
            conn.execute(sa.text(f"DELETE FROM {t}"))
    touches = []
    for channel, a, b, name in history:
        traits = {"firstName": name}
        for v in (a, b):
            if "@" in v:
                traits["email"] = v
            elif v.isdigit():
                traits["phone"] = v
        user = next((v for v in (a, b) if v.startswith("C")), None)
        anon = next((v for v in (a, b) if v.startswith("anon")), None)
        if user is None and anon is None:
            anon = f"anon-{a}"
        touches.append(touch(channel, "identify", user=user, anon=anon, traits=traits))
    run(e, *touches)
    with e.connect() as conn:
        cids = sorted(set(conn.execute(sa.select(profiles.c.customer_id)).scalars()))
    if len(cids) < 2:
        return
    a_c, b_c = cids[pick[0] % len(cids)], cids[pick[1] % len(cids)]
    if a_c == b_c:
        return
    before = snapshot(e)
    with write_transaction(e) as conn:
        g = Graph(conn)
        merged = g.try_link(a_c, b_c, [], utcnow(), kind="manual", reason="agent merged")
        g.flush()
        refresh_customers(conn, g.dirty - g.retired, utcnow())
    event("merged" if merged else "merge refused")
    if not merged:
        assert snapshot(e) == before  # a refused merge changes nothing
        return
    assert snapshot(e) != before
    with e.connect() as conn:
        link_id = conn.execute(
            sa.select(links_t.c.id).where(links_t.c.kind == "manual")
        ).scalar_one()
    identity.unmerge(e, link_id, "undo")
    assert snapshot(e) == before
