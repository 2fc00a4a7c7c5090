-- metering: usage rollups. The events of every (customer, meter, billing period) are
-- rolled up into one partial aggregate state, by a step that consumes each committed
-- event exactly once (docs/design.md, "Rollups"); reads combine the states with the
-- events not rolled up yet, so nothing a user reads is ever stale.
-- A module of the install script: the Makefile concatenates src/sql/modules/*.sql,
-- in the order of SQL_MODULES, into metering--<version>.sql.

------------------------------------------------------------------------------
-- Serialized line states: the rollups' partial aggregates
------------------------------------------------------------------------------

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

------------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------------

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

------------------------------------------------------------------------------
-- The rollup step
------------------------------------------------------------------------------

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

-- The months holding events whose transaction is visible in cur (NULL: to the caller)
-- and not in prev, each with the first heap block to read from: the lowest block those
-- transactions wrote there (metering.event_writes), or the first when the partition was
-- rewritten since (VACUUM FULL, CLUSTER). The tail of a month is then read by a TID
-- range scan from that block (docs/design.md, "Rollups"). whole: the tail is at least
-- half of the month (a step over many events reads such a month by a scan that can run
-- in parallel). The views read the same through metering._unrolled_months (with their
-- owner's rights: their readers have none on the log).
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

-- The events whose transaction is visible in cur and not in prev, grouped per line:
-- per customer, meter and the subscription's billing period containing the event's
-- due_at, with the partial state of the meter's kind (custom and time_weighted: none).
-- cur NULL: every event the caller sees (its own transaction's included), so that
-- (prev = the last step's snapshot, cur NULL) is the tail not rolled up yet.
-- customers and from_ts narrow it to some customers and to events due from an instant.
-- Planned at every call with its arguments as constants: a generic plan cannot tell a
-- step (a few recent transactions: TID range scans) from a rebuild (one customer's
-- events: the primary key), and the one Postgres settled on in the rollup worker's
-- session read every customer's whole history by primary key at every step.
-- Many new events (a burst of ingest, a close rolling up a month inline) are read in one
-- pass: the subscriptions hashed, the events streamed past them, the groups hashed. The
-- planner, whose statistics predate the new txids and which gives the visibility tests
-- default selectivities, estimates the events at a few rows: it hashed them instead, and
-- probed per event with nested loops, and sorted them on disk to group them (a step of
-- 100,000 events took twice as long). From a third of the subscriptions' number of events
-- on (counted in the tail, up to that number), the subscriptions come from
-- _rollup_subscriptions, which it believes to be one row (so it hashes them), with nested
-- loops and sorts off; the SET clauses end the settings with the call. JIT is off: the
-- nested loop over the months that the write log names (the only plan for a LATERAL)
-- costs a disabled node's 1e10, which compiled and optimized the step's expressions at
-- every step (a third of a step of 100,000 events, Figure 2r of session 10). The TID
-- range's upper bound is for the planner's estimate (see metering._usage_quantities).
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
