"""Console users and sessions: password hashing, login, expiry, revocation, disabling."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from trayecto import access
from trayecto.access import _users
from trayecto.access._tables import user_sessions, users
from trayecto.bootstrap import Platform
from trayecto.kernel import AuthenticationError, ConflictError, ValidationError, utcnow

PASSWORD = "pan con tomate 42"


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Cheap scrypt parameters, so that the suite does not spend seconds hashing (the real
    ones are checked in ``test_default_cost_is_owasp``)."""
    monkeypatch.setattr(_users, "SCRYPT_N", 2**10)
    _users._dummy_hash.clear()
    yield
    _users._dummy_hash.clear()


@pytest.fixture
def ana(platform: Platform) -> access.User:
    return access.create_user(
        platform.engine, "  Ana.Lopez@Example.ES ", "Ana López", "store_staff", PASSWORD
    )


def test_default_cost_is_owasp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_users, "SCRYPT_N", 2**17)
    stored = _users.hash_password(PASSWORD)
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "131072", "8", "1")
    assert (len(salt), len(digest)) == (22, 43)  # 16 and 32 bytes, base64
    assert _users.verify_password(PASSWORD, stored)


def test_hashes_are_salted_and_checked() -> None:
    a, b = _users.hash_password(PASSWORD), _users.hash_password(PASSWORD)
    assert a != b  # a fresh salt each time
    assert PASSWORD not in a
    assert _users.verify_password(PASSWORD, a)
    assert _users.verify_password(PASSWORD, b)
    assert not _users.verify_password(PASSWORD + "!", a)
    assert not _users.verify_password(PASSWORD, a[:-4] + "AAAA")  # tampered digest
    assert not _users.verify_password(PASSWORD, "md5$whatever")
    assert not _users.verify_password(PASSWORD, "scrypt$x$8$1$abc$def")


def test_create_user_normalises_and_validates(platform: Platform, ana: access.User) -> None:
    e = platform.engine
    assert (ana.email, ana.role, ana.locale, ana.active) == (
        "ana.lopez@example.es",
        access.Role.STORE_STAFF,
        "es",
        True,
    )
    with e.connect() as conn:
        stored = conn.execute(sa.select(users.c.password_hash)).scalar_one()
    assert stored.startswith("scrypt$")
    assert PASSWORD not in stored
    with pytest.raises(ConflictError) as exc:
        access.create_user(e, "ANA.LOPEZ@example.es", "Otra", "agent", PASSWORD)
    assert exc.value.code == "user_exists"
    bad = [
        ({"email": "not-an-email"}, "email"),
        ({"role": "cashier"}, "role"),
        ({"locale": "fr"}, "locale"),
        ({"password": "short"}, "password"),
        ({"name": "  "}, "name"),
    ]
    for override, field in bad:
        args = {"email": "x@example.es", "name": "X", "role": "agent", "password": PASSWORD}
        args |= override
        with pytest.raises(ValidationError) as err:
            access.create_user(e, **args)
        assert err.value.field == field
    assert [u.email for u in access.list_users(e)] == ["ana.lopez@example.es"]


def test_authentication_does_not_tell_whether_the_email_exists(
    platform: Platform, ana: access.User
) -> None:
    e = platform.engine
    assert access.authenticate_user(e, "ANA.lopez@example.es ", PASSWORD).id == ana.id
    errors = []
    for email, password in (
        ("ana.lopez@example.es", "wrong password"),
        ("nobody@example.es", PASSWORD),
        ("nobody@example.es", "x" * 5000),
    ):
        with pytest.raises(AuthenticationError) as exc:
            access.authenticate_user(e, email, password)
        errors.append((exc.value.code, exc.value.message, exc.value.field))
    assert len(set(errors)) == 1
    assert errors[0][0] == "invalid_credentials"


