"""Commerce intake: ``trayecto_snapshot()``, the read of a batch of orders, planned once.

Placing a batch of orders starts with one snapshot statement (``commerce._store_pg``): the
stock of the batch's SKUs, the picks booked at the locations holding them, the orders
already stored under its keys, the versions of the locations and channel policies, and
whether expired cart holds sit on its SKUs, as one ``UNION ALL`` of five parts. Sent as a
prepared statement, PostgreSQL still planned it for every batch: its plan cache judged a
plan for the actual SKU list cheaper than the generic one (``pg_prepared_statements``:
30 custom plans out of 30), and planning five parts costs about 0.5 ms, 4 % of all the CPU
order intake used (``perf``). As a PL/pgSQL function with ``plan_cache_mode =
force_generic_plan``, the statement is planned once per connection and the plan kept.
The generic plan is the right one: every part reads by index (a test in
``tests/commerce/test_batches.py`` checks it, with many order holds stored).

PostgreSQL only; SQLite reads its snapshot with plain statements.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SNAPSHOT = r"""
CREATE OR REPLACE FUNCTION trayecto_snapshot(
    p_at timestamptz, p_skus text[], p_channels text[],
    p_key_channels text[], p_key_ids text[], p_days date[]
) RETURNS TABLE (r_kind integer, r_a text, r_b text, r_n integer, r_day date,
                 r_at timestamptz, r_id uuid, r_flag boolean)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    -- 0: the locations' version, and whether some cart or payment hold on the SKUs has
    -- expired; 4: the channels' policy versions; 5: the orders already stored under the
    -- batch's keys; 2: stock rows; 3: picks booked on the days asked at the locations
    -- holding the SKUs
    RETURN QUERY
    SELECT 0, NULL::text, NULL::text, NULL::integer, NULL::date,
           (SELECT max(l.updated_at) FROM locations l), NULL::uuid,
           EXISTS (SELECT 1 FROM reservations r WHERE r.status = 'active'
                      AND r.expires_at < p_at AND r.expires_at IS NOT NULL
                      AND r.sku = ANY(p_skus))
    UNION ALL
    SELECT 4, c.channel::text, NULL, NULL, NULL, c.updated_at, NULL, NULL
      FROM channel_policies c WHERE c.channel = ANY(p_channels)
    UNION ALL
    SELECT 5, o.channel::text, o.external_id::text, NULL, NULL, NULL, o.id, NULL
      FROM unnest(p_key_channels, p_key_ids) AS k(channel, external_id)
      JOIN orders o ON o.channel = k.channel AND o.external_id = k.external_id
    UNION ALL
    SELECT 2, s.location_id::text, s.sku::text, s.on_hand - s.reserved - s.safety_stock,
           NULL, NULL, NULL, NULL
      FROM stock s WHERE s.sku = ANY(p_skus) AND s.on_hand - s.reserved - s.safety_stock > 0
    UNION ALL
    SELECT 3, ll.location_id::text, NULL, ll.picks, ll.day, NULL, NULL, NULL
      FROM location_load ll
     WHERE ll.day = ANY(p_days)
       AND ll.location_id IN (SELECT s2.location_id FROM stock s2 WHERE s2.sku = ANY(p_skus));
END
$$
"""

DROP = (
    "DROP FUNCTION IF EXISTS trayecto_snapshot(timestamptz, text[], text[], text[], text[], date[])"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(SNAPSHOT)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(DROP)
