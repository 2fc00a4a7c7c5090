-- metering 0.1.0 -> 0.2.0. Every schema change since 0.1.0, in the order it landed;
-- the same change is made in src/sql/modules/ (the fresh install), and
-- test/upgrade/upgrade.sh checks that both give the same catalog.
\echo Use "ALTER EXTENSION metering UPDATE TO '0.2.0'" to load this file. \quit

------------------------------------------------------------------------------
-- issue 9: the billing history cannot be rewritten
------------------------------------------------------------------------------

-- events cannot be truncated
DROP TRIGGER events_append_only ON metering.events;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON metering.events
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'events are append-only', 'Record a correction as a new event.');

-- end_subscription taking the customer's lock, and close_periods refusing a future as_of
-- and reading the subscription again under that lock, come with their 0.2.0 versions in
-- the rollup section below.

-- The billing history cannot be rewritten: once a subscription has a live invoice, what
-- its periods and amounts were computed from is frozen (docs/invoicing.md, "Frozen
-- history"). A change to what no invoice used yet is allowed.
CREATE FUNCTION metering._billed_until(subscription_id bigint) RETURNS timestamptz
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT max(CASE WHEN i.kind = 'regular' THEN i.period_end ELSE least(i.as_of, i.period_end) END)
    FROM metering.invoices i
    WHERE i.subscription_id = _billed_until.subscription_id AND i.status <> 'void'
$$;
COMMENT ON FUNCTION metering._billed_until(bigint) IS
    'Internal: the instant up to which a subscription is invoiced (the end of its last invoiced period, '
    'or an interim invoice''s as_of); NULL when no live invoice.';

CREATE FUNCTION metering._freeze_billed() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    billed_until timestamptz;
    other bigint;
BEGIN
    -- Each branch first takes the locks that billing takes, in its order (the rollup
    -- lock, then the customers' rows), so that an invoice being issued concurrently is
    -- either seen here or issued after the change.
    IF TG_TABLE_NAME <> 'customers' THEN
        PERFORM 1 FROM metering.rollup_state FOR UPDATE;
    END IF;
    IF TG_TABLE_NAME = 'plans' THEN
        IF (NEW.currency, NEW.billing_interval, NEW.base_fee) IS DISTINCT FROM (OLD.currency, OLD.billing_interval, OLD.base_fee) THEN
            PERFORM 1 FROM metering.customers c
            WHERE c.customer_id IN (SELECT s.customer_id FROM metering.subscriptions s WHERE s.plan_code = OLD.code)
            ORDER BY c.customer_id FOR UPDATE;
        END IF;
        IF (NEW.currency, NEW.billing_interval, NEW.base_fee) IS DISTINCT FROM (OLD.currency, OLD.billing_interval, OLD.base_fee)
           AND EXISTS (SELECT 1 FROM metering.subscriptions s JOIN metering.invoices i USING (subscription_id)
                       WHERE s.plan_code = OLD.code AND i.status <> 'void') THEN
            RAISE EXCEPTION 'plan "%" has invoiced periods: its currency, billing_interval and base_fee are frozen', OLD.code
                USING ERRCODE = 'MT017',
                      HINT = 'Create a new plan and move subscriptions to it (end_subscription, subscribe) at a period boundary.';
        END IF;
    ELSIF TG_TABLE_NAME = 'customers' THEN
        -- the UPDATE itself holds this customer's row lock
        IF NEW.timezone IS DISTINCT FROM OLD.timezone
           AND EXISTS (SELECT 1 FROM metering.invoices i WHERE i.customer_id = OLD.customer_id AND i.status <> 'void') THEN
            RAISE EXCEPTION 'customer_id "%" has invoiced periods: its timezone is frozen', OLD.customer_id
                USING ERRCODE = 'MT017',
                      HINT = 'Billing periods follow the time zone; a new time zone needs a new subscription from a period boundary.';
        END IF;
        IF NEW.timezone IS DISTINCT FROM OLD.timezone THEN
            PERFORM metering._check_timezone(NEW.timezone);
        END IF;
    ELSE  -- subscriptions
        PERFORM 1 FROM metering.customers c WHERE c.customer_id IN (OLD.customer_id, NEW.customer_id)
        ORDER BY c.customer_id FOR UPDATE;
        billed_until := metering._billed_until(OLD.subscription_id);
        IF billed_until IS NOT NULL
           AND (NEW.customer_id, NEW.plan_code, NEW.starts_at, NEW.billing_anchor)
               IS DISTINCT FROM (OLD.customer_id, OLD.plan_code, OLD.starts_at, OLD.billing_anchor) THEN
            RAISE EXCEPTION 'subscription % has invoiced periods: its customer_id, plan_code, starts_at and billing_anchor are frozen',
                OLD.subscription_id USING ERRCODE = 'MT017',
                HINT = 'End it with metering.end_subscription and subscribe anew.';
        END IF;
        IF NEW.ends_at IS DISTINCT FROM OLD.ends_at THEN
            IF NEW.ends_at < billed_until THEN
                RAISE EXCEPTION 'ends_at % of subscription % is before %, up to which it is invoiced',
                    NEW.ends_at, OLD.subscription_id, billed_until USING ERRCODE = 'MT017',
                    HINT = 'Void the invoices after the new end first, or end it later.';
            END IF;
            SELECT s.subscription_id INTO other FROM metering.subscriptions s
            WHERE s.customer_id = NEW.customer_id AND s.subscription_id <> OLD.subscription_id
              AND s.starts_at < coalesce(NEW.ends_at, 'infinity') AND coalesce(s.ends_at, 'infinity') > NEW.starts_at
            LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'subscription % would overlap subscription % of customer_id "%"',
                    OLD.subscription_id, other, NEW.customer_id USING ERRCODE = 'MT019';
            END IF;
        END IF;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION metering._freeze_billed() IS
    'Internal: refuses changes to plans, customers'' time zones and subscriptions that would move '
    'periods or amounts under live invoices.';
CREATE TRIGGER plans_freeze_billed BEFORE UPDATE ON metering.plans
    FOR EACH ROW EXECUTE FUNCTION metering._freeze_billed();
CREATE TRIGGER customers_freeze_billed BEFORE UPDATE ON metering.customers
    FOR EACH ROW EXECUTE FUNCTION metering._freeze_billed();
CREATE TRIGGER subscriptions_freeze_billed BEFORE UPDATE ON metering.subscriptions
    FOR EACH ROW EXECUTE FUNCTION metering._freeze_billed();
REVOKE EXECUTE ON FUNCTION metering._billed_until(bigint), metering._freeze_billed() FROM PUBLIC;

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

------------------------------------------------------------------------------
-- issue 10: usage rollups, a set-based exactly-once close, late usage at the margin
------------------------------------------------------------------------------

-- Events carry their transaction: the rollup step consumes them by snapshot. Rows of
-- 0.1.0 get 1, which no snapshot of a step has seen: the first step consumes them all.
ALTER TABLE metering.events ADD COLUMN txid bigint NOT NULL DEFAULT 1;
ALTER TABLE metering.events ALTER COLUMN txid SET DEFAULT txid_current();
CREATE INDEX events_txid ON metering.events USING brin (txid) WITH (pages_per_range = 16, autosummarize = on);
COMMENT ON COLUMN metering.events.txid IS
    'The inserting (top-level) transaction, as txid_current(): the rollup step consumes an event once its '
    'transaction is visible in the step''s snapshot (docs/design.md, "Rollups").';

-- Serialized line states and the period of an instant
CREATE FUNCTION metering._line_state_merge_trans(internal, bytea) RETURNS internal
    AS 'MODULE_PATHNAME', 'metering_line_state_merge_trans'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION metering._line_state_merge_trans(internal, bytea) IS
    'Internal: transition of the aggregates over serialized line states.';
-- The state of a line over rows (as _line_quantity), serialized instead of finished.
CREATE AGGREGATE metering._line_state(kind integer, value numeric, text_value text, at timestamptz,
                                      tiebreak bigint, op text) (
    SFUNC = metering._line_quantity_trans, STYPE = internal, SSPACE = 96,
    COMBINEFUNC = metering._line_quantity_combine,
    SERIALFUNC = metering._line_quantity_serialize, DESERIALFUNC = metering._line_quantity_deserialize,
    FINALFUNC = metering._line_quantity_serialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE metering._line_state(integer, numeric, text, timestamptz, bigint, text) IS
    'Internal: the serialized state of metering._line_quantity over the rows (NULL for none).';
CREATE AGGREGATE metering._merged_quantity(state bytea) (
    SFUNC = metering._line_state_merge_trans, STYPE = internal, SSPACE = 96,
    COMBINEFUNC = metering._line_quantity_combine,
    SERIALFUNC = metering._line_quantity_serialize, DESERIALFUNC = metering._line_quantity_deserialize,
    FINALFUNC = metering._line_quantity_final,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE metering._merged_quantity(bytea) IS
    'Internal: the quantity of a line from serialized partial states of it (rollups and the tail).';
CREATE FUNCTION metering._state_quantity(state bytea) RETURNS numeric
    AS 'MODULE_PATHNAME', 'metering_line_state_quantity'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION metering._state_quantity(bytea) IS
    'Internal: the quantity of a serialized line state.';
CREATE FUNCTION metering._state_merge(a bytea, b bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'metering_line_state_merge'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION metering._state_merge(bytea, bytea) IS
    'Internal: two serialized states of one line as one (NULL: no rows).';

CREATE FUNCTION metering._period_of(anchor timestamptz, billing_interval interval, timezone text,
        starts_at timestamptz, ends_at timestamptz, at timestamptz) RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'metering_period_of'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION metering._period_of(timestamptz, interval, text, timestamptz, timestamptz, timestamptz) IS
    'Internal: the start of the billing period of a subscription over [starts_at, ends_at) (NULL: open) '
    'that contains at, cut to starts_at; NULL outside the subscription.';

-- One row: the snapshot of the last rollup step. An event is rolled up iff its
-- transaction (events.txid) is visible in it (docs/design.md, "Rollups").
CREATE TABLE metering.rollup_state (
    only_row        boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    snapshot        txid_snapshot NOT NULL,
    refreshed_at    timestamptz,
    events_consumed bigint NOT NULL DEFAULT 0,
    closed_at       timestamptz,         -- the last close_periods, and how many invoices it made
    close_invoices  int
);
-- '1:1:' sees no transaction: the first step consumes every event there is.
INSERT INTO metering.rollup_state (snapshot) VALUES ('1:1:');
COMMENT ON TABLE metering.rollup_state IS
    'The rollup step''s position: the transaction snapshot of the last step (an event is rolled up iff '
    'its transaction is visible in it), when it ran, how many events the steps consumed; and the last '
    'close_periods and how many invoices it made.';

-- Partial aggregate state per customer, meter and billing period (the subscription's
-- period, cut to the subscription, that contains the events' due_at).
CREATE TABLE metering.usage_rollups (
    customer_id     text COLLATE "C" NOT NULL,
    meter           text COLLATE "C" NOT NULL,
    period_start    timestamptz NOT NULL,
    subscription_id bigint NOT NULL,
    state           bytea,           -- NULL for custom and time_weighted meters (read from events)
    events          bigint NOT NULL,
    -- the period first: a close probes one period's groups, which then sit together in
    -- the index however many periods it holds (keyed by customer first, the probes of a
    -- close touched every leaf, and each month of history made them slower)
    PRIMARY KEY (period_start, customer_id, meter)
)
-- half of each page left free at insert: every step rewrites the states of its groups, and
-- with room on the page the new version stays there (a HOT update: no index entry, and
-- the dead version is pruned by the next step). Packed full, each update went to another
-- page with two index entries, and a close reading a group first pruned what the steps left.
WITH (fillfactor = 50);
-- a customer's groups, for its rebuild (the customer alone: with the period as well,
-- the planner took it for a close's probes too, and they scattered over its leaves)
CREATE INDEX usage_rollups_customer ON metering.usage_rollups (customer_id);
COMMENT ON TABLE metering.usage_rollups IS
    'Rolled-up usage: the serialized partial aggregate of a customer''s meter per billing period, '
    'over the events the rollup steps consumed (state NULL for custom and time_weighted meters, whose '
    'quantity is read from the events).';


-- The rollup step
-- Every subscription with what its periods are made of, for a rollup step over many
-- events: the join of _rollup_groups' subs, in a function the planner cannot see into
-- (the other branch there stays inlined, so that a few customers' events are probed
-- through their index). ROWS 1 is a lie on purpose: the planner then hashes them,
-- whatever it believes of the events. Parallel safe: a close rolling up a month inline
-- reads the events with parallel workers (not safe, it kept the plan to one process,
-- and such a close took 1.8x as long).
CREATE FUNCTION metering._rollup_subscriptions() RETURNS TABLE(
        subscription_id bigint, customer_id text, starts_at timestamptz, ends_at timestamptz,
        billing_anchor timestamptz, billing_interval interval, timezone text)
    LANGUAGE plpgsql STABLE PARALLEL SAFE ROWS 1
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT s.subscription_id, s.customer_id::text, s.starts_at, s.ends_at, s.billing_anchor, pl.billing_interval,
           c.timezone
    FROM metering.subscriptions s
    JOIN metering.customers c ON c.customer_id = s.customer_id
    JOIN metering.plans pl ON pl.code = s.plan_code;
END
$$;
COMMENT ON FUNCTION metering._rollup_subscriptions() IS
    'Internal: every subscription with what its periods are made of, for a rollup step over many events '
    '(ROWS 1 on purpose: the planner hashes them).';

-- The events whose transaction is visible in cur and not in prev, grouped per line:
-- per customer, meter and the subscription's billing period containing the event's
-- due_at, with the partial state of the meter's kind (custom and time_weighted: none).
-- cur NULL: every event the caller sees (its own transaction's included), so that
-- (prev = the last step's snapshot, cur NULL) is the tail not rolled up yet.
-- customers and from_ts narrow it to some customers and to events due from an instant.
-- Planned at every call with its arguments as constants: a generic plan cannot tell a
-- step (a few recent transactions: the txid indexes) from a rebuild (one customer's
-- events: the primary key), and the one Postgres settled on in the rollup worker's
-- session read every customer's whole history by primary key at every step.
-- Many new events (a burst of ingest, a close rolling up a month inline) are read in one
-- pass: the subscriptions hashed, the events streamed past them, the groups hashed. The
-- planner, whose statistics predate the new txids and which gives the visibility tests
-- default selectivities, estimates the events at a few rows: it hashed them instead, and
-- probed per event with nested loops, and sorted them on disk to group them (a step of
-- 100,000 events took twice as long). From a third of the subscriptions' number of events
-- on (counted through the txid indexes, up to that number), the subscriptions come from
-- _rollup_subscriptions, which it believes to be one row (so it hashes them), with nested
-- loops and sorts off; the SET clauses end the settings with the call.
CREATE FUNCTION metering._rollup_groups(prev txid_snapshot, cur txid_snapshot,
        customers text[] DEFAULT NULL, from_ts timestamptz DEFAULT NULL)
    RETURNS TABLE(customer_id text, meter text, period_start timestamptz, subscription_id bigint,
                  state bytea, events bigint)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_custom_plan
    SET enable_nestloop = on
    SET enable_sort = on
    SET jit = off
AS $$
DECLARE
    many bigint;
    stream boolean := false;
    whole_from timestamptz;  -- [whole_from, whole_to): months read whole, by a scan
    whole_to timestamptz;
    whole_months bigint;
    tail_months bigint;
BEGIN
    IF customers IS NULL THEN
        SELECT greatest(10000, c.reltuples / 3)::bigint INTO many
        FROM pg_catalog.pg_class c WHERE c.oid = 'metering.subscriptions'::regclass;
        IF (SELECT count(*) FROM (SELECT FROM metering._tail_months(prev, cur) t
                                  CROSS JOIN LATERAL (
                                      SELECT FROM metering.events e
                                      WHERE e.due_at >= t.due_from AND e.due_at < t.due_to AND e.ctid >= t.first_tid
                                        AND e.ctid <= '(4294967295,65535)'
                                        AND e.txid >= txid_snapshot_xmin(prev) OFFSET 0) e
                                  LIMIT many) x) = many THEN
            stream := true;
            PERFORM set_config('enable_nestloop', 'off', true);
            PERFORM set_config('enable_sort', 'off', true);
            -- The months mostly new (a month's load rolled up by its close), if they
            -- follow each other, are read whole: a TID range scan cannot run in
            -- parallel, a scan of the month can (and reads at most twice the tail).
            -- When every month of the tail is read whole, the plan is that scan alone
            -- (the branch of TID ranges is dropped when planned), so that the joins and
            -- the grouping run in parallel workers as well.
            SELECT min(t.due_from) FILTER (WHERE t.whole), max(t.due_to) FILTER (WHERE t.whole),
                   count(*) FILTER (WHERE t.whole), count(*)
            INTO whole_from, whole_to, whole_months, tail_months
            FROM metering._tail_months(prev, cur) t;
            IF whole_months = 0 OR ((whole_from AT TIME ZONE 'UTC') + whole_months * interval '1 month')
                                   AT TIME ZONE 'UTC' <> whole_to THEN
                whole_from := NULL;
                whole_to := NULL;
            END IF;
        END IF;
    END IF;
    RETURN QUERY
    -- each subscription with what its periods are made of
    WITH subs AS (
        SELECT s.subscription_id, s.customer_id, s.starts_at, s.ends_at, s.billing_anchor, pl.billing_interval,
               c.timezone
        FROM metering.subscriptions s
        JOIN metering.customers c ON c.customer_id = s.customer_id
        JOIN metering.plans pl ON pl.code = s.plan_code
        WHERE NOT stream AND (customers IS NULL OR s.customer_id = ANY (customers))
        UNION ALL
        SELECT * FROM metering._rollup_subscriptions() WHERE stream
    )
    SELECT ev.customer_id::text, ev.meter::text, g.period_start, s.subscription_id,
           metering._line_state(
               m.kind,
               CASE WHEN m.kind IN (1, 5) THEN NULL
                    WHEN m.value_property IS NULL OR m.kind = 7 THEN ev.value
                    ELSE (ev.properties ->> m.value_property)::numeric END,
               CASE WHEN m.kind = 5 THEN CASE WHEN m.value_property IS NULL THEN ev.value::text
                                              ELSE ev.properties ->> m.value_property END END,
               ev.occurred_at, ev.event_id, ev.op) FILTER (WHERE m.kind > 0),
           count(*)
    FROM (-- the tail: each month from the first block its new transactions wrote
          SELECT e.* FROM metering._tail_months(prev, cur) t
          CROSS JOIN LATERAL (SELECT e.* FROM metering.events e
                              WHERE e.due_at >= t.due_from AND e.due_at < t.due_to AND e.ctid >= t.first_tid
                                AND e.ctid <= '(4294967295,65535)'
                              OFFSET 0) e
          WHERE customers IS NULL AND (whole_from IS NULL OR t.due_from < whole_from OR t.due_from >= whole_to)
            AND NOT (whole_from IS NOT NULL AND whole_months = tail_months)  -- (then a scan alone, in parallel)
          UNION ALL
          -- the months read whole (known when planned: the others are pruned)
          SELECT e.* FROM metering.events e
          WHERE customers IS NULL AND e.due_at >= whole_from AND e.due_at < whole_to
          UNION ALL
          -- some customers' events (a rebuild): by the primary key
          SELECT e.* FROM metering.events e WHERE customers IS NOT NULL AND e.customer_id = ANY (customers)) ev
    JOIN subs s ON s.customer_id = ev.customer_id AND s.starts_at <= ev.due_at
         AND (s.ends_at IS NULL OR ev.due_at < s.ends_at)
    JOIN metering.meters m ON m.code = ev.meter
    CROSS JOIN LATERAL (SELECT metering._period_of(s.billing_anchor, s.billing_interval, s.timezone,
                                                   s.starts_at, s.ends_at, ev.due_at) AS period_start) g
    WHERE ev.txid >= txid_snapshot_xmin(prev)
      AND (cur IS NULL OR txid_visible_in_snapshot(ev.txid, cur)) AND NOT txid_visible_in_snapshot(ev.txid, prev)
      AND (m.filter IS NULL OR ev.properties @> m.filter)
      AND (customers IS NULL OR ev.customer_id = ANY (customers))
      AND (from_ts IS NULL OR ev.due_at >= from_ts)
    GROUP BY ev.customer_id, ev.meter, g.period_start, s.subscription_id;
END
$$;
COMMENT ON FUNCTION metering._rollup_groups(txid_snapshot, txid_snapshot, text[], timestamptz) IS
    'Internal: the events whose transaction is visible in cur (NULL: to the caller) and not in prev, grouped '
    'per customer, meter and billing period, with their partial states (customers, from_ts: only those).';

-- Adds groups to the rollups; a group whose period already has its live regular invoice
-- is flagged as late usage for the subscription's next invoice.
CREATE FUNCTION metering._rollup_add(prev txid_snapshot, cur txid_snapshot) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    consumed bigint;
BEGIN
    WITH batch AS MATERIALIZED (SELECT * FROM metering._rollup_groups(prev, cur)),
    added AS (
        INSERT INTO metering.usage_rollups AS r (customer_id, meter, period_start, subscription_id, state, events)
        SELECT b.customer_id, b.meter, b.period_start, b.subscription_id, b.state, b.events FROM batch b
        ON CONFLICT (customer_id, meter, period_start) DO UPDATE
            SET state = metering._state_merge(r.state, excluded.state), events = r.events + excluded.events,
                subscription_id = excluded.subscription_id
    ),
    late AS (
        INSERT INTO metering.late_groups (subscription_id, period_start, meter)
        SELECT b.subscription_id, b.period_start, b.meter FROM batch b
        WHERE EXISTS (SELECT 1 FROM metering.invoices i
                      WHERE i.subscription_id = b.subscription_id AND i.kind = 'regular'
                        AND i.status <> 'void' AND i.period_start = b.period_start)
        ON CONFLICT DO NOTHING
    )
    SELECT coalesce(sum(b.events), 0) INTO consumed FROM batch b;
    RETURN consumed;
END
$$;
COMMENT ON FUNCTION metering._rollup_add(txid_snapshot, txid_snapshot) IS
    'Internal: rolls up the events of the batch between two snapshots and flags late groups.';

-- One rollup step: the events committed since the last step, exactly once. The row of
-- rollup_state is the lock: steps (and closes, which run one first) take turns.
CREATE FUNCTION metering._rollup_step() RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    prev txid_snapshot;
    cur txid_snapshot;
    own bigint;
    consumed bigint;
BEGIN
    SELECT r.snapshot INTO prev FROM metering.rollup_state r FOR UPDATE;
    -- Taken after the lock: every statement from here on sees at least what it sees.
    cur := txid_current_snapshot();
    -- Never the step's own transaction (the lock gave it an id): it may insert events
    -- after the step, under the same id. A snapshot does not list its own transaction,
    -- which therefore looks visible once a later one has completed: list it as running.
    own := txid_current_if_assigned();
    IF own IS NOT NULL AND txid_visible_in_snapshot(own, cur) THEN
        cur := format('%s:%s:%s', least(txid_snapshot_xmin(cur), own), txid_snapshot_xmax(cur),
                      (SELECT string_agg(x::text, ',' ORDER BY x)
                       FROM (SELECT txid_snapshot_xip(cur) UNION SELECT own) xs(x)))::txid_snapshot;
    END IF;
    consumed := metering._rollup_add(prev, cur);
    -- What cur sees is rolled up (or aborted): its writes need not be read again. The
    -- steps before deleted what prev saw, so nothing is left below its xmin.
    DELETE FROM metering.event_writes w
    WHERE w.txid >= txid_snapshot_xmin(prev) AND w.txid < txid_snapshot_xmax(cur)
      AND txid_visible_in_snapshot(w.txid, cur);
    UPDATE metering.rollup_state SET snapshot = cur, refreshed_at = clock_timestamp(),
                                     events_consumed = events_consumed + consumed;
    RETURN consumed;
END
$$;
COMMENT ON FUNCTION metering._rollup_step() IS
    'Internal: one rollup step (the caller''s transaction keeps the rollup lock until it ends).';

CREATE FUNCTION metering.refresh_usage() RETURNS bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT metering._rollup_step() $$;
COMMENT ON FUNCTION metering.refresh_usage() IS
    'Rolls up the events committed since the last call, exactly once, and returns how many it consumed. '
    'What the background worker does when the library is preloaded; schedule it with pg_cron otherwise. '
    'Reads never depend on it having run.';

-- Rebuilds a customer's groups after what they are grouped by changed (a subscription
-- starts, ends or moves, a time zone changes) or an event was deleted: every group
-- after the last period a live regular invoice closed, from the events already rolled
-- up. The periods before are invoiced, hence frozen (docs/invoicing.md), and their
-- end is a period boundary whatever changed.
CREATE FUNCTION metering._rollup_rebuild(customer_id text) RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    done txid_snapshot;
    from_ts timestamptz;
BEGIN
    SELECT r.snapshot INTO done FROM metering.rollup_state r FOR UPDATE;
    SELECT coalesce(max(i.period_end), '-infinity') INTO from_ts FROM metering.invoices i
    WHERE i.customer_id = _rollup_rebuild.customer_id AND i.kind = 'regular' AND i.status <> 'void';
    -- The groups before the retention horizon stay: their events were dropped.
    from_ts := greatest(from_ts, metering._retention_horizon());
    DELETE FROM metering.usage_rollups u
    WHERE u.customer_id = _rollup_rebuild.customer_id AND u.period_start >= from_ts;
    INSERT INTO metering.usage_rollups (customer_id, meter, period_start, subscription_id, state, events)
    SELECT b.customer_id, b.meter, b.period_start, b.subscription_id, b.state, b.events
    FROM metering._rollup_groups('1:1:', done, ARRAY[_rollup_rebuild.customer_id], from_ts) b;
END
$$;
COMMENT ON FUNCTION metering._rollup_rebuild(text) IS
    'Internal: rebuilds a customer''s rollups after its last regular invoice from the events already rolled up.';

-- Invoices: what was billed per period and charge instead of a mark per event
ALTER TABLE metering.invoice_items ADD COLUMN period_quantity numeric;
COMMENT ON TABLE metering.invoice_items IS
    'Lines of an invoice. usage: the period''s billed quantity so far and the amount still due for it '
    '(rate of the whole minus what earlier invoices of the period billed); late_usage: the usage an '
    'already invoiced period gained since, priced at the margin without free units '
    '(rate''(billed + late) - rate''(billed)); base_fee.';

COMMENT ON COLUMN metering.invoice_items.period_quantity IS
    'The period''s whole quantity once this line is billed (what late usage is priced from); NULL for a base fee.';

-- Exactly once without a row per billed event (docs/design.md, "Rollups"): a regular
-- invoice bills the rolled-up state of its period (every event the rollup steps
-- consumed up to it); an event consumed later into an invoiced period is late usage,
-- billed by the next invoice as the difference between the period's quantity now and
-- the quantity already billed, both kept here per subscription period and charge.
CREATE TABLE metering.billed_lines (
    subscription_id bigint NOT NULL,
    period_start    timestamptz NOT NULL,
    charge_id       bigint NOT NULL,
    quantity        numeric NOT NULL,   -- the period's quantity the last live line billed
    amount          numeric NOT NULL,   -- what the live lines of the period billed in all
    -- the period first, as usage_rollups: a close reads one period's lines
    PRIMARY KEY (period_start, subscription_id, charge_id)
);
COMMENT ON TABLE metering.billed_lines IS
    'Exactly-once bookkeeping: per subscription period and charge, the period''s quantity its last live '
    'invoice line billed, and the sum of the amounts of its live lines.';

-- Invoiced periods whose group received events since: the next invoice of the
-- subscription bills the difference as late usage (O(late groups), not O(history)).
CREATE TABLE metering.late_groups (
    subscription_id bigint NOT NULL,
    period_start    timestamptz NOT NULL,
    meter           text COLLATE "C" NOT NULL,
    PRIMARY KEY (subscription_id, period_start, meter)
);
COMMENT ON TABLE metering.late_groups IS
    'Invoiced periods whose usage changed since their invoice: late usage for the subscription''s next invoice.';

-- Failures of close_periods, one row per subscription until a run invoices it.
CREATE TABLE metering.billing_failures (
    subscription_id bigint PRIMARY KEY,
    customer_id     text COLLATE "C" NOT NULL,
    sqlstate        text NOT NULL,
    message         text NOT NULL,
    first_failed_at timestamptz NOT NULL,
    last_failed_at  timestamptz NOT NULL,
    attempts        int NOT NULL
);
COMMENT ON TABLE metering.billing_failures IS
    'Subscriptions close_periods could not invoice, with the error of the last attempt; the next run retries them.';
CREATE VIEW metering.billing_errors AS
SELECT f.subscription_id, f.customer_id, f.sqlstate, f.message, f.first_failed_at, f.last_failed_at, f.attempts
FROM metering.billing_failures f;
COMMENT ON VIEW metering.billing_errors IS
    'Subscriptions close_periods could not invoice (each run retries them): the error of the last attempt, '
    'when they first and last failed, and how many runs failed.';

SELECT pg_catalog.pg_extension_config_dump('metering.billed_lines', '');
SELECT pg_catalog.pg_extension_config_dump('metering.billing_failures', '');

CREATE TRIGGER billed_lines_keep BEFORE UPDATE OR DELETE OR TRUNCATE ON metering.billed_lines
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'what was billed changes only with its invoices', 'Void the invoice with metering.void_invoice.');


-- What 0.1.0's live invoices billed, from their marks: per subscription, period and
-- charge, the quantity of the events they marked and the sum of their amounts; and the
-- period's quantity after each line (a 0.1.0 late line shows the late events alone).
CREATE FUNCTION pg_temp.marked_quantity(s metering.subscriptions, ch metering.charges, p_start timestamptz,
        p_end timestamptz, up_to bigint) RETURNS numeric LANGUAGE sql AS $$
    SELECT coalesce(metering._quantity(m, s.customer_id, p_start, p_end,
                                       ARRAY(SELECT i.invoice_id FROM metering.invoices i
                                             WHERE i.subscription_id = s.subscription_id AND i.status <> 'void'
                                               AND i.invoice_id <= up_to)), 0)
    FROM metering.meters m WHERE m.code = ch.meter
$$;
SELECT metering._internal_change(true);
UPDATE metering.invoice_items it
SET period_quantity = CASE WHEN it.kind = 'usage' THEN it.quantity
                           ELSE pg_temp.marked_quantity(s, ch, it.period_start, it.period_end, it.invoice_id) END
FROM metering.invoices i, metering.subscriptions s, metering.charges ch
WHERE i.invoice_id = it.invoice_id AND s.subscription_id = i.subscription_id AND ch.charge_id = it.charge_id;
INSERT INTO metering.billed_lines (subscription_id, period_start, charge_id, quantity, amount)
SELECT i.subscription_id, it.period_start, it.charge_id,
       (array_agg(it.period_quantity ORDER BY i.invoice_id DESC, it.item_no DESC))[1], sum(it.amount)
FROM metering.invoice_items it JOIN metering.invoices i USING (invoice_id)
WHERE i.status <> 'void' AND it.charge_id IS NOT NULL
GROUP BY i.subscription_id, it.period_start, it.charge_id;
SELECT metering._internal_change(false);

-- _custom_quantity without billing marks (the migration above was its last use of them)
DROP FUNCTION metering._custom_quantity(text, text, text, timestamptz, timestamptz, jsonb, bigint[]);
CREATE FUNCTION metering._custom_quantity(meter text, expression text, customer_id text,
        from_ts timestamptz, to_ts timestamptz, filter jsonb)
    RETURNS numeric
    AS 'MODULE_PATHNAME', 'metering_custom_quantity'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION metering._custom_quantity(text, text, text, timestamptz, timestamptz, jsonb) IS
    'Internal: quantity of a custom meter''s expression for a customer over [from_ts, to_ts) by due_at; '
    'refuses an expression made of anything but built-in immutable objects of pg_catalog.';

-- Reads: the rolled-up state merged with the tail. 0.1.0's _quantity (with billed_by)
-- served the migration above; the view calls it, so the view is replaced for a moment
-- by one that does not, while _quantity changes.
CREATE OR REPLACE VIEW metering._usage_quantities AS
SELECT l.subscription_id, l.customer_id, l.period_start, l.period_end, l.charge_id, l.meter,
       l.pricing, l.currency, NULL::numeric AS quantity
FROM metering._usage_lines l;
DROP FUNCTION metering._quantity(metering.meters, text, timestamptz, timestamptz, bigint[]);
CREATE FUNCTION metering._quantity(m metering.meters, customer_id text, from_ts timestamptz, to_ts timestamptz)
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
        RETURN metering._custom_quantity(m.code, m.expression, customer_id, from_ts, to_ts, m.filter);
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
          AND (m.filter IS NULL OR ev.properties @> m.filter))
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

COMMENT ON FUNCTION metering._quantity(metering.meters, text, timestamptz, timestamptz) IS
    'Internal: quantity of a meter for a customer over [from_ts, to_ts) by due_at.';

CREATE OR REPLACE FUNCTION metering._rolled_up() RETURNS txid_snapshot
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT r.snapshot FROM metering.rollup_state r $$;

COMMENT ON FUNCTION metering._rolled_up() IS
    'Internal: the snapshot of the last rollup step (an event is rolled up iff its transaction is visible in it).';

CREATE OR REPLACE VIEW metering._usage_quantities AS
SELECT l.subscription_id, l.customer_id, l.period_start, l.period_end, l.charge_id, l.meter,
       l.pricing, l.currency,
       CASE WHEN l.k = 0 THEN metering._quantity(l.meter_row, l.customer_id, l.period_start, l.period_end)
            ELSE q.quantity END AS quantity
FROM metering._usage_lines l
LEFT JOIN (
    SELECT parts.customer_id, parts.meter, parts.period_start, metering._merged_quantity(parts.state) AS quantity
    FROM (
        SELECT r.customer_id, r.meter, r.period_start, r.state
        FROM metering.usage_rollups r
        UNION ALL
        SELECT ev.customer_id, ev.meter,
               metering._period_of(s.billing_anchor, pl.billing_interval, c.timezone, s.starts_at, s.ends_at,
                                   ev.due_at) AS period_start,
               metering._line_state(
                   m.kind,
                   CASE WHEN m.kind IN (1, 5) THEN NULL
                        WHEN m.value_property IS NULL OR m.kind = 7 THEN ev.value
                        ELSE (ev.properties ->> m.value_property)::numeric END,
                   CASE WHEN m.kind = 5 THEN CASE WHEN m.value_property IS NULL THEN ev.value::text
                                                  ELSE ev.properties ->> m.value_property END END,
                   ev.occurred_at, ev.event_id, ev.op)
        FROM metering.events ev
        JOIN metering.subscriptions s ON s.customer_id = ev.customer_id AND s.starts_at <= ev.due_at
             AND (s.ends_at IS NULL OR ev.due_at < s.ends_at)
        JOIN metering.customers c ON c.customer_id = s.customer_id
        JOIN metering.plans pl ON pl.code = s.plan_code
        JOIN metering.meters m ON m.code = ev.meter
        WHERE m.kind > 0
          AND (m.filter IS NULL OR ev.properties @> m.filter)
          AND ev.txid >= txid_snapshot_xmin(metering._rolled_up())
          AND NOT txid_visible_in_snapshot(ev.txid, metering._rolled_up())
        GROUP BY 1, 2, 3
    ) parts
    GROUP BY parts.customer_id, parts.meter, parts.period_start
) q ON q.customer_id = l.customer_id AND q.meter = l.meter AND q.period_start = l.period_start;


-- The end of a subscription's last live regular invoice ('-infinity': none yet), as
-- one row to join LATERAL. Its periods before are invoiced, but for voided ones not
-- issued anew. A table function without SET, so that Postgres inlines it into its
-- callers as one index probe a subscription (called through fmgr it cost about 10
-- microseconds each, a second of a close of 100,000); inlined, it is planned with the
-- callers' search_path, which they pin.
CREATE FUNCTION metering._regular_billed_to(subscription_id bigint) RETURNS TABLE(billed_to timestamptz)
    LANGUAGE sql STABLE
AS $$
    SELECT coalesce(max(last.period_end), '-infinity')
    FROM (SELECT i.period_end FROM metering.invoices i
          WHERE i.subscription_id = _regular_billed_to.subscription_id AND i.kind = 'regular'
            AND i.status <> 'void'
          ORDER BY i.period_start DESC LIMIT 1) last
$$;
COMMENT ON FUNCTION metering._regular_billed_to(bigint) IS
    'Internal: the end of a subscription''s last live regular invoice; -infinity when none.';

CREATE FUNCTION metering._issue_invoices(subs bigint[], cutoff timestamptz, as_of timestamptz, mode text)
    RETURNS int
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    made int;
BEGIN
    PERFORM metering._internal_change(true);
    WITH
    -- periods whose regular invoice was voided and not issued anew (before the last one)
    holes AS MATERIALIZED (
        SELECT DISTINCT v.subscription_id, v.period_start FROM metering.invoices v
        WHERE mode = 'regular' AND v.subscription_id = ANY (subs) AND v.kind = 'regular' AND v.status = 'void'
          AND NOT EXISTS (SELECT 1 FROM metering.invoices i
                          WHERE i.subscription_id = v.subscription_id AND i.kind = 'regular'
                            AND i.status <> 'void' AND i.period_start = v.period_start)
    ),
    -- every ended period after the subscription's last live regular invoice (computed from
    -- there: one index probe per subscription, whatever its history), and the holes
    due AS MATERIALIZED (
        SELECT s.subscription_id, s.customer_id, s.plan_code, 'regular'::text AS kind,
               greatest(w.period_start, s.starts_at) AS period_start,
               least(w.period_end, coalesce(s.ends_at, 'infinity')) AS period_end,
               w.period_start AS full_start, w.period_end AS full_end,
               least(w.period_end, coalesce(s.ends_at, 'infinity')) AS usage_to
        FROM metering.subscriptions s
        JOIN metering.customers c ON c.customer_id = s.customer_id
        JOIN metering.plans pl ON pl.code = s.plan_code
        CROSS JOIN LATERAL metering._regular_billed_to(s.subscription_id) r
        CROSS JOIN LATERAL (SELECT greatest(s.starts_at, r.billed_to) AS from_ts,
                                   least(cutoff, coalesce(s.ends_at, 'infinity')) AS to_ts) b
        CROSS JOIN LATERAL metering._periods(s.billing_anchor, pl.billing_interval, c.timezone, b.from_ts, b.to_ts) w
        WHERE mode = 'regular' AND s.subscription_id = ANY (subs) AND b.from_ts < b.to_ts
          AND least(w.period_end, coalesce(s.ends_at, 'infinity')) <= cutoff
        UNION ALL
        SELECT s.subscription_id, s.customer_id, s.plan_code, 'regular', greatest(w.period_start, s.starts_at),
               least(w.period_end, coalesce(s.ends_at, 'infinity')), w.period_start, w.period_end,
               least(w.period_end, coalesce(s.ends_at, 'infinity'))
        FROM holes h
        JOIN metering.subscriptions s ON s.subscription_id = h.subscription_id
        JOIN metering.customers c ON c.customer_id = s.customer_id
        JOIN metering.plans pl ON pl.code = s.plan_code
        CROSS JOIN LATERAL metering._regular_billed_to(s.subscription_id) r
        CROSS JOIN LATERAL metering._periods(s.billing_anchor, pl.billing_interval, c.timezone, h.period_start,
                                             h.period_start + interval '1 microsecond') w
        WHERE h.period_start < r.billed_to
        UNION ALL
        SELECT s.subscription_id, s.customer_id, s.plan_code, 'interim', p.period_start, p.period_end,
               p.full_start, p.full_end, as_of + interval '1 microsecond'
        FROM metering.subscriptions s
        JOIN metering.customers c ON c.customer_id = s.customer_id
        JOIN metering.plans pl ON pl.code = s.plan_code
        CROSS JOIN LATERAL metering._cut_periods(s.billing_anchor, pl.billing_interval, c.timezone, s.starts_at,
                                                 coalesce(s.ends_at, 'infinity'), as_of + interval '1 microsecond') p
        WHERE mode = 'interim' AND s.subscription_id = ANY (subs)
          AND p.period_start <= as_of AND as_of < p.period_end
    ),
    late_only AS MATERIALIZED (
        SELECT s.subscription_id, s.customer_id, s.plan_code, 'interim'::text AS kind,
               greatest(p.period_start, s.starts_at) AS period_start, least(p.period_end, s.ends_at) AS period_end,
               p.period_start AS full_start, p.period_end AS full_end, NULL::timestamptz AS usage_to
        FROM metering.subscriptions s
        JOIN metering.customers c ON c.customer_id = s.customer_id
        JOIN metering.plans pl ON pl.code = s.plan_code
        CROSS JOIN LATERAL metering._periods(s.billing_anchor, pl.billing_interval, c.timezone,
                                             s.ends_at - interval '1 microsecond', s.ends_at) p
        WHERE mode = 'regular' AND s.subscription_id = ANY (subs) AND s.ends_at <= cutoff
          AND EXISTS (SELECT 1 FROM metering.late_groups lg WHERE lg.subscription_id = s.subscription_id)
          AND NOT EXISTS (SELECT 1 FROM due d WHERE d.subscription_id = s.subscription_id)
    ),
    invoiced AS (SELECT * FROM due UNION ALL SELECT * FROM late_only),
    -- late usage goes on the subscription's first invoice of this run
    first_invoice AS (
        SELECT i.subscription_id, i.customer_id, i.plan_code, min(i.period_start) AS period_start
        FROM invoiced i GROUP BY i.subscription_id, i.customer_id, i.plan_code
    ),
    -- the events not rolled up yet (their own transaction's included): quantities are
    -- the rolled-up state merged with this tail. The step that began the run left only
    -- what committed since, so the tail is read whole (metering._tail_months); narrowed
    -- to the run's customers, an array of 100,000 of them took seconds to plan.
    tail AS MATERIALIZED (
        SELECT t.* FROM metering._rollup_groups(metering._rolled_up(), NULL) t
    ),
    usage_lines AS MATERIALIZED (
        SELECT d.subscription_id, d.period_start AS invoice_period, d.period_start AS usage_period,
               d.period_end AS usage_period_end, ch.charge_id, ch.meter, ch.pricing, pl.currency, q.quantity
        FROM due d
        JOIN metering.plans pl ON pl.code = d.plan_code
        JOIN metering.charges ch ON ch.plan_code = d.plan_code
        JOIN metering.meters m ON m.code = ch.meter
        LEFT JOIN metering.usage_rollups r ON r.customer_id = d.customer_id
             AND r.meter = ch.meter AND r.period_start = d.period_start
        LEFT JOIN tail t ON t.customer_id = d.customer_id AND t.meter = ch.meter AND t.period_start = d.period_start
        CROSS JOIN LATERAL (
            SELECT coalesce(CASE WHEN d.kind = 'regular' AND m.kind > 0
                                 THEN metering._state_quantity(metering._state_merge(r.state, t.state))
                                 ELSE metering._quantity(m, d.customer_id, d.period_start, d.usage_to) END, 0)
                   AS quantity) q
    ),
    -- invoiced periods whose usage changed: flagged by the rollup step, or in the tail;
    -- with the invoice they go on (joined here once, where both sides' sizes are known:
    -- a nested loop over first_invoice per late period was quadratic)
    late_periods AS MATERIALIZED (
        SELECT f.subscription_id, f.customer_id, f.plan_code, f.period_start AS invoice_period, x.period_start,
               x.meter
        FROM (SELECT lg.subscription_id, lg.period_start, lg.meter FROM metering.late_groups lg
              UNION
              SELECT t.subscription_id, t.period_start, t.meter FROM tail t) x
        JOIN first_invoice f ON f.subscription_id = x.subscription_id
    ),
    late_lines AS MATERIALIZED (
        SELECT lp.subscription_id, lp.invoice_period, lp.period_start AS usage_period,
               ri.period_end AS usage_period_end, ch.charge_id, ch.meter, ch.pricing - 'free_units' AS pricing,
               pl.currency, q.quantity, coalesce(b.quantity, 0) AS billed
        FROM late_periods lp
        JOIN metering.invoices ri ON ri.subscription_id = lp.subscription_id AND ri.kind = 'regular'
             AND ri.status <> 'void' AND ri.period_start = lp.period_start
        JOIN metering.plans pl ON pl.code = lp.plan_code
        JOIN metering.charges ch ON ch.plan_code = lp.plan_code AND ch.meter = lp.meter
        JOIN metering.meters m ON m.code = lp.meter
        LEFT JOIN metering.usage_rollups r ON r.period_start = lp.period_start AND r.customer_id = lp.customer_id
             AND r.meter = lp.meter
        LEFT JOIN tail t ON t.customer_id = lp.customer_id AND t.meter = lp.meter AND t.period_start = lp.period_start
        LEFT JOIN metering.billed_lines b ON b.subscription_id = lp.subscription_id
             AND b.period_start = lp.period_start AND b.charge_id = ch.charge_id
        CROSS JOIN LATERAL (
            SELECT coalesce(CASE WHEN m.kind > 0 THEN metering._state_quantity(metering._state_merge(r.state, t.state))
                                 ELSE metering._quantity(m, lp.customer_id, lp.period_start, ri.period_end) END, 0)
                   AS quantity) q
    ),
    lines AS MATERIALIZED (
        SELECT u.subscription_id, u.invoice_period, 1 AS part, u.charge_id, u.meter, 'usage'::text AS kind,
               'Usage of ' || u.meter AS description, u.usage_period, u.usage_period_end, u.quantity,
               metering._free_units(u.pricing) AS free_units,
               metering._billable_quantity(u.quantity, u.pricing) AS billable_quantity,
               round(metering.rate(u.quantity, u.pricing), metering.currency_exponent(u.currency))
                   - coalesce(b.amount, 0) AS amount,
               u.quantity AS period_quantity
        FROM usage_lines u
        LEFT JOIN metering.billed_lines b ON b.subscription_id = u.subscription_id
             AND b.period_start = u.usage_period AND b.charge_id = u.charge_id
        UNION ALL
        SELECT l.subscription_id, l.invoice_period, 2, l.charge_id, l.meter, 'late_usage',
               'Late usage of ' || l.meter, l.usage_period, l.usage_period_end, l.quantity - l.billed, 0,
               greatest(l.quantity - l.billed, 0),
               round(metering.rate(l.quantity, l.pricing) - metering.rate(l.billed, l.pricing),
                     metering.currency_exponent(l.currency)),
               l.quantity
        FROM late_lines l
        WHERE l.quantity <> l.billed
        UNION ALL
        -- the base fee, in arrears on the regular invoice, prorated for a partial period
        SELECT d.subscription_id, d.period_start, 3, NULL, NULL, 'base_fee', 'Base fee, plan ' || d.plan_code,
               d.period_start, d.period_end, f.fraction, 0, f.fraction,
               round(pl.base_fee * extract(epoch FROM d.period_end - d.period_start)
                     / extract(epoch FROM d.full_end - d.full_start), metering.currency_exponent(pl.currency)),
               NULL
        FROM due d
        JOIN metering.plans pl ON pl.code = d.plan_code
        CROSS JOIN LATERAL (
            SELECT CASE WHEN d.period_start = d.full_start AND d.period_end = d.full_end THEN 1::numeric
                        ELSE round(extract(epoch FROM d.period_end - d.period_start)
                                   / extract(epoch FROM d.full_end - d.full_start), 6) END AS fraction) f
        WHERE d.kind = 'regular'
    ),
    totals AS (
        SELECT l.subscription_id, l.invoice_period, sum(l.amount) AS total FROM lines l GROUP BY 1, 2
    ),
    new_invoices AS (
        INSERT INTO metering.invoices (subscription_id, customer_id, period_start, period_end, kind, status,
                                       currency, total, issued_at, as_of)
        SELECT i.subscription_id, i.customer_id, i.period_start, i.period_end, i.kind,
               CASE WHEN c.auto_issue THEN 'issued' ELSE 'pending_review' END, pl.currency,
               coalesce(t.total, 0), CASE WHEN c.auto_issue THEN now() END, as_of
        FROM invoiced i
        JOIN metering.customers c ON c.customer_id = i.customer_id
        JOIN metering.plans pl ON pl.code = i.plan_code
        LEFT JOIN totals t ON t.subscription_id = i.subscription_id AND t.invoice_period = i.period_start
        ORDER BY i.subscription_id, i.period_start
        RETURNING invoice_id, subscription_id, period_start
    ),
    items AS (
        INSERT INTO metering.invoice_items (invoice_id, item_no, charge_id, meter, kind, description, period_start,
                                            period_end, quantity, free_units, billable_quantity, amount,
                                            period_quantity)
        SELECT n.invoice_id,
               row_number() OVER (PARTITION BY n.invoice_id ORDER BY l.part, l.usage_period, l.charge_id),
               l.charge_id, l.meter, l.kind, l.description, l.usage_period, l.usage_period_end, l.quantity,
               l.free_units, l.billable_quantity, l.amount, l.period_quantity
        FROM lines l
        JOIN new_invoices n ON n.subscription_id = l.subscription_id AND n.period_start = l.invoice_period
    ),
    billed AS (
        INSERT INTO metering.billed_lines AS b (subscription_id, period_start, charge_id, quantity, amount)
        SELECT l.subscription_id, l.usage_period, l.charge_id, l.period_quantity, l.amount
        FROM lines l WHERE l.charge_id IS NOT NULL
        ON CONFLICT (subscription_id, period_start, charge_id) DO UPDATE
            SET quantity = excluded.quantity, amount = b.amount + excluded.amount
    ),
    unflagged AS (
        DELETE FROM metering.late_groups lg WHERE lg.subscription_id IN (SELECT f.subscription_id FROM first_invoice f)
    )
    SELECT count(*) INTO made FROM new_invoices;
    PERFORM metering._internal_change(false);
    RETURN made;
END
$$;

CREATE FUNCTION metering._due_subscriptions(cutoff timestamptz) RETURNS bigint[]
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(s.subscription_id ORDER BY s.subscription_id), '{}')
    FROM metering.subscriptions s
    JOIN metering.customers c ON c.customer_id = s.customer_id
    JOIN metering.plans pl ON pl.code = s.plan_code
    CROSS JOIN LATERAL metering._regular_billed_to(s.subscription_id) r
    CROSS JOIN LATERAL (SELECT greatest(s.starts_at, r.billed_to) AS from_ts,
                               least(cutoff, coalesce(s.ends_at, 'infinity')) AS to_ts) b
    WHERE s.starts_at < cutoff
      AND (b.from_ts < b.to_ts
           AND EXISTS (SELECT 1 FROM metering._periods(s.billing_anchor, pl.billing_interval, c.timezone,
                                                       b.from_ts, b.to_ts) w
                       WHERE least(w.period_end, coalesce(s.ends_at, 'infinity')) <= cutoff)
           OR EXISTS (SELECT 1 FROM metering.invoices v
                      WHERE v.subscription_id = s.subscription_id AND v.kind = 'regular' AND v.status = 'void'
                        AND NOT EXISTS (SELECT 1 FROM metering.invoices i
                                        WHERE i.subscription_id = v.subscription_id AND i.kind = 'regular'
                                          AND i.status <> 'void' AND i.period_start = v.period_start))
           OR (s.ends_at <= cutoff
               AND EXISTS (SELECT 1 FROM metering.late_groups lg WHERE lg.subscription_id = s.subscription_id)))
$$;

COMMENT ON FUNCTION metering._issue_invoices(bigint[], timestamptz, timestamptz, text) IS
    'Internal: issues the regular (or interim) invoices of a set of subscriptions in a handful of statements.';

COMMENT ON FUNCTION metering._due_subscriptions(timestamptz) IS
    'Internal: the subscriptions with a period ended at or before cutoff and not invoiced, or ended with late usage.';

CREATE OR REPLACE FUNCTION metering.close_periods(as_of timestamptz DEFAULT now()) RETURNS int
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz;
    subs bigint[];
    chunk bigint[];
    sub bigint;
    made int := 0;
    code text;
    message text;
    -- subscriptions billed by one statement: its memory and a failure's retries are
    -- bounded by it (docs/design.md, "The close is set-based")
    chunk_size constant int := 2500;
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite timestamp, not %', coalesce(as_of::text, 'NULL')
            USING ERRCODE = '22004';
    END IF;
    IF as_of > now() THEN
        RAISE EXCEPTION 'as_of must not be in the future' USING ERRCODE = '22023',
            DETAIL = format('as_of is %s, now() is %s.', as_of, now()),
            HINT = 'A period is closed once it has ended; usage may still arrive for periods that have not.';
    END IF;
    cutoff := as_of - metering._grace_period();
    -- Roll up what has committed (the rollup lock is kept until the end: the periods are
    -- billed from the state as of this step), then lock the customers to bill (billing
    -- takes turns per customer) and decide again what is due, with a new snapshot.
    PERFORM metering._rollup_step();
    subs := metering._due_subscriptions(cutoff);
    PERFORM 1 FROM metering.customers c
    WHERE c.customer_id IN (SELECT s.customer_id FROM metering.subscriptions s WHERE s.subscription_id = ANY (subs))
    ORDER BY c.customer_id FOR UPDATE;
    -- In subscription order, so invoice numbers follow it as in one statement.
    FOR i IN 1 .. coalesce(array_length(subs, 1), 0) BY chunk_size LOOP
        chunk := subs[i : i + chunk_size - 1];
        BEGIN
            made := made + metering._issue_invoices(chunk, cutoff, as_of, 'regular');
            DELETE FROM metering.billing_failures f WHERE f.subscription_id = ANY (chunk);
            CONTINUE;
        EXCEPTION WHEN OTHERS THEN
            NULL;  -- one subscription of the chunk failed: bill the chunk one at a time, below
        END;
        FOREACH sub IN ARRAY chunk LOOP
            BEGIN
                made := made + metering._issue_invoices(ARRAY[sub], cutoff, as_of, 'regular');
                DELETE FROM metering.billing_failures f WHERE f.subscription_id = sub;
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
                INSERT INTO metering.billing_failures AS f (subscription_id, customer_id, sqlstate, message,
                                                            first_failed_at, last_failed_at, attempts)
                SELECT sub, s.customer_id, code, message, now(), now(), 1 FROM metering.subscriptions s
                WHERE s.subscription_id = sub
                ON CONFLICT (subscription_id) DO UPDATE
                    SET sqlstate = excluded.sqlstate, message = excluded.message,
                        last_failed_at = excluded.last_failed_at, attempts = f.attempts + 1;
            END;
        END LOOP;
    END LOOP;
    UPDATE metering.rollup_state SET closed_at = clock_timestamp(), close_invoices = made;
    RETURN made;
END
$$;

CREATE OR REPLACE FUNCTION metering.bill_now(subscription_id bigint, as_of timestamptz DEFAULT now()) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s metering.subscriptions;
    p record;
    id bigint;
BEGIN
    IF subscription_id IS NULL OR as_of IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', CASE WHEN subscription_id IS NULL THEN 'subscription_id' ELSE 'as_of' END
            USING ERRCODE = '22004';
    END IF;
    SELECT * INTO s FROM metering.subscriptions x WHERE x.subscription_id = bill_now.subscription_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'subscription % does not exist', subscription_id USING ERRCODE = 'MT020';
    END IF;
    IF NOT isfinite(as_of) OR as_of > now() THEN
        RAISE EXCEPTION 'as_of % must be a finite instant not in the future', as_of USING ERRCODE = '22023';
    END IF;
    -- the rollup lock first, then the customer's (the order every biller takes them in)
    PERFORM metering._rollup_step();
    PERFORM 1 FROM metering.customers c WHERE c.customer_id = s.customer_id FOR UPDATE;
    SELECT * INTO s FROM metering.subscriptions x WHERE x.subscription_id = bill_now.subscription_id;
    SELECT sp.* INTO p FROM metering.customers c, metering.plans pl,
           metering._subscription_periods(s, c.timezone, pl.billing_interval, as_of, as_of + interval '1 microsecond') sp
    WHERE c.customer_id = s.customer_id AND pl.code = s.plan_code;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'subscription % is not active at %', subscription_id, as_of USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM metering.invoices i WHERE i.subscription_id = s.subscription_id AND i.kind = 'regular'
               AND i.status <> 'void' AND i.period_start = p.period_start) THEN
        RAISE EXCEPTION 'the period of subscription % from % is already invoiced', subscription_id, p.period_start
            USING ERRCODE = '55000', HINT = 'Late usage of a closed period goes on the next invoice.';
    END IF;
    PERFORM metering._issue_invoices(ARRAY[s.subscription_id], NULL, as_of, 'interim');
    SELECT max(i.invoice_id) INTO id FROM metering.invoices i WHERE i.subscription_id = s.subscription_id;
    RETURN id;
END
$$;

CREATE OR REPLACE FUNCTION metering.subscribe(customer_id text, plan_code text, starts_at timestamptz DEFAULT now(),
        billing_anchor timestamptz DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
    other metering.subscriptions;
BEGIN
    IF customer_id IS NULL OR plan_code IS NULL OR starts_at IS NULL THEN
        RAISE EXCEPTION '% must not be NULL',
            CASE WHEN customer_id IS NULL THEN 'customer_id' WHEN plan_code IS NULL THEN 'plan_code'
                 ELSE 'starts_at' END
            USING ERRCODE = '22004';
    END IF;
    IF NOT isfinite(starts_at) OR NOT isfinite(coalesce(billing_anchor, starts_at)) THEN
        RAISE EXCEPTION '% % is not a finite timestamp',
            CASE WHEN NOT isfinite(starts_at) THEN 'starts_at' ELSE 'billing_anchor' END,
            CASE WHEN NOT isfinite(starts_at) THEN starts_at ELSE billing_anchor END
            USING ERRCODE = 'MT006';
    END IF;
    -- Locks the customer: concurrent subscribes of one customer take turns. The rollup
    -- lock first, as billing takes them (the new subscription regroups the rollups).
    PERFORM 1 FROM metering.rollup_state FOR UPDATE;
    PERFORM 1 FROM metering.customers c WHERE c.customer_id = subscribe.customer_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer_id "%" does not exist', customer_id USING ERRCODE = 'MT001',
            HINT = 'Create it first with metering.create_customer.';
    END IF;
    PERFORM 1 FROM metering.plans p WHERE p.code = subscribe.plan_code;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'plan "%" does not exist', plan_code USING ERRCODE = 'MT018',
            HINT = 'Create it first with metering.create_plan.';
    END IF;
    SELECT * INTO other FROM metering.subscriptions s
    WHERE s.customer_id = subscribe.customer_id
      AND (s.ends_at IS NULL OR s.ends_at > subscribe.starts_at)
    ORDER BY s.starts_at LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'customer_id "%" already has subscription % from % %', customer_id,
            other.subscription_id, other.starts_at,
            CASE WHEN other.ends_at IS NULL THEN 'with no end' ELSE 'until ' || other.ends_at END
            USING ERRCODE = 'MT019',
            HINT = 'A customer''s subscriptions must not overlap (each event is billed once): end the other one first.';
    END IF;
    INSERT INTO metering.subscriptions (customer_id, plan_code, starts_at, billing_anchor)
    VALUES (customer_id, plan_code, starts_at, coalesce(billing_anchor, starts_at))
    RETURNING subscription_id INTO id;
    RETURN id;
END
$$;

CREATE OR REPLACE FUNCTION metering.end_subscription(subscription_id bigint, ends_at timestamptz DEFAULT now())
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s metering.subscriptions;
BEGIN
    IF subscription_id IS NULL OR ends_at IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', CASE WHEN subscription_id IS NULL THEN 'subscription_id' ELSE 'ends_at' END
            USING ERRCODE = '22004';
    END IF;
    SELECT * INTO s FROM metering.subscriptions x WHERE x.subscription_id = end_subscription.subscription_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'subscription % does not exist', subscription_id USING ERRCODE = 'MT020';
    END IF;
    -- The rollup lock and the customer's, as billing takes them: no invoice is being
    -- issued for it while the end moves (the trigger subscriptions_freeze_billed refuses
    -- an end before what is already invoiced).
    PERFORM 1 FROM metering.rollup_state FOR UPDATE;
    PERFORM 1 FROM metering.customers c WHERE c.customer_id = s.customer_id FOR UPDATE;
    SELECT * INTO s FROM metering.subscriptions x WHERE x.subscription_id = end_subscription.subscription_id
        FOR UPDATE;
    IF s.ends_at IS NOT NULL THEN
        RAISE EXCEPTION 'subscription % already ended at %', subscription_id, s.ends_at
            USING ERRCODE = '55000';
    END IF;
    IF NOT isfinite(ends_at) OR ends_at <= s.starts_at THEN
        RAISE EXCEPTION 'ends_at % must be a finite timestamp after starts_at %', ends_at, s.starts_at
            USING ERRCODE = '22023';
    END IF;
    UPDATE metering.subscriptions x SET ends_at = end_subscription.ends_at
    WHERE x.subscription_id = end_subscription.subscription_id;
END
$$;

COMMENT ON FUNCTION metering.close_periods(timestamptz) IS
    'Issues the regular invoice of every subscription period that ended at or before as_of minus '
    'metering.close_grace_period (default 1 hour), set-based over the rolled-up usage; idempotent and safe '
    'to run concurrently with itself and with ingest (schedule it with pg_cron). A subscription that '
    'fails is left out and recorded in metering.billing_errors; the next run retries it. Returns the '
    'number of invoices made.';

COMMENT ON FUNCTION metering.bill_now(bigint, timestamptz) IS
    'Interim invoice: bills the usage due at or before as_of in the open period (what earlier invoices of '
    'the period did not) and the late usage of closed periods; the period''s regular invoice later bills '
    'only the rest. Returns the invoice_id.';

COMMENT ON FUNCTION metering.void_invoice(bigint, text) IS
    'Voids an invoice (final): its usage is unbilled again and goes on the next invoice (a voided regular '
    'invoice is issued anew by close_periods; late usage it billed goes on the next invoice). An interim '
    'invoice whose period has its regular invoice is voided after that one.';

-- The rollups group events by billing period: when what the periods are made of
-- changes (a subscription starts, ends or moves; a time zone or an interval changes,
-- which the freeze allows only for periods not invoiced), the customer's groups after
-- its last invoiced period are rebuilt.
CREATE FUNCTION metering._rollup_regroup() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    customer text;
BEGIN
    IF TG_TABLE_NAME = 'subscriptions' THEN
        IF TG_OP = 'UPDATE' AND (NEW.customer_id, NEW.plan_code, NEW.starts_at, NEW.ends_at, NEW.billing_anchor)
                IS NOT DISTINCT FROM (OLD.customer_id, OLD.plan_code, OLD.starts_at, OLD.ends_at, OLD.billing_anchor) THEN
            RETURN NULL;
        END IF;
        PERFORM metering._rollup_rebuild(NEW.customer_id);
        IF TG_OP = 'UPDATE' AND OLD.customer_id <> NEW.customer_id THEN
            PERFORM metering._rollup_rebuild(OLD.customer_id);
        END IF;
    ELSIF TG_TABLE_NAME = 'customers' THEN
        IF NEW.timezone IS DISTINCT FROM OLD.timezone THEN
            PERFORM metering._rollup_rebuild(NEW.customer_id);
        END IF;
    ELSIF NEW.billing_interval IS DISTINCT FROM OLD.billing_interval THEN  -- plans
        FOR customer IN SELECT DISTINCT s.customer_id FROM metering.subscriptions s WHERE s.plan_code = NEW.code LOOP
            PERFORM metering._rollup_rebuild(customer);
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION metering._rollup_regroup() IS
    'Internal: rebuilds the rollups of the customers whose billing periods changed.';
CREATE TRIGGER subscriptions_regroup AFTER INSERT OR UPDATE ON metering.subscriptions
    FOR EACH ROW EXECUTE FUNCTION metering._rollup_regroup();
CREATE TRIGGER customers_regroup AFTER UPDATE ON metering.customers
    FOR EACH ROW EXECUTE FUNCTION metering._rollup_regroup();
CREATE TRIGGER plans_regroup AFTER UPDATE ON metering.plans
    FOR EACH ROW EXECUTE FUNCTION metering._rollup_regroup();

DROP FUNCTION metering._issue_invoice(metering.subscriptions, timestamptz, timestamptz, timestamptz, timestamptz, text, timestamptz);
ALTER EXTENSION metering DROP TABLE metering.billed_events;  -- and from the tables pg_dump dumps
DROP TABLE metering.billed_events;
REVOKE ALL ON TABLE metering.rollup_state, metering.usage_rollups, metering.billed_lines, metering.late_groups,
    metering.billing_failures, metering.billing_errors FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION
    metering._line_state_merge_trans(internal, bytea),
    metering._state_quantity(bytea),
    metering._state_merge(bytea, bytea),
    metering._period_of(timestamptz, interval, text, timestamptz, timestamptz, timestamptz),
    metering._rollup_subscriptions(),
    metering._rollup_groups(txid_snapshot, txid_snapshot, text[], timestamptz),
    metering._rollup_add(txid_snapshot, txid_snapshot),
    metering._rollup_step(),
    metering.refresh_usage(),
    metering._rollup_rebuild(text),
    metering._issue_invoices(bigint[], timestamptz, timestamptz, text),
    metering._due_subscriptions(timestamptz),
    metering._regular_billed_to(bigint),
    metering._rollup_regroup(),
    metering._quantity(metering.meters, text, timestamptz, timestamptz),
    metering._custom_quantity(text, text, text, timestamptz, timestamptz, jsonb),
    metering._line_state(integer, numeric, text, timestamptz, bigint, text),
    metering._merged_quantity(bytea),
    metering._rolled_up()
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    metering._quantity(metering.meters, text, timestamptz, timestamptz),
    metering._custom_quantity(text, text, text, timestamptz, timestamptz, jsonb),
    metering._line_state(integer, numeric, text, timestamptz, bigint, text),
    metering._merged_quantity(bytea),
    metering._period_of(timestamptz, interval, text, timestamptz, timestamptz, timestamptz),
    metering._rolled_up()
TO PUBLIC;
-- For operators, at a glance: what waits to be rolled up, the last step and close, what
-- waits for review, what failed (docs/reference.md).
CREATE VIEW metering.status AS
SELECT w.events_waiting, w.oldest_waiting_since, r.refreshed_at AS last_rollup_at,
       r.events_consumed AS events_rolled_up, r.closed_at AS last_close_at,
       r.close_invoices AS last_close_invoices,
       (SELECT count(*) FROM metering.invoices i WHERE i.status = 'pending_review') AS invoices_pending_review,
       (SELECT count(*) FROM metering.billing_failures) AS billing_errors,
       coalesce('on for ' || nullif(current_setting('metering.rollup_databases', true), ''), 'off') AS rollup_worker
FROM metering.rollup_state r,
     LATERAL (SELECT count(*) AS events_waiting, min(ev.ingested_at) AS oldest_waiting_since
              FROM metering.events ev
              WHERE ev.txid >= txid_snapshot_xmin(metering._rolled_up())
                AND NOT txid_visible_in_snapshot(ev.txid, metering._rolled_up())) w;
REVOKE ALL ON TABLE metering.status FROM PUBLIC;
COMMENT ON VIEW metering.status IS
    'For operators: events waiting to be rolled up and since when, the last rollup step and how many events '
    'the steps rolled up, the last close_periods and how many invoices it made, invoices pending review, '
    'subscriptions in billing_errors, and whether the rollup worker runs (and for which databases).';

------------------------------------------------------------------------------
-- issue 10: partitioned event store
------------------------------------------------------------------------------
-- metering.events becomes partitioned by due_at month (docs/design.md, "Event store").
-- The table is made anew: its rows move into the month partitions with every column
-- as it was (event_id, ingested_at, txid, ...), the identity goes on from where it
-- was, the grants made on it are given again, and the idempotency keys of the stored
-- events go to metering.idempotency_keys, which keeps them for all time.

-- The old table and its sequence keep the rows until they are moved; from here on
-- they are no longer the extension's (nor dumped with it).
ALTER TABLE metering.events RENAME TO events_0_1;
ALTER TABLE metering.events_0_1 RENAME CONSTRAINT events_op_check TO events_0_1_op_check;
ALTER SEQUENCE metering.events_event_id_seq RENAME TO events_0_1_event_id_seq;
ALTER EXTENSION metering DROP TABLE metering.events_0_1;
ALTER EXTENSION metering DROP SEQUENCE metering.events_0_1_event_id_seq;

CREATE TABLE metering.events (
    event_id        bigint GENERATED ALWAYS AS IDENTITY,
    customer_id     text COLLATE "C" NOT NULL,
    meter           text COLLATE "C" NOT NULL,
    value           numeric NOT NULL,
    occurred_at     timestamptz NOT NULL,
    -- 'infinity': not given. Rows are routed to their partition before any trigger
    -- runs, so a row without due_at lands in events_undated, whose trigger stores it
    -- in the month of its occurred_at.
    due_at          timestamptz NOT NULL DEFAULT 'infinity',
    ingested_at     timestamptz NOT NULL DEFAULT now(),
    idempotency_key text COLLATE "C",
    properties      jsonb NOT NULL DEFAULT '{}',
    op              text CHECK (op IN ('increment', 'set')),
    txid            bigint NOT NULL DEFAULT txid_current()
) PARTITION BY RANGE (due_at);
-- One partition per calendar month (UTC), metering.events_YYYY_MM, created on demand
-- by metering._create_event_partition with the primary key (customer_id, meter,
-- due_at, event_id) and the index on txid. The parent has no index of its own:
-- pg_dump dumps the partitions (created at run time, not members of the extension)
-- with their indexes, which a partitioned index would already have made on restore.
COMMENT ON TABLE metering.events IS
    'Usage events, append-only, partitioned by due_at month (UTC). Insert through metering.ingest, '
    'metering.ingest_batch, metering.events_import or COPY (customer_id, meter, value, occurred_at, '
    'idempotency_key, properties, due_at); every path applies the same validation and dedup rules.';
COMMENT ON COLUMN metering.events.due_at IS
    'Decides the billing period of the event; defaults to occurred_at.';
COMMENT ON COLUMN metering.events.txid IS
    'The inserting (top-level) transaction, as txid_current(): the rollup step consumes an event once its '
    'transaction is visible in the step''s snapshot (docs/design.md, "Rollups").';
COMMENT ON COLUMN metering.events.op IS
    'Counter operation (increment or set) for events of counter meters; NULL otherwise.';
-- Where a row inserted without due_at lands: the trigger stores it in its month and
-- skips it here, so this partition never holds a row.
CREATE TABLE metering.events_undated PARTITION OF metering.events
    (CONSTRAINT events_undated_holds_nothing CHECK (false))
    FOR VALUES FROM ('infinity') TO (MAXVALUE);
COMMENT ON TABLE metering.events_undated IS
    'Where a row inserted into metering.events without due_at lands; its trigger stores the row in the '
    'partition of its month instead. Never holds a row.';

-- Idempotency keys for all time, apart from the events so that dropping an old
-- partition (metering.drop_events_before) never admits a duplicate again. A key
-- keeps what a repeat is compared with: meter, value, counter operation and
-- instants exactly, the properties as a hash (metering._properties_hash).
CREATE TABLE metering.idempotency_keys (
    event_id        bigint NOT NULL,
    due_at          timestamptz NOT NULL,
    occurred_at     timestamptz NOT NULL,
    properties_hash bigint NOT NULL,
    -- occurred_at was the ingesting transaction's now() and due_at took it: a retry
    -- that lets them default as well differs only in the clock
    times_defaulted boolean NOT NULL,
    customer_id     text COLLATE "C" NOT NULL,
    idempotency_key text COLLATE "C" NOT NULL,
    meter           text COLLATE "C" NOT NULL,
    value           numeric NOT NULL,
    op              text CHECK (op IN ('increment', 'set')),
    PRIMARY KEY (customer_id, idempotency_key)
);
COMMENT ON TABLE metering.idempotency_keys IS
    'Every idempotency key ever used, with what a repeat is compared with (kept when the event''s partition '
    'is dropped): a repeat with the same payload returns event_id, another payload is refused (MT011).';

SELECT pg_catalog.pg_extension_config_dump('metering.events', '');
SELECT pg_catalog.pg_extension_config_dump('metering.events_event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('metering.idempotency_keys', '');

-- Where the events not rolled up yet are: every (sub)transaction that stores events writes
-- one row per month it wrote to: its transaction id and the first heap block it wrote
-- in that month's partition (an index of the access method metering_writes on each month
-- logs it, whatever path inserts the rows). The rollup step and every read of the
-- tail find the transactions their snapshot did not see here, and read each month from
-- the lowest such block on (a TID range scan) instead of keeping an index on events.txid
-- (11 % of the bulk path, docs/design.md "Rollups"). A row counts only while its
-- partition keeps the file it was written in (filenode): VACUUM FULL or CLUSTER move
-- rows, and the month is then read whole. The step deletes the rows it consumed. Not
-- dumped: the restored rows are written anew, by the restoring transaction.
CREATE TABLE metering.event_writes (
    txid        bigint NOT NULL,
    partition   regclass NOT NULL,
    filenode    oid NOT NULL,
    due_from    timestamptz NOT NULL,
    due_to      timestamptz NOT NULL,
    first_block bigint NOT NULL
);
-- The reads ask for the transactions after a snapshot's xmin: the recent rows only.
CREATE INDEX event_writes_txid ON metering.event_writes (txid);
COMMENT ON TABLE metering.event_writes IS
    'Internal: per statement and month written, the inserting transaction and the first heap block it wrote '
    '(the rollup step and the reads of the tail start there); deleted once rolled up.';
-- The index of each month that writes the log: it stores nothing, and its insert callback
-- is told the block of every row inserted into the month (src/ingest/writes.cpp).
CREATE FUNCTION metering._writes_am_handler(internal) RETURNS index_am_handler
    AS 'MODULE_PATHNAME', 'metering_writes_handler'
    LANGUAGE C;
COMMENT ON FUNCTION metering._writes_am_handler(internal) IS
    'Internal: handler of the index access method metering_writes (the months of metering.events).';
CREATE ACCESS METHOD metering_writes TYPE INDEX HANDLER metering._writes_am_handler;
COMMENT ON ACCESS METHOD metering_writes IS
    'Index access method of the months of metering.events: holds nothing, logs in metering.event_writes '
    'the first block each (sub)transaction writes in the month.';
CREATE OPERATOR CLASS metering._writes_ops DEFAULT FOR TYPE bigint USING metering_writes AS STORAGE bigint;
COMMENT ON OPERATOR CLASS metering._writes_ops USING metering_writes IS
    'Internal: the column a metering_writes index is declared on (events.txid); it reads none.';

-- The months holding events whose transaction is visible in cur (NULL: to the caller)
-- and not in prev, each with the first heap block to read from: the lowest block those
-- transactions wrote there (metering.event_writes), or the first when the partition was
-- rewritten since (VACUUM FULL, CLUSTER). The tail of a month is then read by a TID
-- range scan from that block (docs/design.md, "Rollups"). The views read the same
-- through metering._unrolled_months (with their owner's rights: their readers have
-- none on the log).
CREATE FUNCTION metering._tail_months(prev txid_snapshot, cur txid_snapshot)
    RETURNS TABLE(due_from timestamptz, due_to timestamptz, first_tid tid, whole boolean)
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    ROWS 2
AS $$
    SELECT m.due_from, m.due_to, format('(%s,0)', m.first_block)::tid,
           m.first_block * 2 <= pg_relation_size(m.partition) / current_setting('block_size')::bigint
    FROM (SELECT w.partition, w.due_from, w.due_to,
                 CASE WHEN bool_and(w.filenode = pg_relation_filenode(w.partition)) THEN min(w.first_block) ELSE 0 END
                     AS first_block
          FROM metering.event_writes w
          WHERE w.txid >= txid_snapshot_xmin(prev) AND NOT txid_visible_in_snapshot(w.txid, prev)
            AND (cur IS NULL OR txid_visible_in_snapshot(w.txid, cur))
          GROUP BY w.partition, w.due_from, w.due_to) m
$$;
COMMENT ON FUNCTION metering._tail_months(txid_snapshot, txid_snapshot) IS
    'Internal: the months holding events of transactions visible in cur (NULL: to the caller) and not in prev, '
    'with the first block to read (metering.event_writes).';

-- The months of the tail the reads merge with the rollups: _tail_months(_rolled_up(), NULL).
CREATE VIEW metering._unrolled_months AS
SELECT t.due_from, t.due_to, t.first_tid
FROM (SELECT array_agg(g.due_from) AS froms, array_agg(g.due_to) AS tos, array_agg(g.first_tid) AS tids
      FROM (SELECT w.due_from, w.due_to,
                   CASE WHEN bool_and(w.filenode = pg_relation_filenode(w.partition))
                        THEN format('(%s,0)', min(w.first_block))::tid ELSE '(0,0)'::tid END AS first_tid
            FROM metering.event_writes w
            WHERE w.txid >= txid_snapshot_xmin(metering._rolled_up())
              AND NOT txid_visible_in_snapshot(w.txid, metering._rolled_up())
            GROUP BY w.partition, w.due_from, w.due_to) g) a
CROSS JOIN LATERAL unnest(a.froms, a.tos, a.tids) AS t(due_from, due_to, first_tid);
COMMENT ON VIEW metering._unrolled_months IS
    'Internal: the months holding events not rolled up yet, with the first block to read.';

CREATE TRIGGER events_validate BEFORE INSERT ON metering.events
    FOR EACH ROW EXECUTE FUNCTION metering._event_before_insert();
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON metering.events
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'events are append-only', 'Record a correction as a new event.');

-- Partitions, made on demand, and retention
CREATE OR REPLACE FUNCTION metering._create_event_partition(at timestamptz) RETURNS regclass
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lower timestamptz;
    upper timestamptz;
    name text;
    existing regclass;
BEGIN
    IF at IS NULL OR NOT isfinite(at) THEN
        RAISE EXCEPTION 'a partition of metering.events needs a finite instant, not %', coalesce(at::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    BEGIN
        lower := date_trunc('month', at, 'UTC');
    EXCEPTION WHEN datetime_field_overflow THEN
        lower := '-infinity';  -- the first month Postgres has begins before its first instant
    END;
    BEGIN  -- months counted in UTC, whatever the session's time zone
        upper := (date_trunc('month', at AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    EXCEPTION WHEN datetime_field_overflow THEN
        upper := 'infinity';  -- the last month Postgres has
    END;
    name := 'events_' || to_char(at AT TIME ZONE 'UTC', 'YYYY_MM')
            || CASE WHEN at < '0001-01-01 00:00:00+00' THEN '_bc' ELSE '' END;
    -- Creators take turns; the one that waited finds the partition made.
    LOCK TABLE ONLY metering.events IN SHARE UPDATE EXCLUSIVE MODE;
    SELECT i.inhrelid::regclass INTO existing FROM pg_inherits i
    WHERE i.inhparent = 'metering.events'::regclass AND i.inhrelid = to_regclass('metering.' || quote_ident(name));
    IF existing IS NOT NULL THEN
        RETURN existing;
    END IF;
    EXECUTE format('CREATE TABLE metering.%I (LIKE metering.events INCLUDING CONSTRAINTS INCLUDING STORAGE '
                   'INCLUDING COMPRESSION)', name);
    EXECUTE format('ALTER TABLE metering.%I ADD CONSTRAINT %I PRIMARY KEY (customer_id, meter, due_at, event_id)',
                   name, name || '_pkey');
    -- No index on txid: the rollup step finds new events by metering.event_writes, which
    -- the month's metering_writes index (below) writes.
    EXECUTE format('COMMENT ON TABLE metering.%I IS %L', name,
                   format('Events due in %s (UTC): a partition of metering.events, made on demand.',
                          to_char(at AT TIME ZONE 'UTC', 'YYYY-MM')));
    EXECUTE format('ALTER TABLE metering.events ATTACH PARTITION metering.%I FOR VALUES FROM (%L) TO (%L)',
                   name, lower, upper);
    -- Once a month of metering.events (the access method serves nothing else).
    EXECUTE format('CREATE INDEX %I ON metering.%I USING metering_writes (txid)', name || '_writes', name);
    RETURN format('metering.%I', name)::regclass;
END
$$;
COMMENT ON FUNCTION metering._create_event_partition(timestamptz) IS
    'Internal: makes the partition of metering.events for the month (UTC) of an instant, unless there is one.';

CREATE OR REPLACE FUNCTION metering.create_event_partitions(from_ts timestamptz, to_ts timestamptz) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    month timestamptz;
    made integer := 0;
    before integer;
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', CASE WHEN from_ts IS NULL THEN 'from_ts' ELSE 'to_ts' END
            USING ERRCODE = '22004';
    END IF;
    IF NOT isfinite(from_ts) OR NOT isfinite(to_ts) OR from_ts > to_ts THEN
        RAISE EXCEPTION 'create_event_partitions: from_ts % to to_ts % is not a finite range', from_ts, to_ts
            USING ERRCODE = '22023';
    END IF;
    IF to_ts > from_ts + interval '100 years' THEN
        RAISE EXCEPTION 'create_event_partitions: from_ts % to to_ts % spans more than 100 years', from_ts, to_ts
            USING ERRCODE = '22023', HINT = 'Partitions are made on demand; make ahead only the months to come.';
    END IF;
    IF from_ts < metering._retention_horizon() THEN
        RAISE EXCEPTION 'create_event_partitions: from_ts % is before %, before which the events were dropped',
            from_ts, metering._retention_horizon() USING ERRCODE = 'MT024';
    END IF;
    month := date_trunc('month', from_ts, 'UTC');
    WHILE month < to_ts LOOP
        SELECT count(*) INTO before FROM pg_inherits WHERE inhparent = 'metering.events'::regclass;
        PERFORM metering._create_event_partition(month);
        made := made + (SELECT count(*) FROM pg_inherits WHERE inhparent = 'metering.events'::regclass) - before;
        month := (month AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC';
    END LOOP;
    RETURN made;
END
$$;
COMMENT ON FUNCTION metering.create_event_partitions(timestamptz, timestamptz) IS
    'Makes the partitions of metering.events for the months (UTC) from from_ts to to_ts ahead of their '
    'events, and returns how many it made (ingest makes a missing one itself; COPY into metering.events '
    'with an explicit due_at needs it made first).';

CREATE OR REPLACE FUNCTION metering._retention_horizon() RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'metering_retention_horizon'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION metering._retention_horizon() IS
    'Internal: the instant before which retention dropped the events (-infinity: none were dropped).';

CREATE OR REPLACE FUNCTION metering._properties_hash(properties jsonb) RETURNS bigint
    AS 'MODULE_PATHNAME', 'metering_properties_hash'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION metering._properties_hash(jsonb) IS
    'Internal: the fingerprint of an event''s properties kept with its idempotency key (equal for '
    'jsonb-equal values).';

CREATE OR REPLACE FUNCTION metering._event_partitions()
    RETURNS TABLE(partition regclass, from_ts timestamptz, to_ts timestamptz)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.oid::regclass,
           CASE WHEN b[1] = 'MINVALUE' THEN '-infinity' ELSE btrim(b[1], '''')::timestamptz END,
           CASE WHEN b[2] = 'MAXVALUE' THEN 'infinity' ELSE btrim(b[2], '''')::timestamptz END
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), '^FOR VALUES FROM \((.*)\) TO \((.*)\)$') b
    WHERE i.inhparent = 'metering.events'::regclass
$$;
COMMENT ON FUNCTION metering._event_partitions() IS
    'Internal: the partitions of metering.events with the range of due_at each holds.';

-- What later reads need of the months retention dropped, per customer and meter:
-- a counter's value at the horizon (standing for a set at its last dropped
-- operation: counter_value goes on from it) and a time_weighted gauge's last point
-- before it (the value it holds into the first period after the horizon).
CREATE TABLE metering.retained_values (
    customer_id text COLLATE "C" NOT NULL,
    meter       text COLLATE "C" NOT NULL,
    value       numeric NOT NULL,
    due_at      timestamptz NOT NULL,
    occurred_at timestamptz NOT NULL,
    event_id    bigint NOT NULL,
    PRIMARY KEY (customer_id, meter)
);
COMMENT ON TABLE metering.retained_values IS
    'What the months dropped by retention leave for later reads: per customer, a counter''s value at the '
    'horizon (as a set at its last dropped operation) and a time_weighted gauge''s last point before it.';
SELECT pg_catalog.pg_extension_config_dump('metering.retained_values', '');

CREATE OR REPLACE FUNCTION metering.drop_events_before(before timestamptz) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts regclass[];
    part regclass;
    months integer;
    open_line record;
BEGIN
    IF before IS NULL THEN
        RAISE EXCEPTION 'before must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF NOT isfinite(before) OR before <> date_trunc('month', before, 'UTC') THEN
        RAISE EXCEPTION 'drop_events_before: % is not the first instant of a month (UTC)', before
            USING ERRCODE = '22023', HINT = 'The partitions hold calendar months of due_at in UTC.';
    END IF;
    IF before > date_trunc('month', now(), 'UTC') THEN
        RAISE EXCEPTION 'drop_events_before: % is after the start of this month', before
            USING ERRCODE = '22023', HINT = 'Only past months can be billed for good.';
    END IF;
    IF before <= metering._retention_horizon() THEN
        RETURN 0;  -- dropped already
    END IF;
    -- Every committed event rolled up; the step's lock is kept to the end, so no close
    -- and no other step runs meanwhile.
    PERFORM metering._rollup_step();
    IF EXISTS (SELECT FROM metering._event_partitions() p WHERE p.from_ts < before AND p.to_ts > before) THEN
        RAISE EXCEPTION 'drop_events_before: a partition of metering.events holds events due before and after %',
            before USING ERRCODE = '55000';
    END IF;
    SELECT array_agg(p.partition ORDER BY p.from_ts),
           count(*) FILTER (WHERE p.partition::text <> 'metering.events_retired')
    INTO parts, months
    FROM metering._event_partitions() p WHERE p.to_ts <= before;
    -- No event can be added to those months any more (an insert in progress is waited
    -- for), and whatever committed into them meanwhile is rolled up too.
    FOREACH part IN ARRAY coalesce(parts, '{}') LOOP
        EXECUTE format('LOCK TABLE %s IN SHARE MODE', part);
    END LOOP;
    PERFORM metering._rollup_step();
    -- Every billing period that began before `before` and has usage is invoiced by a
    -- live regular invoice, with no late usage waiting for the next one: what was billed
    -- is final, and reads of those periods come from the rollups.
    SELECT u.subscription_id, u.period_start, u.meter INTO open_line
    FROM metering.usage_rollups u
    WHERE u.period_start < before
      AND (NOT EXISTS (SELECT FROM metering.invoices i
                       WHERE i.subscription_id = u.subscription_id AND i.kind = 'regular'
                         AND i.status <> 'void' AND i.period_start = u.period_start)
           OR EXISTS (SELECT FROM metering.late_groups l
                      WHERE l.subscription_id = u.subscription_id AND l.period_start = u.period_start
                        AND l.meter = u.meter))
    ORDER BY u.period_start LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'drop_events_before: the usage of meter "%" in the period of subscription % from % is not billed for good',
            open_line.meter, open_line.subscription_id, open_line.period_start
            USING ERRCODE = '55000',
                  HINT = 'Close the periods first (metering.close_periods): retention drops only invoiced months.';
    END IF;
    -- Custom and time_weighted quantities are read from the events: a period of theirs
    -- must not lose part of its events (a late event in its other part would be billed
    -- against what is left).
    SELECT s.subscription_id, g.period_start, m.code AS meter, m.aggregation INTO open_line
    FROM metering.subscriptions s
    JOIN metering.customers c ON c.customer_id = s.customer_id
    JOIN metering.plans pl ON pl.code = s.plan_code
    JOIN metering.charges ch ON ch.plan_code = s.plan_code
    JOIN metering.meters m ON m.code = ch.meter AND m.kind = 0
    CROSS JOIN LATERAL (SELECT metering._period_of(s.billing_anchor, pl.billing_interval, c.timezone,
                                                   s.starts_at, s.ends_at, before) AS period_start) g
    WHERE g.period_start < before
      AND EXISTS (SELECT FROM metering.events e
                  WHERE e.customer_id = s.customer_id AND e.meter = m.code
                    AND e.due_at >= g.period_start AND e.due_at < before)
    ORDER BY s.subscription_id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'drop_events_before: the period of subscription % from % reaches across %, and its % meter "%" is read from the events',
            open_line.subscription_id, open_line.period_start, before, open_line.aggregation, open_line.meter
            USING ERRCODE = '55000', HINT = 'Drop the months before the start of that period instead.';
    END IF;
    -- What later reads need: each counter's value at `before`, each gauge's last point.
    WITH dropped AS (
        SELECT e.customer_id, e.meter, e.op, e.value, e.due_at, e.event_id
        FROM metering.events e JOIN metering.meters m ON m.code = e.meter AND m.aggregation = 'counter'
        WHERE e.due_at < before
    ),
    last_set AS (
        SELECT DISTINCT ON (d.customer_id, d.meter) d.customer_id, d.meter, d.due_at, d.event_id
        FROM dropped d WHERE d.op = 'set' ORDER BY d.customer_id, d.meter, d.due_at DESC, d.event_id DESC
    ),
    counters AS (
        SELECT d.customer_id, d.meter, bool_or(ls.event_id IS NOT NULL) AS has_set,
               coalesce(sum(d.value) FILTER (WHERE ls.event_id IS NULL
                                                OR (d.due_at, d.event_id) >= (ls.due_at, ls.event_id)), 0) AS since_set,
               (array_agg(d.due_at ORDER BY d.due_at DESC, d.event_id DESC))[1] AS due_at,
               (array_agg(d.event_id ORDER BY d.due_at DESC, d.event_id DESC))[1] AS event_id
        FROM dropped d LEFT JOIN last_set ls ON ls.customer_id = d.customer_id AND ls.meter = d.meter
        GROUP BY d.customer_id, d.meter
    )
    INSERT INTO metering.retained_values AS r (customer_id, meter, value, due_at, occurred_at, event_id)
    SELECT c.customer_id, c.meter,
           c.since_set + CASE WHEN c.has_set THEN 0
                              ELSE coalesce((SELECT o.value FROM metering.retained_values o
                                             WHERE o.customer_id = c.customer_id AND o.meter = c.meter), 0) END,
           c.due_at, c.due_at, c.event_id
    FROM counters c
    ON CONFLICT (customer_id, meter) DO UPDATE
        SET value = excluded.value, due_at = excluded.due_at, occurred_at = excluded.occurred_at,
            event_id = excluded.event_id;
    INSERT INTO metering.retained_values AS r (customer_id, meter, value, due_at, occurred_at, event_id)
    SELECT DISTINCT ON (e.customer_id, e.meter) e.customer_id, e.meter,
           CASE WHEN m.value_property IS NULL THEN e.value ELSE (e.properties ->> m.value_property)::numeric END,
           e.due_at, e.occurred_at, e.event_id
    FROM metering.events e JOIN metering.meters m ON m.code = e.meter AND m.aggregation = 'time_weighted'
    WHERE e.due_at < before AND (m.filter IS NULL OR e.properties @> m.filter)
    ORDER BY e.customer_id, e.meter, e.due_at DESC, e.event_id DESC
    ON CONFLICT (customer_id, meter) DO UPDATE
        SET value = excluded.value, due_at = excluded.due_at, occurred_at = excluded.occurred_at,
            event_id = excluded.event_id;
    -- The months go; events_retired stands for them, so that an event due before
    -- `before` is refused (after dedup: its key may be a dropped event's).
    FOREACH part IN ARRAY coalesce(parts, '{}') LOOP
        EXECUTE format('DROP TABLE %s', part);
    END LOOP;
    EXECUTE 'CREATE TABLE metering.events_retired (LIKE metering.events INCLUDING CONSTRAINTS INCLUDING STORAGE '
            'INCLUDING COMPRESSION, CONSTRAINT events_retired_holds_nothing CHECK (false))';
    EXECUTE format('COMMENT ON TABLE metering.events_retired IS %L',
                   format('Stands for the months before %s, which metering.drop_events_before dropped: '
                          'an event due then is refused. Never holds a row.', before));
    EXECUTE format('ALTER TABLE metering.events ATTACH PARTITION metering.events_retired '
                   'FOR VALUES FROM (MINVALUE) TO (%L)', before);
    RETURN months;
END
$$;
COMMENT ON FUNCTION metering.drop_events_before(timestamptz) IS
    'Retention: drops the partitions of metering.events for the months before `before` (first instant of a '
    'month, UTC) once every billing period that began before it is invoiced for good; returns how many months '
    'it dropped. Idempotency keys are kept for all time; events due before it are refused from then on.';

REVOKE ALL ON TABLE metering.events, metering.events_undated, metering.idempotency_keys, metering.retained_values,
    metering.event_writes, metering._unrolled_months
    FROM PUBLIC;
REVOKE ALL ON SEQUENCE metering.events_event_id_seq FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION
    metering._tail_months(txid_snapshot, txid_snapshot),
    metering._writes_am_handler(internal),
    metering._create_event_partition(timestamptz),
    metering.create_event_partitions(timestamptz, timestamptz),
    metering._properties_hash(jsonb),
    metering._event_partitions(),
    metering.drop_events_before(timestamptz),
    metering._retention_horizon()
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION metering._retention_horizon() TO PUBLIC;

-- The rows, month by month, without the row trigger (which would make their txid this
-- transaction's: the rollup step is to find them as consumed as they were). The
-- partitions are made as at run time and are not the extension's: pg_dump dumps them.
DO $$
DECLARE
    month timestamptz;
    part regclass;
    replication_role text := current_setting('session_replication_role');
BEGIN
    FOR month IN SELECT DISTINCT date_trunc('month', e.due_at, 'UTC') FROM metering.events_0_1 e LOOP
        part := metering._create_event_partition(month);
        EXECUTE format('ALTER EXTENSION metering DROP TABLE %s', part);
    END LOOP;
    PERFORM set_config('session_replication_role', 'replica', true);
    INSERT INTO metering.events (event_id, customer_id, meter, value, occurred_at, due_at, ingested_at,
                                 idempotency_key, properties, op, txid)
    OVERRIDING SYSTEM VALUE
    SELECT e.event_id, e.customer_id, e.meter, e.value, e.occurred_at, e.due_at, e.ingested_at,
           e.idempotency_key, e.properties, e.op, e.txid
    FROM metering.events_0_1 e ORDER BY e.due_at, e.event_id;
    PERFORM set_config('session_replication_role', replication_role, true);
    INSERT INTO metering.idempotency_keys (event_id, due_at, occurred_at, properties_hash, times_defaulted,
                                           customer_id, idempotency_key, meter, value, op)
    SELECT e.event_id, e.due_at, e.occurred_at, metering._properties_hash(e.properties),
           e.occurred_at = e.ingested_at AND e.due_at = e.occurred_at,
           e.customer_id, e.idempotency_key, e.meter, e.value, e.op
    FROM metering.events_0_1 e WHERE e.idempotency_key IS NOT NULL;
    PERFORM setval('metering.events_event_id_seq', s.last_value, s.is_called)
    FROM metering.events_0_1_event_id_seq s;
END
$$;

-- Grants made on the old table (a reporter's SELECT, a loader's INSERT, on the table or
-- its columns) are made on the new one; they stay grants of their own, not the
-- extension's (pg_init_privs keeps what a fresh install has).
DO $$
DECLARE
    initial aclitem[];
    g record;
BEGIN
    SELECT ip.initprivs INTO initial FROM pg_init_privs ip
    WHERE ip.classoid = 'pg_class'::regclass AND ip.objoid = 'metering.events'::regclass AND ip.objsubid = 0;
    FOR g IN
        SELECT a.privilege_type, a.grantee, a.is_grantable, NULL::name AS column_name
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = 'metering.events_0_1'::regclass AND a.grantee <> c.relowner
        UNION ALL
        SELECT a.privilege_type, a.grantee, a.is_grantable, att.attname
        FROM pg_attribute att, aclexplode(att.attacl) a
        WHERE att.attrelid = 'metering.events_0_1'::regclass AND att.attnum > 0 AND NOT att.attisdropped
    LOOP
        EXECUTE format('GRANT %s%s ON metering.events TO %s%s', g.privilege_type,
                       CASE WHEN g.column_name IS NULL THEN '' ELSE format(' (%I)', g.column_name) END,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.grantee::regrole::text) END,
                       CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    UPDATE pg_init_privs ip SET initprivs = initial
    WHERE ip.classoid = 'pg_class'::regclass AND ip.objoid = 'metering.events'::regclass AND ip.objsubid = 0;
    DELETE FROM pg_init_privs ip
    WHERE ip.classoid = 'pg_class'::regclass AND ip.objoid = 'metering.events'::regclass AND ip.objsubid > 0;
END
$$;

-- Reads and corrections after retention (what the views and functions below call)
CREATE OR REPLACE FUNCTION metering._billed_quantity(subscription_id bigint, period_start timestamptz, charge_id bigint)
    RETURNS numeric
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT b.quantity FROM metering.billed_lines b
            WHERE b.subscription_id = _billed_quantity.subscription_id
              AND b.period_start = _billed_quantity.period_start AND b.charge_id = _billed_quantity.charge_id);
END
$$;
COMMENT ON FUNCTION metering._billed_quantity(bigint, timestamptz, bigint) IS
    'Internal: the period quantity the live invoice lines of a subscription period and charge billed.';
REVOKE EXECUTE ON FUNCTION metering._billed_quantity(bigint, timestamptz, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION metering._billed_quantity(bigint, timestamptz, bigint) TO PUBLIC;

-- What reads the events reads the new table.
CREATE OR REPLACE VIEW metering._usage_quantities AS
SELECT l.subscription_id, l.customer_id, l.period_start, l.period_end, l.charge_id, l.meter,
       l.pricing, l.currency,
       CASE WHEN l.k > 0 THEN q.quantity
            -- a period before the retention horizon lost its events: what was billed stands
            WHEN l.period_start < (SELECT metering._retention_horizon())
            THEN metering._billed_quantity(l.subscription_id, l.period_start, l.charge_id)
            ELSE metering._quantity(l.meter_row, l.customer_id, l.period_start, l.period_end) END AS quantity
FROM metering._usage_lines l
LEFT JOIN (
    SELECT parts.customer_id, parts.meter, parts.period_start, metering._merged_quantity(parts.state) AS quantity
    FROM (
        SELECT r.customer_id, r.meter, r.period_start, r.state
        FROM metering.usage_rollups r
        UNION ALL
        SELECT ev.customer_id, ev.meter,
               metering._period_of(s.billing_anchor, pl.billing_interval, c.timezone, s.starts_at, s.ends_at,
                                   ev.due_at) AS period_start,
               metering._line_state(
                   m.kind,
                   CASE WHEN m.kind IN (1, 5) THEN NULL
                        WHEN m.value_property IS NULL OR m.kind = 7 THEN ev.value
                        ELSE (ev.properties ->> m.value_property)::numeric END,
                   CASE WHEN m.kind = 5 THEN CASE WHEN m.value_property IS NULL THEN ev.value::text
                                                  ELSE ev.properties ->> m.value_property END END,
                   ev.occurred_at, ev.event_id, ev.op)
        FROM metering._unrolled_months t
        CROSS JOIN LATERAL (SELECT e.* FROM metering.events e
                            WHERE e.due_at >= t.due_from AND e.due_at < t.due_to AND e.ctid >= t.first_tid
                              AND e.ctid <= '(4294967295,65535)'
                            OFFSET 0) ev
        JOIN metering.subscriptions s ON s.customer_id = ev.customer_id AND s.starts_at <= ev.due_at
             AND (s.ends_at IS NULL OR ev.due_at < s.ends_at)
        JOIN metering.customers c ON c.customer_id = s.customer_id
        JOIN metering.plans pl ON pl.code = s.plan_code
        JOIN metering.meters m ON m.code = ev.meter
        WHERE m.kind > 0
          AND (m.filter IS NULL OR ev.properties @> m.filter)
          AND ev.txid >= txid_snapshot_xmin(metering._rolled_up())
          AND NOT txid_visible_in_snapshot(ev.txid, metering._rolled_up())
        GROUP BY 1, 2, 3
    ) parts
    GROUP BY parts.customer_id, parts.meter, parts.period_start
) q ON q.customer_id = l.customer_id AND q.meter = l.meter AND q.period_start = l.period_start;
CREATE OR REPLACE VIEW metering.status AS
SELECT w.events_waiting, w.oldest_waiting_since, r.refreshed_at AS last_rollup_at,
       r.events_consumed AS events_rolled_up, r.closed_at AS last_close_at,
       r.close_invoices AS last_close_invoices,
       (SELECT count(*) FROM metering.invoices i WHERE i.status = 'pending_review') AS invoices_pending_review,
       (SELECT count(*) FROM metering.billing_failures) AS billing_errors,
       coalesce('on for ' || nullif(current_setting('metering.rollup_databases', true), ''), 'off') AS rollup_worker
FROM metering.rollup_state r,
     LATERAL (SELECT count(*) AS events_waiting, min(ev.ingested_at) AS oldest_waiting_since
              FROM metering._unrolled_months t
              CROSS JOIN LATERAL (SELECT e.* FROM metering.events e
                                  WHERE e.due_at >= t.due_from AND e.due_at < t.due_to
                                    AND e.ctid >= t.first_tid AND e.ctid <= '(4294967295,65535)' OFFSET 0) ev
              WHERE ev.txid >= txid_snapshot_xmin(metering._rolled_up())
                AND NOT txid_visible_in_snapshot(ev.txid, metering._rolled_up())) w;
DROP TABLE metering.events_0_1;

CREATE OR REPLACE FUNCTION metering._quantity(m metering.meters, customer_id text, from_ts timestamptz, to_ts timestamptz)
    RETURNS numeric
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    -- Generic plans: the months of metering.events are pruned when a plan runs, whereas
    -- a custom plan is made anew at every call, over every month (1 ms with 24 months).
    SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    result numeric;
BEGIN
    IF m.aggregation = 'custom' THEN
        -- The stored expression, never the one in the row passed: it is Postgres's
        -- deparse of a checked aggregate (create_meter), not text as an admin typed it.
        -- _custom_quantity checks it again and runs the tree it checked.
        SELECT x.expression INTO STRICT m.expression FROM metering.meters x WHERE x.code = m.code;
        RETURN metering._custom_quantity(m.code, m.expression, customer_id, from_ts, to_ts, m.filter);
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
          AND (m.filter IS NULL OR ev.properties @> m.filter))
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
                     -- (the last point of the months retention dropped when none is kept)
                     (SELECT l.v, least(l.at, from_ts - interval '1 microsecond'), l.event_id
                      FROM ((SELECT CASE WHEN m.value_property IS NULL THEN p.value
                                         ELSE (p.properties ->> m.value_property)::numeric END AS v,
                                    p.occurred_at AS at, p.event_id, 0 AS dropped
                             FROM metering.events p
                             WHERE p.customer_id = _quantity.customer_id AND p.meter = m.code AND p.due_at < from_ts
                               AND (m.filter IS NULL OR p.properties @> m.filter)
                             ORDER BY p.due_at DESC, p.event_id DESC LIMIT 1)
                            UNION ALL
                            SELECT r.value, r.occurred_at, r.event_id, 1 FROM metering.retained_values r
                            WHERE r.customer_id = _quantity.customer_id AND r.meter = m.code
                              AND r.due_at < from_ts) l
                      ORDER BY l.dropped LIMIT 1)) pts)
           END
    INTO result;
    RETURN result;
END
$$;

CREATE OR REPLACE FUNCTION metering.usage(customer_id text, meter text, from_ts timestamptz, to_ts timestamptz)
    RETURNS numeric
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m metering.meters;
BEGIN
    IF customer_id IS NULL OR meter IS NULL OR from_ts IS NULL OR to_ts IS NULL THEN
        RAISE EXCEPTION 'usage: % must not be NULL',
            CASE WHEN customer_id IS NULL THEN 'customer_id' WHEN meter IS NULL THEN 'meter'
                 WHEN from_ts IS NULL THEN 'from_ts' ELSE 'to_ts' END
            USING ERRCODE = '22004';
    END IF;
    IF from_ts > to_ts THEN
        RAISE EXCEPTION 'usage: from_ts % is after to_ts %', from_ts, to_ts USING ERRCODE = '22023';
    END IF;
    PERFORM 1 FROM metering.customers c WHERE c.customer_id = usage.customer_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer_id "%" does not exist', customer_id USING ERRCODE = 'MT001',
            HINT = 'Create it first with metering.create_customer.';
    END IF;
    SELECT * INTO m FROM metering.meters WHERE code = meter;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'meter "%" does not exist', meter USING ERRCODE = 'MT002',
            HINT = 'Create it first with metering.create_meter.';
    END IF;
    IF from_ts < metering._retention_horizon() THEN
        RAISE EXCEPTION 'usage: from_ts % is before %, before which the events were dropped',
            from_ts, metering._retention_horizon() USING ERRCODE = 'MT024',
            HINT = 'The invoices of those periods (metering.invoice_items) keep what they billed.';
    END IF;
    RETURN metering._quantity(m, customer_id, from_ts, to_ts);
END
$$;

CREATE OR REPLACE FUNCTION metering.void_invoice(invoice_id bigint, reason text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inv metering.invoices;
BEGIN
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'reason must not be empty' USING ERRCODE = '22004',
            HINT = 'Say why the invoice is voided; it is kept with the invoice.';
    END IF;
    SELECT * INTO inv FROM metering.invoices i WHERE i.invoice_id = void_invoice.invoice_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'invoice % does not exist', coalesce(invoice_id::text, 'NULL') USING ERRCODE = 'MT022';
    END IF;
    PERFORM 1 FROM metering.rollup_state FOR UPDATE;
    PERFORM 1 FROM metering.customers c WHERE c.customer_id = inv.customer_id FOR UPDATE;
    SELECT * INTO inv FROM metering.invoices i WHERE i.invoice_id = void_invoice.invoice_id;
    IF inv.status = 'void' THEN
        RAISE EXCEPTION 'invoice % is already void', invoice_id USING ERRCODE = '55000';
    END IF;
    -- The regular invoice of a period billed what its interim invoices had not.
    IF inv.kind = 'interim' AND EXISTS (
           SELECT 1 FROM metering.invoice_items it WHERE it.invoice_id = inv.invoice_id AND it.kind = 'usage')
       AND EXISTS (
           SELECT 1 FROM metering.invoices r WHERE r.subscription_id = inv.subscription_id AND r.kind = 'regular'
           AND r.status <> 'void' AND r.period_start = inv.period_start) THEN
        RAISE EXCEPTION 'invoice % is an interim invoice of a period whose regular invoice billed the rest',
            invoice_id USING ERRCODE = '55000',
            HINT = 'Void the regular invoice of the period first; its next one bills the whole period.';
    END IF;
    IF inv.period_start < metering._retention_horizon() THEN
        RAISE EXCEPTION 'invoice % bills a period from %, before %, whose events were dropped',
            invoice_id, inv.period_start, metering._retention_horizon() USING ERRCODE = '55000',
            HINT = 'Its usage could not be billed again: an invoice of a dropped month is final.';
    END IF;
    PERFORM metering._internal_change(true);
    UPDATE metering.invoices i SET status = 'void', voided_at = now(), void_reason = reason
    WHERE i.invoice_id = void_invoice.invoice_id;
    -- What the period's remaining live lines billed: their amounts, and the quantity of the last.
    WITH touched AS (
        SELECT DISTINCT it.period_start, it.charge_id, it.meter FROM metering.invoice_items it
        WHERE it.invoice_id = inv.invoice_id AND it.charge_id IS NOT NULL
    ),
    remaining AS (
        SELECT t.period_start, t.charge_id,
               (SELECT sum(it.amount) FROM metering.invoice_items it JOIN metering.invoices i USING (invoice_id)
                WHERE i.subscription_id = inv.subscription_id AND i.status <> 'void'
                  AND it.period_start = t.period_start AND it.charge_id = t.charge_id) AS amount,
               (SELECT it.period_quantity FROM metering.invoice_items it JOIN metering.invoices i USING (invoice_id)
                WHERE i.subscription_id = inv.subscription_id AND i.status <> 'void'
                  AND it.period_start = t.period_start AND it.charge_id = t.charge_id
                ORDER BY i.invoice_id DESC LIMIT 1) AS quantity
        FROM touched t
    ),
    kept AS (
        UPDATE metering.billed_lines b SET amount = r.amount, quantity = r.quantity
        FROM remaining r
        WHERE b.subscription_id = inv.subscription_id AND b.period_start = r.period_start
          AND b.charge_id = r.charge_id AND r.amount IS NOT NULL
    ),
    dropped AS (
        DELETE FROM metering.billed_lines b USING remaining r
        WHERE b.subscription_id = inv.subscription_id AND b.period_start = r.period_start
          AND b.charge_id = r.charge_id AND r.amount IS NULL
    )
    -- late usage it billed is late again, for the next invoice
    INSERT INTO metering.late_groups (subscription_id, period_start, meter)
    SELECT inv.subscription_id, it.period_start, it.meter FROM metering.invoice_items it
    WHERE it.invoice_id = inv.invoice_id AND it.kind = 'late_usage'
    ON CONFLICT DO NOTHING;
    PERFORM metering._internal_change(false);
END
$$;

CREATE OR REPLACE FUNCTION metering.delete_unbilled_event(customer_id text, event_id bigint) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e metering.events;
    billed_by bigint;
BEGIN
    IF customer_id IS NULL OR event_id IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', CASE WHEN customer_id IS NULL THEN 'customer_id' ELSE 'event_id' END
            USING ERRCODE = '22004';
    END IF;
    PERFORM 1 FROM metering.rollup_state FOR UPDATE;
    PERFORM 1 FROM metering.customers c WHERE c.customer_id = delete_unbilled_event.customer_id FOR UPDATE;
    SELECT * INTO e FROM metering.events x
    WHERE x.customer_id = delete_unbilled_event.customer_id AND x.event_id = delete_unbilled_event.event_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event % of customer_id "%" does not exist', event_id, customer_id USING ERRCODE = 'MT023';
    END IF;
    -- Billed: its period has its live regular invoice, or an interim one billed up to it.
    SELECT i.invoice_id INTO billed_by
    FROM metering.subscriptions s
    JOIN metering.invoices i ON i.subscription_id = s.subscription_id AND i.status <> 'void'
    WHERE s.customer_id = e.customer_id AND s.starts_at <= e.due_at AND (s.ends_at IS NULL OR e.due_at < s.ends_at)
      AND i.period_start <= e.due_at AND e.due_at < i.period_end
      AND (i.kind = 'regular' OR e.due_at <= i.as_of)
    ORDER BY i.invoice_id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'event % is billed by invoice %', event_id, billed_by USING ERRCODE = 'MT017',
            HINT = 'A billed event is corrected by a new event (negative where the meter allows it).';
    END IF;
    PERFORM metering._internal_change(true);
    DELETE FROM metering.events x
    WHERE x.customer_id = delete_unbilled_event.customer_id AND x.event_id = delete_unbilled_event.event_id;
    -- as if it had never been ingested: a retry of its key records it again
    DELETE FROM metering.idempotency_keys k
    WHERE k.customer_id = e.customer_id AND k.idempotency_key = e.idempotency_key AND k.event_id = e.event_id;
    PERFORM metering._internal_change(false);
    PERFORM metering._rollup_rebuild(delete_unbilled_event.customer_id);
END
$$;


------------------------------------------------------------------------------
-- issue 10: what the month-end run reads grows with the voided invoices, not with all
------------------------------------------------------------------------------

CREATE INDEX invoices_voided ON metering.invoices (subscription_id, period_start)
    WHERE kind = 'regular' AND status = 'void';