def test_sessions_store_only_a_hash_and_expire(
    platform: Platform, ana: access.User, monkeypatch: pytest.MonkeyPatch
) -> None:
    e = platform.engine
    issued = access.start_session(e, ana, timedelta(hours=8))
    token = issued.secret
    assert len(token) >= 40
    with e.connect() as conn:
        row = conn.execute(sa.select(user_sessions)).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(tuple(row))
    live = access.session_user(e, token)
    assert (live.user.id, live.id) == (ana.id, issued.record.id)
    assert live.expires_at - live.created_at == timedelta(hours=8)

    later = utcnow() + timedelta(hours=8, seconds=1)
    monkeypatch.setattr(_users, "utcnow", lambda: later)
    with pytest.raises(AuthenticationError) as exc:
        access.session_user(e, token)
    assert exc.value.code == "session_expired"

    for bad in (None, "", "not-a-token"):
        with pytest.raises(AuthenticationError) as exc:
            access.session_user(e, bad)
        assert exc.value.code == "no_session"
    with pytest.raises(ValidationError):
        access.start_session(e, ana, timedelta(0))


def test_logout_revokes_only_that_session(platform: Platform, ana: access.User) -> None:
    e = platform.engine
    tablet = access.start_session(e, ana, timedelta(hours=1)).secret
    phone = access.start_session(e, ana, timedelta(hours=1)).secret
    access.end_session(e, tablet)
    access.end_session(e, tablet)  # twice is harmless
    access.end_session(e, None)
    with pytest.raises(AuthenticationError) as exc:
        access.session_user(e, tablet)
    assert exc.value.code == "session_ended"
    assert access.session_user(e, phone).user.id == ana.id


def test_disabling_ends_every_session_and_blocks_login(
    platform: Platform, ana: access.User
) -> None:
    e = platform.engine
    token = access.start_session(e, ana, timedelta(hours=1)).secret
    disabled = access.disable_user(e, "ana.lopez@example.es")
    assert disabled.disabled_at is not None
    assert not disabled.active
    assert access.disable_user(e, "ana.lopez@example.es").disabled_at == disabled.disabled_at
    with pytest.raises(AuthenticationError):
        access.session_user(e, token)
    with pytest.raises(AuthenticationError) as exc:
        access.authenticate_user(e, "ana.lopez@example.es", PASSWORD)
    assert exc.value.code == "user_disabled"
    # A wrong password on a disabled account says nothing about the account.
    with pytest.raises(AuthenticationError) as exc:
        access.authenticate_user(e, "ana.lopez@example.es", "wrong password")
    assert exc.value.code == "invalid_credentials"


def test_new_password_ends_sessions(platform: Platform, ana: access.User) -> None:
    e = platform.engine
    token = access.start_session(e, ana, timedelta(hours=1)).secret
    access.reset_password(e, ana.email, "una clave nueva 7")
    with pytest.raises(AuthenticationError):
        access.session_user(e, token)
    with pytest.raises(AuthenticationError):
        access.authenticate_user(e, ana.email, PASSWORD)
    assert access.authenticate_user(e, ana.email, "una clave nueva 7").id == ana.id


def test_outdated_hashes_are_upgraded_at_login(
    platform: Platform, ana: access.User, monkeypatch: pytest.MonkeyPatch
) -> None:
    e = platform.engine
    monkeypatch.setattr(_users, "SCRYPT_N", 2**11)
    access.authenticate_user(e, ana.email, PASSWORD)
    with e.connect() as conn:
        stored = conn.execute(sa.select(users.c.password_hash)).scalar_one()
    assert stored.startswith("scrypt$2048$8$1$")
    assert access.authenticate_user(e, ana.email, PASSWORD).id == ana.id


def test_locale_can_change(platform: Platform, ana: access.User) -> None:
    access.set_user_locale(platform.engine, ana.id, "en")
    assert access.get_user(platform.engine, ana.email).locale == "en"
    with pytest.raises(ValidationError):
        access.set_user_locale(platform.engine, ana.id, "de")
