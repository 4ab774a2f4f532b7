"""Sources, write keys and API tokens on a real database."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from trayecto import access
from trayecto.bootstrap import Platform
from trayecto.kernel import AuthenticationError, ConflictError, NotFoundError, ValidationError


def test_write_key_authenticates_its_source_and_is_stored_hashed(platform: Platform) -> None:
    issued = access.create_source(platform.engine, "Madrid Serrano POS", "store", "MAD-SERRANO")
    src = access.authenticate_write_key(platform.engine, issued.secret)
    assert (src.name, src.channel, src.location_id) == (
        "Madrid Serrano POS",
        access.Channel.STORE,
        "MAD-SERRANO",
    )
    with platform.engine.connect() as conn:
        dump = repr(conn.execute(sa.text("SELECT * FROM sources")).all())
    assert issued.secret not in dump
    assert issued.secret[10:] not in dump  # not even the secret part of the key


def test_revoked_and_unknown_keys_are_refused(platform: Platform) -> None:
    issued = access.create_source(platform.engine, "web", "web")
    access.revoke_source(platform.engine, "web")
    with pytest.raises(AuthenticationError) as info:
        access.authenticate_write_key(platform.engine, issued.secret)
    assert info.value.code == "revoked_write_key"
    with pytest.raises(AuthenticationError) as info:
        access.authenticate_write_key(platform.engine, "wk_nope")
    assert info.value.code == "invalid_write_key"
    with pytest.raises(AuthenticationError) as info:
        access.authenticate_write_key(platform.engine, None)
    assert info.value.code == "missing_write_key"


def test_source_rules(platform: Platform) -> None:
    with pytest.raises(ValidationError) as info:
        access.create_source(platform.engine, "x", "fax")
    assert info.value.field == "channel"
    with pytest.raises(ValidationError) as info:
        access.create_source(platform.engine, "shop", "store")
    assert info.value.field == "location_id"
    access.create_source(platform.engine, "app", "app")
    with pytest.raises(ConflictError):
        access.create_source(platform.engine, "app", "web")
    with pytest.raises(NotFoundError):
        access.revoke_source(platform.engine, "nope")
    assert [s.name for s in access.list_sources(platform.engine)] == ["app"]


def test_tokens(platform: Platform) -> None:
    issued = access.create_token(platform.engine, "ops", "agent")
    assert access.authenticate_token(platform.engine, issued.secret).role is access.Role.AGENT
    with pytest.raises(ValidationError):
        access.create_token(platform.engine, "x", "superuser")
    access.revoke_token(platform.engine, "ops")
    with pytest.raises(AuthenticationError):
        access.authenticate_token(platform.engine, issued.secret)
    with platform.engine.connect() as conn:
        dump = repr(conn.execute(sa.text("SELECT * FROM api_tokens")).all())
    assert issued.secret not in dump


def test_a_remembered_token_that_runs_out_is_asked_for_once(platform: Platform) -> None:
    """Requests that arrive together when a remembered token has run out ask the database
    once, not once each; a revoked token is still refused once its time is up, and an
    unknown one is refused to every request that sends it."""
    import threading
    import time

    token = access.create_token(platform.engine, "intake").secret
    cache = access.ApiTokenCache(platform.engine, ttl=0.2)
    real = access.authenticate_token
    entered = threading.Event()

    def slow(engine: sa.engine.Engine, key: str | None) -> access.ApiToken:
        entered.set()
        time.sleep(0.2)  # the database is slow to answer: the others arrive meanwhile
        return real(engine, key)

    cache._check = slow
    answers: list[object] = []

    def request(key: str) -> None:
        try:
            answers.append(cache.authenticate(key).name)
        except AuthenticationError as exc:
            answers.append(exc.code)

    first = threading.Thread(target=request, args=(token,))
    first.start()
    entered.wait(5)
    others = [threading.Thread(target=request, args=(token,)) for _ in range(15)]
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join(10)
    assert answers == ["intake"] * 16
    assert cache.lookups == 1
    access.revoke_token(platform.engine, "intake")
    assert cache.known(token) is not None  # remembered for its 0.2 s
    time.sleep(0.25)
    request(token)
    assert answers[-1] == "invalid_token"
    unknown = [threading.Thread(target=request, args=("tk_nope",)) for _ in range(4)]
    for t in unknown:
        t.start()
    for t in unknown:
        t.join(10)
    assert answers[-4:] == ["invalid_token"] * 4
    assert cache.lookups == 2 + 4  # the revoked one, and each unknown one its own


def test_key_and_token_lookups_run_off_the_event_loop(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write key or API token the server does not remember is looked up in the database
    on a worker thread: on the event loop, the query would hold up every other request of
    the process meanwhile. Checked for the tracking API, the order intake's own path and
    the routes behind ``web.auth.require``."""
    import asyncio

    import httpx

    from tests.integration.console_helpers import call
    from trayecto.access import _keys
    from trayecto.web.app import create_app

    seen: list[tuple[str, bool]] = []

    def spy(real: Any, what: str) -> Any:
        def check(engine: sa.engine.Engine, key: str | None) -> Any:
            try:
                asyncio.get_running_loop()
                on_loop = True
            except RuntimeError:
                on_loop = False
            seen.append((what, on_loop))
            return real(engine, key)

        return check

    monkeypatch.setattr(
        _keys, "authenticate_write_key", spy(_keys.authenticate_write_key, "write key")
    )
    monkeypatch.setattr(_keys, "authenticate_token", spy(_keys.authenticate_token, "token"))
    monkeypatch.setattr(access, "authenticate_token", _keys.authenticate_token)
    app = create_app(platform, access_log=False)  # its caches take the spies
    track = {"userId": "u1", "event": "Viewed", "properties": {}}
    basic = httpx.BasicAuth("wk_unknown", "")
    bearer = {"Authorization": "Bearer tk_unknown"}
    assert call(app, "POST", "/v1/track", json=track, auth=basic).status_code == 401
    assert call(app, "POST", "/v1/track", json={**track, "writeKey": "wk_x"}).status_code == 401
    assert call(app, "POST", "/api/orders", json={}, headers=bearer).status_code == 401
    assert call(app, "GET", "/api/inventory?sku=S", headers=bearer).status_code == 401
    assert [what for what, _ in seen] == ["write key", "write key", "token", "token"]
    assert not [s for s in seen if s[1]], seen
