"""The console's review queue through the app: the pairs with their evidence, decisions
with the session's CSRF token and a confirmation, the roles of ``/api/review``, the empty
state, and errors that say what to do next."""

from __future__ import annotations

import re
from pathlib import Path
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI

from tests.helpers import csrf_of
from tests.identity._pairs import queue_pairs
from tests.integration.console_helpers import call, signed_in
from trayecto import identity
from trayecto.access import _users
from trayecto.bootstrap import Platform
from trayecto.web import create_app
from trayecto.web.console import _review_pages
from trayecto.web.console._i18n import Formatter
from trayecto.web.console._review_present import LEVEL_LABELS


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_users, "SCRYPT_N", 2**10)


@pytest.fixture
def app(platform: Platform) -> FastAPI:
    return create_app(platform)


@pytest.fixture
def pairs(platform: Platform, tmp_path: Path) -> list[identity.Candidate]:
    return queue_pairs(platform, tmp_path)


def pair_html(html: str, candidate_id: UUID) -> str:
    start = html.index(f'id="pair-{candidate_id}"')
    return html[start : html.index("</article>", start)]


def status_of(platform: Platform, candidate_id: UUID) -> str:
    return identity.get_candidate(platform.engine, candidate_id).status


def test_the_queue_shows_both_customers_and_the_evidence_field_by_field(
    platform: Platform, app: FastAPI, pairs: list[identity.Candidate]
) -> None:
    agent = signed_in(platform, "agent")
    r = call(app, "GET", "/console/review", headers=agent)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    html = r.text
    assert '<a href="/console/review" aria-current="page">' in html  # in the navigation
    assert "Posibles duplicados por revisar" in html
    # The API's order: the pairs appear as identity.review_queue gives them.
    positions = [html.index(f'id="pair-{c.id}"') for c in pairs]
    assert positions == sorted(positions)

    lucia = next(c for c in pairs if c.a.display_name and "Luc" in c.a.display_name)
    card = pair_html(html, lucia.id)
    for side in (lucia.a, lucia.b):
        assert f'href="/console/customers/{side.id}"' in card
    assert "Lucía García Pérez" in card
    assert "Lucia Garcia Perez" in card
    assert f"{lucia.probability * 100:.1f}".replace(".", ",") + "\xa0%" in card
    assert card.count('class="ev ev-') == len(lucia.evidence) + 1  # and the prior
    # Agreeing and disagreeing fields are marked as such, with the level and the weight.
    rows = {
        m.group(2): m.group(1)
        for m in re.finditer(r'<tr class="ev ev-(\w+)">\s*<th scope="row">([^<]+)</th>', card)
    }
    assert rows["Fecha de nacimiento"] == "agree"
    assert rows["Correo electrónico"] == "disagree"
    assert rows["Teléfono"] == "neutral"  # Lucía's second record has no phone
    assert "3 de febrero de 1990" in card
    assert "idéntico" in card
    assert "falta en uno de los dos" in card
    birth = next(e for e in lucia.evidence if e["field"] == "birth_date")
    assert f"+{birth['weight']:.1f}".replace(".", ",") in card
    # A form per decision, carrying the session's token.
    assert f'action="/console/review/{lucia.id}"' in card
    assert f'name="csrf" value="{csrf_of(html)}"' in card
    assert 'name="decision" value="accept"' in card
    assert 'name="decision" value="reject"' in card

    # In English for an English-speaking agent.
    en = call(app, "GET", "/console/review", headers=signed_in(platform, "agent", "en")).text
    card = pair_html(en, lucia.id)
    assert "Possible duplicates to review" in en
    assert "Birth date" in card
    assert "exact" in card
    assert "Same person: merge" in card


