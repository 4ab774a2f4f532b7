"""Reservations: index only the holds that can expire.

Every order writes about five holds (``kind = 'order'``, ``expires_at`` NULL: they last
until the goods leave or the order is cancelled), and each used to add an entry to the index
on ``(status, expires_at)``, which only the cart and payment holds that expire ever need
(``release_expired``, and the order snapshot's check for expired holds). The index becomes
partial: the same columns, of the holds that have an expiry. Order intake writes a fifth
fewer index entries for its holds, and the index stays as small as the cart history.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: implied by any ``expires_at < …`` (SQLite too), so every query that used the index still can
WHERE = "expires_at IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ix_reservations_status_expires_at", table_name="reservations")
    op.create_index(
        "ix_reservations_expiring",
        "reservations",
        ["status", "expires_at"],
        postgresql_where=sa.text(WHERE),
        sqlite_where=sa.text(WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_reservations_expiring", table_name="reservations")
    op.create_index("ix_reservations_status_expires_at", "reservations", ["status", "expires_at"])
