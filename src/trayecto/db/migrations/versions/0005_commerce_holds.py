"""Commerce intake: ``trayecto_hold()``, the stock and capacity holds of an order in one
call (PostgreSQL only; other databases run the same conditional updates one by one); an
index on ``locations.updated_at`` (its max is the version of the cached locations); lz4
for the sourcing explanations on PostgreSQL where the server has it (cheaper than pglz).

The function takes the holds already sorted (stock rows by location then SKU, capacity rows
by location) and applies each as a conditional update; the first that does not fit raises
``insufficient_stock`` or ``capacity_full`` (SQLSTATE P0001, the location and SKU in the
detail, tab-separated), which aborts the caller's transaction. Order placement calls it
last, just before COMMIT, in the same pipeline: row locks are held for the shortest time.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

HOLD = r"""
CREATE OR REPLACE FUNCTION trayecto_hold(
    p_locations text[], p_skus text[], p_quantities integer[], p_extra integer,
    p_at timestamptz, p_load_locations text[], p_load_days date[], p_load_caps integer[]
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    i integer;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_locations, 1), 0) LOOP
        UPDATE stock SET reserved = reserved + p_quantities[i], updated_at = p_at
         WHERE location_id = p_locations[i] AND sku = p_skus[i]
           AND on_hand - reserved - safety_stock - p_extra >= p_quantities[i];
        IF NOT FOUND THEN
            RAISE EXCEPTION 'insufficient_stock'
                USING DETAIL = p_locations[i] || E'\t' || p_skus[i];
        END IF;
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(p_load_locations, 1), 0) LOOP
        IF p_load_caps[i] < 1 THEN
            RAISE EXCEPTION 'capacity_full' USING DETAIL = p_load_locations[i];
        END IF;
        INSERT INTO location_load AS ll (location_id, day, picks)
        VALUES (p_load_locations[i], p_load_days[i], 1)
        ON CONFLICT (location_id, day) DO UPDATE SET picks = ll.picks + 1
         WHERE ll.picks + 1 <= p_load_caps[i];
        IF NOT FOUND THEN
            RAISE EXCEPTION 'capacity_full' USING DETAIL = p_load_locations[i];
        END IF;
    END LOOP;
END
$$
"""


LZ4 = """
DO $$ BEGIN
    ALTER TABLE orders ALTER COLUMN sourcing SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN NULL;
END $$
"""


def upgrade() -> None:
    with op.batch_alter_table("locations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_locations_updated_at"), ["updated_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(HOLD)
        op.execute(LZ4)


def downgrade() -> None:
    with op.batch_alter_table("locations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_locations_updated_at"))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS trayecto_hold("
            "text[], text[], integer[], integer, timestamptz, text[], date[], integer[])"
        )
