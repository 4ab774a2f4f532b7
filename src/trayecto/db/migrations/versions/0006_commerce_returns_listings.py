"""Commerce: returns (method, replacement order, refund total; per line the refund),
refunds tied to the payment they return and the return they settle; listing rules per
channel.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from trayecto.db.types import JSONDoc, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(precision=12, scale=2)


def upgrade() -> None:
    op.create_table(
        "listing_rules",
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("config", JSONDoc, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_listing_rules")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refund_of", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("return_id", sa.Uuid(), nullable=True))
    with op.batch_alter_table("returns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("method", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("exchange_order_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("refund_total", MONEY, nullable=True))
    with op.batch_alter_table("return_lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refund_amount", MONEY, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("return_lines", schema=None) as batch_op:
        batch_op.drop_column("refund_amount")
    with op.batch_alter_table("returns", schema=None) as batch_op:
        batch_op.drop_column("refund_total")
        batch_op.drop_column("exchange_order_id")
        batch_op.drop_column("method")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("return_id")
        batch_op.drop_column("refund_of")
    op.drop_table("listing_rules")
