"""Commerce intake in batches: ``trayecto_place()``, the write of MANY orders in one
statement and one transaction (PostgreSQL only; other databases write each order of a
batch in a savepoint of one transaction).

The caller (``commerce._store_pg``) has sourced every order of the batch on one snapshot
and sends:

* ``p_doc``: every row of every order, one JSON document ``{table: [rows]}``;
* the stock rows the batch holds, distinct and sorted by (location, SKU), and the capacity
  rows (location, local day), distinct and sorted: the order in which every batch locks
  them, so two batches never wait on each other in a cycle;
* each order's holds (its index, the stock row's index, the units) and picks (its index,
  the capacity row's index, the location's daily capacity), its channel's extra safety
  stock and its time.

The function:

1. inserts the orders, sorted by (channel, external id), ``ON CONFLICT DO NOTHING``: an
   order already stored (or committed meanwhile by another batch) is a ``duplicate`` and
   nothing else of it is written;
2. inserts the other rows of the orders just inserted (lines, groups, reservations,
   allocations, payments, history) as one ``INSERT … SELECT`` per table;
3. locks the stock rows, then the capacity rows, in their sorted order (``FOR UPDATE``), and
   goes through the orders in the batch's order: an order whose every hold and pick still
   fits takes them; the first that does not fit answers ``insufficient_stock`` or
   ``capacity_full`` with its location (and SKU);
4. adds up what the orders that fit took, one ``UPDATE`` per table (the stock rows'
   check constraints stand guard too), and deletes every row of the orders that did not
   fit, so nothing of them is kept.

It returns one row per order that was not written: (its index, why, location, SKU).
A batch of one is the single order's write, so ``trayecto_hold()`` (migration 0005, one
order's holds) has no caller left and is dropped (the downgrade brings it back).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CHILDREN = ("order_lines", "fulfilment_groups", "reservations", "allocations", "payments",
            "order_events")  # fmt: skip

PLACE = (
    r"""
CREATE OR REPLACE FUNCTION trayecto_place(
    p_doc jsonb,
    p_row_locations text[], p_row_skus text[],
    p_hold_orders integer[], p_hold_rows integer[], p_hold_quantities integer[],
    p_load_locations text[], p_load_days date[],
    p_pick_orders integer[], p_pick_rows integer[], p_pick_caps integer[],
    p_ids uuid[], p_extra integer[], p_at timestamptz[]
) RETURNS TABLE (r_order integer, r_outcome text, r_location text, r_sku text)
LANGUAGE plpgsql AS $$
DECLARE
    n integer := coalesce(array_length(p_ids, 1), 0);
    n_rows integer := coalesce(array_length(p_row_locations, 1), 0);
    n_loads integer := coalesce(array_length(p_load_locations, 1), 0);
    n_holds integer := coalesce(array_length(p_hold_orders, 1), 0);
    n_picks integer := coalesce(array_length(p_pick_orders, 1), 0);
    v_new uuid[];
    v_failed uuid[] := '{}';
    v_ok boolean[];
    v_atp integer[] := array_fill(0, ARRAY[greatest(n_rows, 1)]);
    v_picks integer[] := array_fill(0, ARRAY[greatest(n_loads, 1)]);
    v_taken integer[] := array_fill(0, ARRAY[greatest(n_rows, 1)]);
    v_booked integer[] := array_fill(0, ARRAY[greatest(n_loads, 1)]);
    v_when timestamptz[] := array_fill(NULL::timestamptz, ARRAY[greatest(n_rows, 1)]);
    r record;
    i integer;
    h integer := 1;
    k integer := 1;
    h0 integer;
    k0 integer;
    j integer;
    fits boolean;
BEGIN
    WITH ins AS (
        INSERT INTO orders
        SELECT * FROM jsonb_populate_recordset(NULL::orders, p_doc -> 'orders') o
         ORDER BY o.channel, o.external_id
        ON CONFLICT (channel, external_id) DO NOTHING
        RETURNING id
    )
    SELECT coalesce(array_agg(id), '{}') INTO v_new FROM ins;
    v_ok := ARRAY(SELECT p_ids[g] = ANY(v_new) FROM generate_series(1, n) g ORDER BY g);
