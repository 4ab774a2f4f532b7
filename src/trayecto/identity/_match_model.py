"""The probabilistic matching model: a Fellegi-Sunter model (Splink on DuckDB) of whether
two customers are the same person, trained without labels.

Every customer is one row of ``m_input`` (see ``_match_data``): folded names, birth date,
postcode, city, address, the golden email's local part, and every email and phone the
customer holds. Each comparison below grades one field into levels, most specific first;
the model learns, per level, ``m`` (how often a true match lands there) by expectation
maximisation and ``u`` (how often two different people do) by random sampling, and a
pair's match weight is the sum of ``log2(m/u)`` over its fields plus the prior.

Two levels are *not* learned, on purpose. People who live together share an address,
a postcode, often surnames and a landline; in a sample of random pairs those agreements
are rare, so a learned model would read a household as strong evidence of one person
(the fields are dependent, the model assumes they are not). So "first names that are
different names" (not a typo, a swap or a short form) and "birth dates that differ by
more than a slip" carry a fixed, overwhelming negative weight: no agreement of address,
surname or phone can outvote them. Twins, a father and son with the same name, a couple
at one address never merge.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "BLOCKING_RULES",
    "FIELDS",
    "TRAINING_BLOCKS",
    "VETO_M",
    "block_sql",
    "describe_model",
    "regularise",
    "settings_dict",
]

#: ``m`` of a veto level: log2(1e-12 / ~1) ≈ -40 bits, more than every other field can add.
VETO_M = 1e-12


def _jw(a: str, b: str) -> str:
    return f"jaro_winkler_similarity({a}, {b})"


def _dl(a: str, b: str) -> str:
    return f"damerau_levenshtein({a}, {b})"


def _tokens_overlap(col: str) -> str:
    # A shared word of three letters or more: a compound first name given in part
    # ("jose luis" / "jose") or one of the two Spanish surnames.
    return (
        f"list_has_any(list_filter(string_split({col}_l, ' '), lambda x: length(x) >= 3), "
        f"list_filter(string_split({col}_r, ' '), lambda x: length(x) >= 3))"
    )


_SWAPPED = (
    f"({_jw('first_name_l', 'last_name_r')} >= 0.92 AND "
    f"{_jw('last_name_l', 'first_name_r')} >= 0.92)"
)


def _level(sql: str, label: str, m: float | None = None, **extra: Any) -> dict[str, Any]:
    """A level; ``m`` is the prior belief EM starts from, and keeps when the data hold
    too few pairs to learn from."""
    out: dict[str, Any] = {"sql_condition": sql, "label_for_charts": label, **extra}
    if m is not None:
        out["m_probability"] = m
    return out


def _null(*cols: str) -> dict[str, Any]:
    cond = " OR ".join(f"{c}_l IS NULL OR {c}_r IS NULL" for c in cols)
    return _level(cond, "missing on either side", is_null_level=True)


def _veto(label: str) -> dict[str, Any]:
    return _level("ELSE", label, m_probability=VETO_M, fix_m_probability=True)


def _comparisons() -> list[dict[str, Any]]:
    first = {
        "output_column_name": "first_name",
        "comparison_description": "first name",
        "comparison_levels": [
            _null("first_name"),
            _level("first_name_l = first_name_r", "exact", 0.88),
            _level(_SWAPPED, "swapped with the last name", 0.03),
            _level(
                f"{_dl('first_name_l', 'first_name_r')} <= 1 OR "
                f"{_jw('first_name_l', 'first_name_r')} >= 0.94",
                "one typo",
                0.04,
            ),
            _level(
                f"{_jw('first_name_l', 'first_name_r')} >= 0.88 OR "
                f"{_tokens_overlap('first_name')} OR "
                "(least(length(first_name_l), length(first_name_r)) >= 3 AND "
                "(starts_with(first_name_l, first_name_r) OR "
                "starts_with(first_name_r, first_name_l)))",
                "similar, part or short form",
                0.05,
            ),
            _veto("different first names: different people"),
        ],
    }
    last = {
        "output_column_name": "last_name",
        "comparison_description": "last names",
        "comparison_levels": [
            _null("last_name"),
            _level("last_name_l = last_name_r", "exact", 0.85),
            _level(_SWAPPED, "swapped with the first name", 0.03),
            _level(
                f"{_dl('last_name_l', 'last_name_r')} <= 2 OR "
                f"{_jw('last_name_l', 'last_name_r')} >= 0.94",
                "typos",
                0.06,
            ),
            _level(_tokens_overlap("last_name"), "one surname in common", 0.04),
            _level("ELSE", "different", 0.02),
        ],
    }
    birth = {
        "output_column_name": "birth_date",
        "comparison_description": "birth date",
        "comparison_levels": [
            _null("birth_date"),
            _level("birth_date_l = birth_date_r", "exact", 0.95),
            _level(
                "substr(birth_date_l, 1, 4) = substr(birth_date_r, 1, 4) AND "
                "substr(birth_date_l, 6, 2) = substr(birth_date_r, 9, 2) AND "
                "substr(birth_date_l, 9, 2) = substr(birth_date_r, 6, 2)",
                "day and month swapped",
                0.02,
            ),
            _level(f"{_dl('birth_date_l', 'birth_date_r')} <= 1", "one digit off", 0.03),
            _veto("different birth dates: different people"),
        ],
    }
    place = {
        "output_column_name": "address",
        "comparison_description": "address, postcode and city",
        "comparison_levels": [
            _level(
                "(postcode_l IS NULL OR postcode_r IS NULL) AND (city_l IS NULL OR city_r IS NULL)",
                "missing on either side",
                is_null_level=True,
            ),
            _level("address_l = address_r AND postcode_l = postcode_r", "same address", 0.8),
            _level(
                f"postcode_l = postcode_r AND {_jw('address_l', 'address_r')} >= 0.9",
                "similar address, same postcode",
                0.08,
            ),
            _level("postcode_l = postcode_r", "same postcode", 0.05),
            _level("city_l = city_r", "same city", 0.04),
            _level("ELSE", "another city", 0.03),
        ],
    }
    email = {
        "output_column_name": "email",
        "comparison_description": "email addresses",
        "comparison_levels": [
            _null("email_local"),
            _level("list_has_any(emails_l, emails_r)", "an email in common", 0.3),
            _level(f"{_dl('email_local_l', 'email_local_r')} <= 2", "typo in the email", 0.1),
            _level("ELSE", "different", 0.6),
        ],
    }
    phone = {
        "output_column_name": "phone",
        "comparison_description": "phone numbers",
        "comparison_levels": [
            _level(
                "len(phones_l) = 0 OR len(phones_r) = 0",
                "missing on either side",
                is_null_level=True,
            ),
            _level("list_has_any(phones_l, phones_r)", "a number in common", 0.4),
            _level(
                f"list_has_any(phone_tails_l, phone_tails_r) OR {_dl('phone_l', 'phone_r')} <= 1",
                "same last 6 digits or one digit off",
                0.05,
            ),
            _level("ELSE", "different", 0.55),
        ],
    }
    return [first, last, birth, place, email, phone]


#: Fields of the evidence an agent sees, in order: (comparison, columns shown).
FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("first_name", ("first_name_raw",)),
    ("last_name", ("last_name_raw",)),
    ("birth_date", ("birth_date",)),
    ("address", ("address_raw", "postcode", "city_raw")),
    ("email", ("email",)),
    ("phone", ("phone",)),
)

#: Pairs to score, sized for a million customers: each rule is an equi-join on values
#: that few customers share (a surname within a postcode, an address), so the number of
#: pairs grows about linearly with the customers, not with their square.
BLOCKING_RULES: tuple[str, ...] = (
    "l.first_name = r.first_name AND l.last_name = r.last_name",
    "l.postcode = r.postcode AND l.address = r.address",
    "l.postcode = r.postcode AND l.last_name = r.last_name",
    "l.postcode = r.postcode AND l.first_name = r.first_name",
    "l.birth_date = r.birth_date AND l.postcode = r.postcode",
    "l.first_name = r.last_name AND l.last_name = r.first_name",
    "l.email_local = r.email_local",
    "l.phone_tail = r.phone_tail",
)

#: EM sessions, as the columns each blocks on: each learns ``m`` for the fields its rule
#: does not fix.
TRAINING_BLOCKS: tuple[tuple[str, ...], ...] = (
    ("first_name", "last_name"),
    ("postcode", "address"),
    ("birth_date", "postcode"),
)


def block_sql(cols: tuple[str, ...]) -> str:
    return " AND ".join(f"l.{c} = r.{c}" for c in cols)


#: Rules that are almost certainly the same person, to estimate the prior.
DETERMINISTIC_RULES: tuple[str, ...] = (
    "l.first_name = r.first_name AND l.last_name = r.last_name AND l.birth_date = r.birth_date",
    "l.first_name = r.first_name AND l.last_name = r.last_name AND l.address = r.address",
)


def settings_dict() -> dict[str, Any]:
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "unique_id",
        "comparisons": _comparisons(),
        "blocking_rules_to_generate_predictions": list(BLOCKING_RULES),
        "retain_matching_columns": True,
        "retain_intermediate_calculation_columns": True,
        "additional_columns_to_retain": [
            "first_name_raw",
            "last_name_raw",
            "address_raw",
            "city_raw",
            "email",
            "phone",
        ],
        "max_iterations": 25,
        "em_convergence": 0.0001,
    }


def _weight(m: float | None, u: float | None) -> float | None:
    if m is None or u is None or m <= 0 or u <= 0:
        return None
    return round(math.log2(m / u), 3)


def describe_model(model: dict[str, Any]) -> dict[str, Any]:
    """The learned model in a form people read: per field and level, m, u and the
    partial match weight; the prior as a probability and a weight."""
    lam = float(model.get("probability_two_random_records_match") or 0.0)
    fields = []
    for comp in model.get("comparisons", []):
        levels = []
        for lv in comp.get("comparison_levels", []):
            if lv.get("is_null_level"):
                levels.append({"label": lv.get("label_for_charts"), "null": True})
                continue
            m, u = lv.get("m_probability"), lv.get("u_probability")
            levels.append(
                {
                    "label": lv.get("label_for_charts"),
                    "m": m,
                    "u": u,
                    "weight": _weight(m, u),
                    "fixed": bool(lv.get("fix_m_probability")),
                }
            )
        fields.append({"field": comp.get("output_column_name"), "levels": levels})
    prior = round(math.log2(lam / (1 - lam)), 3) if 0 < lam < 1 else None
    return {"prior": {"probability": lam, "weight": prior}, "fields": fields}


#: Floors for learned probabilities: a level no true match reached in this data (no typo
#: in a first name, say) is still possible, and a level no random pair reached is rare,
#: not impossible. Without them EM's zeros become weights of ±60 bits.
M_FLOOR = 0.002
U_FLOOR = 1e-5


def regularise(model: dict[str, Any]) -> dict[str, Any]:
    """``model`` with every learned m and u kept away from 0 (fixed levels untouched),
    and each comparison's m renormalised to sum to 1."""
    for comp in model.get("comparisons", []):
        levels = [lv for lv in comp.get("comparison_levels", []) if not lv.get("is_null_level")]
        for lv in levels:
            if not lv.get("fix_m_probability"):
                m = lv.get("m_probability")
                lv["m_probability"] = max(float(m) if isinstance(m, int | float) else 0.0, M_FLOOR)
            u = lv.get("u_probability")
            lv["u_probability"] = max(float(u) if isinstance(u, int | float) else 0.0, U_FLOOR)
        free = [lv for lv in levels if not lv.get("fix_m_probability")]
        fixed = sum(float(lv["m_probability"]) for lv in levels if lv.get("fix_m_probability"))
        total = sum(float(lv["m_probability"]) for lv in free)
        if total > 0:
            for lv in free:
                lv["m_probability"] = float(lv["m_probability"]) * (1 - fixed) / total
    return model
