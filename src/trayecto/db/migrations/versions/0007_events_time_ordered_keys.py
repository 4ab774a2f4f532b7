"""Events: every index of the log is time-ordered, so an append writes at the end of each.

The idempotency key becomes (source, the message's own timestamp as sent, messageId): a
retry resends the very message, timestamp included, so it still stores nothing twice, and
the key's index now grows at its end like the primary key instead of taking a random page
write per row. The random-key indexes on ``user_id`` and ``anonymous_id`` go: people are
looked up through identity, which attributes every event to its profile.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_index("ix_events_user_id", table_name="events")
    op.drop_index("ix_events_anonymous_id", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.add_column(
            sa.Column("message_ts", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
        )
        batch.drop_constraint("uq_events_source_id_message_id", type_="unique")
    if dialect == "sqlite":
        # ``original_timestamp`` is already integer microseconds on SQLite.
        op.execute("UPDATE events SET message_ts = coalesce(original_timestamp, 0)")
    else:
        op.execute(
            "UPDATE events SET message_ts = "
            "coalesce(floor(extract(epoch FROM original_timestamp) * 1000000)::bigint, 0)"
        )
    op.create_index(
        "uq_events_message", "events", ["source_id", "message_ts", "message_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_events_message", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("message_ts")
        batch.create_unique_constraint(
            "uq_events_source_id_message_id", ["source_id", "message_id"]
        )
    op.create_index("ix_events_user_id", "events", ["user_id"])
    op.create_index("ix_events_anonymous_id", "events", ["anonymous_id"])
