"""A small built-in sample for ``make demo`` until the retailer simulator lands.

Deterministic for a seed: shoppers of a Spanish olive-oil and gourmet brand browsing the
web store and the app, identifying, buying online and in two shops.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["SOURCES", "sample_messages"]

#: (source name, channel, location) for each channel of the sample.
SOURCES = (
    ("Tienda online", "web", None),
    ("App", "app", None),
    ("TPV Madrid Serrano", "store", "MAD-SERRANO"),
    ("TPV Sevilla Centro", "store", "SEV-CENTRO"),
)

_FIRST = [
    "Lucía",
    "Hugo",
    "Martina",
    "Mateo",
    "Sofía",
    "Leo",
    "Julia",
    "Pablo",
    "Valeria",
    "Daniel",
    "Carmen",
    "Álvaro",
    "Elena",
    "Javier",
    "Paula",
    "Marta",
    "Sergio",
    "Noa",
]
_LAST = [
    "García",
    "Fernández",
    "González",
    "Rodríguez",
    "López",
    "Martínez",
    "Sánchez",
    "Pérez",
    "Gómez",
    "Martín",
    "Jiménez",
    "Ruiz",
    "Hernández",
    "Díaz",
    "Moreno",
]
_PRODUCTS = [
    ("AOVE-PICUAL-500", "Aceite de oliva virgen extra Picual 500 ml", "12.90"),
    ("AOVE-ARBEQ-1L", "Aceite de oliva virgen extra Arbequina 1 l", "19.50"),
    ("PATE-ACEITUNA", "Paté de aceituna negra", "4.75"),
    ("CREMA-MANOS", "Crema de manos con aceite de oliva", "8.95"),
    ("JABON-NATURAL", "Jabón natural de oliva", "5.50"),
    ("CAJA-REGALO-GOURMET", "Caja regalo gourmet", "39.00"),
    ("VINAGRE-JEREZ", "Vinagre de Jerez reserva", "7.20"),
]


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def sample_messages(
    customers: int = 120, days: int = 30, seed: int = 7, now: datetime | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(source name, Segment message)`` pairs, oldest first per customer."""
    rng = random.Random(seed)
    end = (now or datetime(2026, 11, 1, tzinfo=UTC)).replace(microsecond=0)
    n = 0

    def mid() -> str:
        nonlocal n
        n += 1
        return f"sample-{seed}-{n:07d}"

    for c in range(customers):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        user_id = f"C{c + 1:05d}"
        email = f"{first.lower()}.{last.lower()}{c}@example.es"
        anon = f"anon-{seed}-{c:05d}"
        t = end - timedelta(days=rng.uniform(0, days))
        digital = rng.choice(["Tienda online", "App"])
        for _ in range(rng.randint(1, 4)):
            product = rng.choice(_PRODUCTS)
            t += timedelta(minutes=rng.uniform(1, 600))
            yield (
                digital,
                {
                    "type": "page" if digital == "Tienda online" else "screen",
                    "messageId": mid(),
                    "anonymousId": anon,
                    "name": "Producto",
                    "properties": {"sku": product[0], "title": product[1]},
                    "timestamp": _iso(t),
                    "context": {"locale": "es-ES"},
                },
            )
        if rng.random() < 0.6:
            t += timedelta(minutes=rng.uniform(1, 30))
            yield (
                digital,
                {
                    "type": "identify",
                    "messageId": mid(),
                    "anonymousId": anon,
                    "userId": user_id,
                    "traits": {"email": email, "firstName": first, "lastName": last},
                    "timestamp": _iso(t),
                    "context": {"locale": "es-ES"},
                },
            )
            product = rng.choice(_PRODUCTS)
            qty = rng.randint(1, 3)
            t += timedelta(minutes=rng.uniform(1, 30))
            if rng.random() < 0.55:
                where = digital
            else:
                where = rng.choice(["TPV Madrid Serrano", "TPV Sevilla Centro"])
                t += timedelta(days=rng.uniform(0, 3))
            if t > end:
                continue
            yield (
                where,
                {
                    "type": "track",
                    "event": "Order Completed",
                    "messageId": mid(),
                    "userId": user_id,
                    "properties": {
                        "order_id": f"O-{seed}-{c:05d}",
                        "currency": "EUR",
                        "total": f"{float(product[2]) * qty:.2f}",
                        "products": [
                            {
                                "sku": product[0],
                                "name": product[1],
                                "price": product[2],
                                "quantity": qty,
                            }
                        ],
                    },
                    "timestamp": _iso(t),
                },
            )