def test_pages_follow_the_api_cursor(
    platform: Platform,
    app: FastAPI,
    pairs: list[identity.Candidate],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_review_pages, "REVIEW_PAGE", 1)
    agent = signed_in(platform, "agent")
    first = call(app, "GET", "/console/review", headers=agent).text
    assert f'id="pair-{pairs[0].id}"' in first
    assert f'id="pair-{pairs[1].id}"' not in first
    more = re.search(r'<p class="pager"><a class="btn" href="([^"]+)"', first)
    assert more is not None
    second = call(app, "GET", more.group(1).replace("&amp;", "&"), headers=agent)
    assert second.status_code == 200
    assert f'id="pair-{pairs[1].id}"' in second.text
    assert 'class="pager"' not in second.text
    # A decision on the second page comes back to the second page.
    cursor = more.group(1).split("cursor=")[1]
    assert f'name="cursor" value="{cursor}"' in second.text
    r = call(
        app,
        "POST",
        f"/console/review/{pairs[1].id}",
        data={"csrf": csrf_of(second.text), "decision": "reject", "cursor": cursor},
        headers=agent,
    )
    assert r.headers["location"] == f"/console/review?cursor={cursor}&decided={pairs[1].id}"
    after = call(app, "GET", r.headers["location"], headers=agent).text
    assert "No hay más parejas" in after
    assert "Se mantienen separados." in after
    # A cursor this page never gave out.
    r = call(app, "GET", "/console/review?cursor=nonsense", headers=agent)
    assert r.status_code == 400
    assert "Empieza de nuevo desde la primera página de la cola" in r.text
    assert 'href="/console/review"' in r.text