"""
    + "".join(
        f"""
    INSERT INTO {t} SELECT * FROM jsonb_populate_recordset(NULL::{t}, p_doc -> '{t}') x
     WHERE x.order_id = ANY(v_new);"""
        for t in CHILDREN
    )
    + r"""

    FOR r IN
        SELECT u.ord, s.on_hand - s.reserved - s.safety_stock AS atp
          FROM unnest(p_row_locations, p_row_skus) WITH ORDINALITY AS u(loc, sku, ord)
          JOIN stock s ON s.location_id = u.loc AND s.sku = u.sku
         ORDER BY u.ord
           FOR UPDATE OF s
    LOOP
        v_atp[r.ord] := r.atp;
    END LOOP;
    IF n_loads > 0 THEN
        INSERT INTO location_load (location_id, day, picks)
        SELECT l.loc, l.day, 0 FROM unnest(p_load_locations, p_load_days) AS l(loc, day)
        ON CONFLICT (location_id, day) DO NOTHING;
        FOR r IN
            SELECT u.ord, ll.picks
              FROM unnest(p_load_locations, p_load_days) WITH ORDINALITY AS u(loc, day, ord)
              JOIN location_load ll ON ll.location_id = u.loc AND ll.day = u.day
             ORDER BY u.ord
               FOR UPDATE OF ll
        LOOP
            v_picks[r.ord] := r.picks;
        END LOOP;
    END IF;

    -- the orders in the batch's order: holds and picks are grouped by order, ascending
    FOR i IN 1 .. n LOOP
        h0 := h;
        k0 := k;
        WHILE h <= n_holds AND p_hold_orders[h] = i LOOP
            h := h + 1;
        END LOOP;
        WHILE k <= n_picks AND p_pick_orders[k] = i LOOP
            k := k + 1;
        END LOOP;
        IF NOT v_ok[i] THEN
            r_order := i; r_outcome := 'duplicate'; r_location := NULL; r_sku := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        fits := true;
        FOR j IN h0 .. h - 1 LOOP
            IF v_atp[p_hold_rows[j]] - v_taken[p_hold_rows[j]] - p_extra[i]
               < p_hold_quantities[j] THEN
                fits := false;
                r_order := i; r_outcome := 'insufficient_stock';
                r_location := p_row_locations[p_hold_rows[j]];
                r_sku := p_row_skus[p_hold_rows[j]];
                EXIT;
            END IF;
        END LOOP;
        IF fits THEN
            FOR j IN k0 .. k - 1 LOOP
                IF v_picks[p_pick_rows[j]] + v_booked[p_pick_rows[j]] + 1 > p_pick_caps[j] THEN
                    fits := false;
                    r_order := i; r_outcome := 'capacity_full';
                    r_location := p_load_locations[p_pick_rows[j]]; r_sku := NULL;
                    EXIT;
                END IF;
            END LOOP;
        END IF;
        IF NOT fits THEN
            v_failed := v_failed || p_ids[i];
            RETURN NEXT;
            CONTINUE;
        END IF;
        FOR j IN h0 .. h - 1 LOOP
            v_taken[p_hold_rows[j]] := v_taken[p_hold_rows[j]] + p_hold_quantities[j];
            v_when[p_hold_rows[j]] := greatest(v_when[p_hold_rows[j]], p_at[i]);
        END LOOP;
        FOR j IN k0 .. k - 1 LOOP
            v_booked[p_pick_rows[j]] := v_booked[p_pick_rows[j]] + 1;
        END LOOP;
    END LOOP;

    UPDATE stock s SET reserved = s.reserved + t.q, updated_at = t.at
      FROM unnest(p_row_locations, p_row_skus, v_taken[1:n_rows], v_when[1:n_rows])
           AS t(loc, sku, q, at)
     WHERE s.location_id = t.loc AND s.sku = t.sku AND t.q > 0;
    IF n_loads > 0 THEN
        UPDATE location_load ll SET picks = ll.picks + t.q
          FROM unnest(p_load_locations, p_load_days, v_booked[1:n_loads]) AS t(loc, day, q)
         WHERE ll.location_id = t.loc AND ll.day = t.day AND t.q > 0;
    END IF;
    IF cardinality(v_failed) > 0 THEN
"""
    + "".join(
        f"""
        DELETE FROM {t} WHERE order_id = ANY(v_failed);"""
        for t in reversed(CHILDREN)
    )
    + r"""
        DELETE FROM orders WHERE id = ANY(v_failed);
    END IF;
END
$$
"""
)

DROP = (
    "DROP FUNCTION IF EXISTS trayecto_place(jsonb, text[], text[], integer[], integer[],"
    " integer[], text[], date[], integer[], integer[], integer[], uuid[], integer[],"
    " timestamptz[])"
)


DROP_HOLD = (
    "DROP FUNCTION IF EXISTS trayecto_hold("
    "text[], text[], integer[], integer, timestamptz, text[], date[], integer[])"
)


def _hold_function() -> str:
    """``trayecto_hold()`` as migration 0005 created it."""
    path = Path(__file__).with_name("0005_commerce_holds.py")
    spec = importlib.util.spec_from_file_location("trayecto_migration_0005", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.HOLD)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PLACE)
        op.execute(DROP_HOLD)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(DROP)
        op.execute(_hold_function())
