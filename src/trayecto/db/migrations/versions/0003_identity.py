"""Identity graph, customers, customer records.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 14:38:38.556312
"""

import sqlalchemy as sa
from alembic import op

from trayecto.db.types import JSONDoc, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "id_checkpoints",
        sa.Column("consumer", sa.String(length=40), nullable=False),
        sa.Column("last_event_id", sa.Uuid(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", name=op.f("pk_id_checkpoints")),
    )
    op.create_table(
        "id_customers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("merged_into", sa.Uuid(), nullable=True),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("name_key", sa.String(length=200), nullable=True),
        sa.Column("name_key_rev", sa.String(length=200), nullable=True),
        sa.Column("golden", JSONDoc, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_id_customers")),
    )
    with op.batch_alter_table("id_customers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_id_customers_name_key"), ["name_key"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_id_customers_name_key_rev"), ["name_key_rev"], unique=False
        )

    op.create_table(
        "id_event_profiles",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_id_event_profiles")),
    )
    with op.batch_alter_table("id_event_profiles", schema=None) as batch_op:
        batch_op.create_index(
            "ix_id_event_profiles_profile_time", ["profile_id", "occurred_at"], unique=False
        )

    op.create_table(
        "id_identities",
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.Column("source_id", sa.Uuid(), nullable=True),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("type", "value", name=op.f("pk_id_identities")),
    )
    with op.batch_alter_table("id_identities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_id_identities_profile_id"), ["profile_id"], unique=False
        )

    op.create_table(
        "id_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("a_profile_id", sa.Uuid(), nullable=False),
        sa.Column("b_profile_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("evidence", JSONDoc, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("removed_at", UTCDateTime(), nullable=True),
        sa.Column("removed_reason", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_id_links")),
    )
    with op.batch_alter_table("id_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_id_links_a_profile_id"), ["a_profile_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_id_links_b_profile_id"), ["b_profile_id"], unique=False
        )

    op.create_table(
        "id_observations",
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("attribute", sa.String(length=30), nullable=False),
        sa.Column("folded", sa.String(length=320), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("origin", sa.String(length=10), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "profile_id", "attribute", "folded", "source_id", name=op.f("pk_id_observations")
        ),
    )
    op.create_table(
        "id_profiles",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_id_profiles")),
    )
    with op.batch_alter_table("id_profiles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_id_profiles_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "id_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("record_id", sa.String(length=200), nullable=False),
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("attributes", JSONDoc, nullable=False),
        sa.Column("traits", JSONDoc, nullable=True),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_id_records")),
        sa.UniqueConstraint(
            "source_id", "record_id", name=op.f("uq_id_records_source_id_record_id")
        ),
    )
    with op.batch_alter_table("id_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_id_records_profile_id"), ["profile_id"], unique=False)

    op.create_table(
        "id_refusals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("a_profile_id", sa.Uuid(), nullable=False),
        sa.Column("b_profile_id", sa.Uuid(), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("evidence", JSONDoc, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_id_refusals")),
    )


def downgrade() -> None:
    op.drop_table("id_refusals")
    with op.batch_alter_table("id_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_id_records_profile_id"))

    op.drop_table("id_records")
    with op.batch_alter_table("id_profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_id_profiles_customer_id"))

    op.drop_table("id_profiles")
    op.drop_table("id_observations")
    with op.batch_alter_table("id_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_id_links_b_profile_id"))
        batch_op.drop_index(batch_op.f("ix_id_links_a_profile_id"))

    op.drop_table("id_links")
    with op.batch_alter_table("id_identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_id_identities_profile_id"))

    op.drop_table("id_identities")
    with op.batch_alter_table("id_event_profiles", schema=None) as batch_op:
        batch_op.drop_index("ix_id_event_profiles_profile_time")

    op.drop_table("id_event_profiles")
    with op.batch_alter_table("id_customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_id_customers_name_key_rev"))
        batch_op.drop_index(batch_op.f("ix_id_customers_name_key"))

    op.drop_table("id_customers")
    op.drop_table("id_checkpoints")