def test_accept_merges_reject_keeps_apart_and_each_says_so(
    platform: Platform, app: FastAPI, pairs: list[identity.Candidate]
) -> None:
    agent = signed_in(platform, "agent")
    page = call(app, "GET", "/console/review", headers=agent).text
    token = csrf_of(page)
    one, two = pairs

    r = call(
        app,
        "POST",
        f"/console/review/{one.id}",
        data={"csrf": token, "decision": "accept"},
        headers=agent,
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/review?decided={one.id}"
    done = identity.get_candidate(platform.engine, one.id)
    assert done.status == "accepted"
    assert done.decided_by == "console:agent.es@example.es"
    assert done.a.id == done.b.id  # one customer now
    view = identity.get_customer(platform.engine, done.a.id)
    assert any(m.kind == "manual" and m.id == done.link_id for m in view.merges)
    shown = call(app, "GET", f"/console/review?decided={one.id}", headers=agent).text
    flash = shown[shown.index('id="flash"') : shown.index("</div>", shown.index('id="flash"'))]
    assert "Fusionados." in flash
    assert f'href="/console/customers/{done.a.id}"' in flash
    assert f'id="pair-{one.id}"' not in shown  # it left the queue
    # The 360 tells how the customer was put together, in the agent's words.
    page = call(app, "GET", f"/console/customers/{done.a.id}", headers=agent).text
    merges = page[page.index('id="merges"') : page.index("</section>", page.index('id="merges"'))]
    assert "Fusionados en la cola de revisión por agent.es@example.es." in merges
    agreed = [e for e in done.evidence if e["weight"] > 0]
    assert agreed
    assert merges.count('<span class="tag">') >= len(agreed)
    for raw in ("accepted in review", "match weight", "probability", "run id", "fields"):
        assert raw not in merges
    assert f'id="pair-{two.id}"' in shown

    r = call(
        app,
        "POST",
        f"/console/review/{two.id}",
        data={"csrf": token, "decision": "reject"},
        headers=agent,
    )
    assert r.status_code == 303
    kept = identity.get_candidate(platform.engine, two.id)
    assert kept.status == "rejected"
    assert kept.a.id != kept.b.id
    shown = call(app, "GET", f"/console/review?decided={two.id}", headers=agent).text
    assert "Se mantienen separados." in shown
    assert "no se volverán a proponer" in shown

    # A second decision (a colleague's, or the back button) is refused with the reason.
    r = call(
        app,
        "POST",
        f"/console/review/{two.id}",
        data={"csrf": token, "decision": "accept"},
        headers=agent,
    )
    assert r.status_code == 409
    assert "Esta pareja ya estaba decidida (mantenidos separados)" in r.text
    assert status_of(platform, two.id) == "rejected"
    # Nothing left: the empty state.
    assert "Nada que revisar" in r.text
    # A pair that does not exist, and a decision that is neither.
    r = call(
        app,
        "POST",
        "/console/review/01a203c7-6dae-716e-abf1-03861723fcee",
        data={"csrf": token, "decision": "accept"},
        headers=agent,
    )
    assert r.status_code == 404
    assert "Vuelve a la cola y sigue con la siguiente" in r.text
    assert 'href="/console/review"' in r.text
    r = call(
        app,
        "POST",
        f"/console/review/{one.id}",
        data={"csrf": token, "decision": "maybe"},
        headers=agent,
    )
    assert r.status_code == 400
    assert "Elige «Misma persona» o «Personas distintas»" in r.text


def test_decisions_need_the_csrf_token_and_this_site(
    platform: Platform, app: FastAPI, pairs: list[identity.Candidate]
) -> None:
    agent = signed_in(platform, "agent")
    token = csrf_of(call(app, "GET", "/console/review", headers=agent).text)
    target = f"/console/review/{pairs[0].id}"
    r = call(app, "POST", target, data={"decision": "accept"}, headers=agent)
    assert r.status_code == 400
    assert "El formulario había caducado. Vuelve a intentarlo." in r.text
    assert '<a class="btn" href="/console/review">Volver a la cola de revisión</a>' in r.text
    r = call(app, "POST", target, data={"decision": "accept", "csrf": "x" * 64}, headers=agent)
    assert r.status_code == 400
    # Another session's token does not work either.
    other = csrf_of(call(app, "GET", "/console/review", headers=signed_in(platform, "admin")).text)
    r = call(app, "POST", target, data={"decision": "accept", "csrf": other}, headers=agent)
    assert r.status_code == 400
    r = call(
        app,
        "POST",
        target,
        data={"decision": "accept", "csrf": token},
        headers=agent | {"Origin": "http://evil.example"},
    )
    assert r.status_code == 403
    assert status_of(platform, pairs[0].id) == "pending"


def test_only_reviewers_see_the_page_and_the_link(
    platform: Platform, app: FastAPI, pairs: list[identity.Candidate]
) -> None:
    r = call(app, "GET", "/console/review")
    assert (r.status_code, r.headers["location"]) == (
        303,
        "/console/login?next=%2Fconsole%2Freview",
    )
    r = call(app, "POST", f"/console/review/{pairs[0].id}", data={"decision": "accept"})
    assert (r.status_code, r.headers["location"]) == (
        303,
        "/console/login?next=%2Fconsole%2Freview",
    )

    clerk = signed_in(platform, "store_staff")
    home = call(app, "GET", "/console", headers=clerk)
    assert home.status_code == 200
    assert "/console/review" not in home.text
    r = call(app, "GET", "/console/review", headers=clerk)
    assert r.status_code == 403
    assert "Tu rol (Personal de tienda) no permite decidir si dos clientes" in r.text
    assert "Pídeselo a un administrador" in r.text
    assert "Lucía" not in r.text
    token = csrf_of(home.text)
    r = call(
        app,
        "POST",
        f"/console/review/{pairs[0].id}",
        data={"csrf": token, "decision": "accept"},
        headers=clerk,
    )
    assert r.status_code == 403
    assert status_of(platform, pairs[0].id) == "pending"

    marketing = signed_in(platform, "marketing")
    assert call(app, "GET", "/console/review", headers=marketing).status_code == 403
    for role in ("agent", "admin"):
        cookie = signed_in(platform, role)
        assert 'href="/console/review"' in call(app, "GET", "/console", headers=cookie).text
        assert call(app, "GET", "/console/review", headers=cookie).status_code == 200


def test_empty_queue(platform: Platform, app: FastAPI) -> None:
    r = call(app, "GET", "/console/review", headers=signed_in(platform, "agent"))
    assert r.status_code == 200
    assert "Nada que revisar" in r.text
    assert "trayecto resolve" in r.text
    assert 'class="card pair"' not in r.text
    en = call(app, "GET", "/console/review", headers=signed_in(platform, "agent", "en"))
    assert "Nothing to review" in en.text


def test_every_level_of_the_model_has_a_translation(
    platform: Platform, pairs: list[identity.Candidate]
) -> None:
    model = identity.latest_model(platform.engine)
    assert model is not None
    labels = {lv["label"] for f in model.described["fields"] for lv in f["levels"]}
    assert labels
    assert labels <= set(LEVEL_LABELS)
    shown = {e["level"] for c in pairs for e in c.evidence}
    assert shown <= set(LEVEL_LABELS)


def test_probabilities_and_weights_for_people() -> None:
    es = Formatter("es", ZoneInfo("Europe/Madrid"))
    en = Formatter("en", ZoneInfo("Europe/Madrid"))
    assert es.percent(0.97427) == "97,4\xa0%"
    assert en.percent(0.97427) == "97.4%"
    assert es.percent(0.99999) == "99,9\xa0%"  # short of certain is never shown as 100
    assert es.signed(2.72) == "+2,7"
    assert en.signed(-0.42) == "-0.4"
    assert es.signed(0.0) == es.signed(-0.01) == "0,0"
