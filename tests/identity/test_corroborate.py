"""Comparing what a message says with what a customer is known as (pure functions)."""

from __future__ import annotations

import itertools
import random

import duckdb
import pytest

from trayecto.identity._corroborate import (
    contradictions,
    jaro_winkler,
    same_birth_date,
    same_first_name,
)

FIELDS = ("first_name", "birth_date")


def test_jaro_winkler_is_duckdbs() -> None:
    # The probabilistic model compares names with DuckDB's function; stitching must agree.
    rng = random.Random(4)
    words = ["martha", "marhta", "dixon", "dicksonx", "jose luis", "jose", "manuel", "manu"]
    pairs = list(itertools.combinations(words, 2)) + [
        (
            "".join(rng.choice("abcde") for _ in range(rng.randint(1, 8))),
            "".join(rng.choice("abcde") for _ in range(rng.randint(1, 8))),
        )
        for _ in range(500)
    ]
    con = duckdb.connect()
    for a, b in pairs:
        expected = con.execute("SELECT jaro_winkler_similarity(?, ?)", [a, b]).fetchone()
        assert expected is not None
        assert jaro_winkler(a, b) == pytest.approx(expected[0], abs=1e-12), (a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("lucia", "lucia"),
        ("lucia", "lcuia"),  # two letters swapped
        ("ovidio", "ovido"),  # one dropped
        ("heriberto", "heriverto"),  # one wrong
        ("jose luis", "jose"),  # part of a compound name
        ("manu", "manuel"),  # short form
        ("edu", "eduardo"),
        ("pepe", "jose"),  # nickname
        ("chus", "maria jesus"),
        ("", "ana"),  # missing: no evidence
    ],
)
def test_same_first_name(a: str, b: str) -> None:
    assert same_first_name(a, b)
    assert same_first_name(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [("ovidio", "heriberto"), ("ana", "juan"), ("malena", "bernardino"), ("pepe", "pedro")],
)
def test_different_first_names(a: str, b: str) -> None:
    assert not same_first_name(a, b)
    assert not same_first_name(b, a)


def test_birth_date_slips_are_the_same_date() -> None:
    assert same_birth_date("1987-03-04", "1987-03-04")
    assert same_birth_date("1987-03-04", "1987-04-03")  # day and month swapped
    assert same_birth_date("1987-03-04", "1978-03-04")  # year digits swapped
    assert same_birth_date("1987-03-04", "1987-03-05")  # one digit off
    assert not same_birth_date("1987-03-04", "1958-11-20")
    assert not same_birth_date("1960-05-17", "1991-05-17")  # two digits off: a parent


def test_contradictions() -> None:
    known = {
        "first_name": {"ovidio"},
        "last_name": {"benavent folch"},
        "birth_date": {"1979-08-12"},
    }
    [c] = contradictions(known, {"first_name": "HERIBERTO", "last_name": "Villena"}, FIELDS)
    assert c["attribute"] == "first_name"
    assert c["value"] == "HERIBERTO"
    assert c["known"] == ["ovidio"]
    assert 0 <= c["similarity"] < 0.88
    # A typo, accents and case, or first and last name typed into each other's field.
    assert not contradictions(known, {"first_name": "Ovídio"}, FIELDS)
    assert not contradictions(known, {"first_name": "OVIDO"}, FIELDS)
    assert not contradictions(
        known, {"first_name": "BENAVENT FOLCH", "last_name": "OVIDIO"}, FIELDS
    )
    # Missing values on either side never block.
    assert not contradictions(known, {"last_name": "Villena"}, FIELDS)
    assert not contradictions({}, {"first_name": "Heriberto"}, FIELDS)
    # Same name, another generation: the birth date tells them apart; a slip does not.
    [c] = contradictions(known, {"first_name": "Ovidio", "birth_date": "2004-02-01"}, FIELDS)
    assert c["attribute"] == "birth_date"
    assert not contradictions(known, {"first_name": "Ovidio", "birth_date": "1979-12-08"}, FIELDS)
    # Only the fields the identifier's rule names are checked.
    assert not contradictions(known, {"first_name": "Heriberto"}, ("birth_date",))
