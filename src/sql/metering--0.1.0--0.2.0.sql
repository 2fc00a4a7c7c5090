-- metering 0.1.0 -> 0.2.0. Every schema change since 0.1.0, in the order it landed;
-- the same change is made in src/sql/modules/ (the fresh install), and
-- test/upgrade/upgrade.sh checks that both give the same catalog.
\echo Use "ALTER EXTENSION metering UPDATE TO '0.2.0'" to load this file. \quit

-- issue 9: custom meters run nothing of a user's choosing with the owner's rights.
-- The checker allows only built-in immutable objects of pg_catalog and resolves names
-- in pg_catalog alone; rating checks the stored expression again and runs the tree it
-- checked (metering._custom_quantity) instead of EXECUTEing the stored text.
COMMENT ON FUNCTION metering._check_expression(text) IS
    'Internal: checks a custom meter''s aggregate expression over metering.events (built-in immutable '
    'objects of pg_catalog only); returns its canonical text.';
CREATE FUNCTION metering._custom_quantity(meter text, expression text, customer_id text,
        from_ts timestamptz, to_ts timestamptz, filter jsonb, billed_by bigint[])
    RETURNS numeric
    AS 'MODULE_PATHNAME', 'metering_custom_quantity'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION metering._custom_quantity(text, text, text, timestamptz, timestamptz, jsonb, bigint[]) IS
    'Internal: quantity of a custom meter''s expression for a customer over [from_ts, to_ts) by due_at; '
    'refuses an expression made of anything but built-in immutable objects of pg_catalog.';
REVOKE EXECUTE ON FUNCTION metering._custom_quantity(text, text, text, timestamptz, timestamptz, jsonb, bigint[])
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION metering._custom_quantity(text, text, text, timestamptz, timestamptz, jsonb, bigint[])
    TO PUBLIC;
CREATE OR REPLACE FUNCTION metering._quantity(m metering.meters, customer_id text, from_ts timestamptz, to_ts timestamptz,
        billed_by bigint[] DEFAULT NULL)
    RETURNS numeric
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result numeric;
BEGIN
    IF m.aggregation = 'custom' THEN
        -- The stored expression, never the one in the row passed: it is Postgres's
        -- deparse of a checked aggregate (create_meter), not text as an admin typed it.
        -- _custom_quantity checks it again and runs the tree it checked.
        SELECT x.expression INTO STRICT m.expression FROM metering.meters x WHERE x.code = m.code;
        RETURN metering._custom_quantity(m.code, m.expression, customer_id, from_ts, to_ts, m.filter, billed_by);
    END IF;
    -- One query per kind over the meter's events in [from_ts, to_ts) by due_at,
    -- read through the primary key (customer_id, meter, due_at, event_id).
    WITH e AS (
        SELECT ev.value, ev.occurred_at, ev.event_id, ev.op,
               CASE WHEN m.value_property IS NULL THEN ev.value
                    WHEN m.aggregation <> 'unique_count'
                    THEN (ev.properties ->> m.value_property)::numeric END AS v,
               CASE WHEN m.value_property IS NULL THEN ev.value::text
                    ELSE ev.properties ->> m.value_property END AS t
        FROM metering.events ev
        WHERE ev.customer_id = _quantity.customer_id AND ev.meter = m.code
          AND ev.due_at >= from_ts AND ev.due_at < to_ts
          AND (m.filter IS NULL OR ev.properties @> m.filter)
          AND (billed_by IS NULL
               OR EXISTS (SELECT 1 FROM metering.billed_events b
                          WHERE b.customer_id = ev.customer_id AND b.event_id = ev.event_id
                            AND b.invoice_id = ANY (billed_by))))
    SELECT CASE m.aggregation
             WHEN 'count' THEN (SELECT count(*) FROM e)
             WHEN 'sum' THEN (SELECT coalesce(sum(v), 0) FROM e)
             WHEN 'max' THEN (SELECT max(v) FROM e)
             WHEN 'min' THEN (SELECT min(v) FROM e)
             WHEN 'latest' THEN (SELECT metering.latest(v, occurred_at, event_id) FROM e)
             WHEN 'unique_count' THEN (SELECT metering.unique_count(t) FROM e)
             -- the last set in the range (or 0 at from_ts) plus the increments after it
             WHEN 'counter' THEN (SELECT metering.counter_total(op, value, occurred_at, event_id) FROM e)
             -- value x hours; before its first point in the range the gauge holds the last
             -- value due before from_ts, else 0
             WHEN 'time_weighted' THEN (
               SELECT metering.time_weighted(pts.v, pts.at, from_ts, to_ts, pts.event_id)
               FROM (SELECT e.v, e.occurred_at AS at, e.event_id FROM e
                     UNION ALL
                     (SELECT CASE WHEN m.value_property IS NULL THEN p.value
                                  ELSE (p.properties ->> m.value_property)::numeric END,
                             least(p.occurred_at, from_ts - interval '1 microsecond'), p.event_id
                      FROM metering.events p
                      WHERE p.customer_id = _quantity.customer_id AND p.meter = m.code AND p.due_at < from_ts
                        AND (m.filter IS NULL OR p.properties @> m.filter)
                      ORDER BY p.due_at DESC, p.event_id DESC LIMIT 1)) pts)
           END
    INTO result;
    RETURN result;
END
$$;
-- A custom meter stored by 0.1.0 whose expression 0.2.0 refuses stays as it is (the
-- update does not fail); rating it raises the refusal. Say so now.
DO $$
DECLARE
    m record;
BEGIN
    FOR m IN SELECT code, expression FROM metering.meters WHERE aggregation = 'custom' ORDER BY code LOOP
        BEGIN
            PERFORM metering._check_expression(m.expression);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'custom meter "%" cannot be rated any more: %', m.code, SQLERRM
                USING HINT = 'Create a new meter with an allowed expression (docs/rating.md, Custom meters) '
                             'and charge it instead.';
        END;
    END LOOP;
END
$$;
