"""Identity noise as real data has it: phones written many ways, typos, swapped fields,
dropped accents. Pure functions of their input and a seeded ``random.Random``."""

from __future__ import annotations

import random
import unicodedata

__all__ = ["PHONE_FORMATS", "ascii_fold", "format_phone", "typo"]

PHONE_FORMATS = ("e164", "spaced_intl", "national", "spaced", "prefix_00", "dashed")

# Keys next to each other on a Spanish keyboard, for realistic slips.
_NEIGHBOURS = {
    "a": "qsz", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "f": "dg", "g": "fh", "h": "gj",
    "i": "uo", "j": "hk", "k": "jl", "l": "kñ", "m": "n", "n": "bm", "o": "ip", "p": "o",
    "q": "wa", "r": "et", "s": "ad", "t": "ry", "u": "yi", "v": "cb", "w": "qe", "x": "zc",
    "y": "tu", "z": "xa",
}  # fmt: skip


def format_phone(e164: str, fmt: str) -> str:
    """A Spanish ``+34XXXXXXXXX`` number as people write it."""
    n = e164.removeprefix("+34")
    if fmt == "e164":
        return e164
    if fmt == "spaced_intl":
        return f"+34 {n[:3]} {n[3:5]} {n[5:7]} {n[7:]}"
    if fmt == "national":
        return n
    if fmt == "spaced":
        return f"{n[:3]} {n[3:6]} {n[6:]}"
    if fmt == "prefix_00":
        return "0034" + n
    if fmt == "dashed":
        return f"{n[:3]}-{n[3:5]}-{n[5:7]}-{n[7:]}"
    raise ValueError(f"unknown phone format {fmt!r}")


def ascii_fold(text: str) -> str:
    """Drop accents (``Fernández`` → ``Fernandez``); ``ñ`` becomes ``n`` as on many tills."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def typo(text: str, rng: random.Random) -> str:
    """One slip of the finger: a neighbouring key, a dropped, doubled or swapped letter."""
    letters = [i for i, c in enumerate(text) if c.isalpha()]
    if len(letters) < 3:
        return text + text[-1:] if text else text
    i = rng.choice(letters[1:])
    kind = rng.randrange(4)
    c = text[i]
    if kind == 0:
        near = _NEIGHBOURS.get(c.lower(), "e")
        new = rng.choice(near)
        return text[:i] + (new.upper() if c.isupper() else new) + text[i + 1 :]
    if kind == 1:
        return text[:i] + text[i + 1 :]
    if kind == 2:
        return text[:i] + c + text[i:]
    j = i - 1
    return text[:j] + text[i] + text[j] + text[i + 1 :]
