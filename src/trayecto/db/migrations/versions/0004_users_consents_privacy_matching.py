"""Console users and sessions; consents, suppressions, erasures; probabilistic matching.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 14:50:18.690306
"""

import sqlalchemy as sa
from alembic import op

from trayecto.db.types import JSONDoc, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "id_consents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("origin", sa.String(length=10), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column(
            "evidence",
            JSONDoc,
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_id_consents")),
    )
    with op.batch_alter_table("id_consents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_id_consents_profile_id"), ["profile_id"], unique=False)

    op.create_table(
        "id_erasures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column(
            "counts",
            JSONDoc,
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_id_erasures")),
    )
    op.create_table(
        "id_match_candidates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("a_profile_id", sa.Uuid(), nullable=False),
        sa.Column("b_profile_id", sa.Uuid(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("match_weight", sa.Float(), nullable=False),
        sa.Column(
            "evidence",
            JSONDoc,
            nullable=False,
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_id_match_candidates")),
        sa.UniqueConstraint(
            "a_profile_id",
            "b_profile_id",
            name=op.f("uq_id_match_candidates_a_profile_id_b_profile_id"),
        ),
    )
    with op.batch_alter_table("id_match_candidates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_id_match_candidates_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_id_match_candidates_status"), ["status"], unique=False)

    op.create_table(
        "id_match_index",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("matched_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_id_match_index")),
    )
    op.create_table(
        "id_match_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column(
            "params",
            JSONDoc,
            nullable=False,
        ),
        sa.Column(
            "model",
            JSONDoc,
            nullable=True,
        ),
        sa.Column(
            "stats",
            JSONDoc,
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_id_match_runs")),
    )
    op.create_table(
        "id_suppressions",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_id_suppressions")),
    )
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_sessions_token_hash")),
    )
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=300), nullable=False),
        sa.Column("locale", sa.String(length=5), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("disabled_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )


def downgrade() -> None:
    op.drop_table("users")
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_sessions_user_id"))

    op.drop_table("user_sessions")
    op.drop_table("id_suppressions")
    op.drop_table("id_match_runs")
    op.drop_table("id_match_index")
    with op.batch_alter_table("id_match_candidates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_id_match_candidates_status"))
        batch_op.drop_index(batch_op.f("ix_id_match_candidates_run_id"))

    op.drop_table("id_match_candidates")
    op.drop_table("id_erasures")
    with op.batch_alter_table("id_consents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_id_consents_profile_id"))

    op.drop_table("id_consents")
