"""Anonymising the orders of an erased person: the sale stays (stock, revenue and the
ledger must still add up), the buyer goes."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from trayecto.commerce._tables import orders
from trayecto.db import write_transaction

__all__ = ["anonymise_orders"]


def anonymise_orders(
    engine: Engine,
    *,
    customer_ids: Sequence[UUID] = (),
    emails: Sequence[str] = (),
    phones: Sequence[str] = (),
    customer_numbers: Sequence[str] = (),
    loyalty_cards: Sequence[str] = (),
) -> int:
    """Remove the buyer's identifiers and delivery address from their orders; returns how
    many orders were touched. The sourcing explanation goes too, but for the chosen
    locations: its destination, and the distances and costs of every candidate, would
    place the address again."""
    conds = []
    for col, values in (
        (orders.c.customer_id, list(customer_ids)),
        (orders.c.customer_email, list(emails)),
        (orders.c.customer_phone, list(phones)),
        (orders.c.customer_number, list(customer_numbers)),
        (orders.c.loyalty_card, list(loyalty_cards)),
    ):
        if values:
            conds.append(col.in_(values))
    if not conds:
        return 0
    with write_transaction(engine) as conn:
        rows = conn.execute(
            sa.select(orders.c.id, orders.c.fulfilment, orders.c.sourcing).where(sa.or_(*conds))
        ).all()
        if rows:
            conn.execute(
                orders.update()
                .where(orders.c.id == sa.bindparam("oid"))
                .values(
                    customer_id=None,
                    customer_email=None,
                    customer_phone=None,
                    customer_number=None,
                    loyalty_card=None,
                    fulfilment=sa.bindparam("fulfilment"),
                    sourcing=sa.bindparam("sourcing"),
                ),
                [
                    {
                        "oid": r.id,
                        "fulfilment": {
                            k: v for k, v in (r.fulfilment or {}).items() if k != "address"
                        },
                        "sourcing": {
                            "method": (r.sourcing or {}).get("method"),
                            "chosen": (r.sourcing or {}).get("chosen"),
                            "erased": "the rest of the explanation placed the buyer's address",
                        },
                    }
                    for r in rows
                ],
            )
    return len(rows)
