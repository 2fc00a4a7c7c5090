-- metering: rating: pricing, charges, subscriptions, periods, invoice lines
-- A module of the install script: the Makefile concatenates src/sql/modules/*.sql,
-- in the order of SQL_MODULES, into metering--<version>.sql.

------------------------------------------------------------------------------
-- Rating: pricing, charges, subscriptions, billing periods, invoice lines
-- (docs/rating.md explains the rules and the plan of the views)
------------------------------------------------------------------------------

CREATE FUNCTION metering.rate(quantity numeric, pricing jsonb) RETURNS numeric
    AS 'MODULE_PATHNAME', 'metering_rate'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION metering.rate(numeric, jsonb) IS
    'Exact, unrounded amount of quantity under a pricing rule (per_unit, graduated, volume, package, '
    'percentage; optional free_units).';

CREATE FUNCTION metering.rate_breakdown(quantity numeric, pricing jsonb)
    RETURNS TABLE(tier int, units numeric, unit_price numeric, flat_price numeric, amount numeric)
    AS 'MODULE_PATHNAME', 'metering_rate_breakdown'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 3;
COMMENT ON FUNCTION metering.rate_breakdown(numeric, jsonb) IS
    'The lines of rate(): one per tier reached (graduated), the tier used (volume), or one line; '
    'amount = units x unit_price + flat_price, and the amounts add up to rate().';

CREATE FUNCTION metering._billable_quantity(quantity numeric, pricing jsonb) RETURNS numeric
    AS 'MODULE_PATHNAME', 'metering_billable_quantity'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION metering._free_units(pricing jsonb) RETURNS numeric
    AS 'MODULE_PATHNAME', 'metering_free_units'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION metering._check_pricing(pricing jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'metering_check_pricing'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION metering._periods(anchor timestamptz, billing_interval interval, timezone text,
        from_ts timestamptz, to_ts timestamptz)
    RETURNS TABLE(period_index bigint, period_start timestamptz, period_end timestamptz)
    AS 'MODULE_PATHNAME', 'metering_periods'
    LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 2;
COMMENT ON FUNCTION metering._billable_quantity(numeric, jsonb) IS
    'Internal: the quantity a pricing prices (after free_units; never negative for tiers and packages).';
COMMENT ON FUNCTION metering._free_units(jsonb) IS 'Internal: free_units of a pricing (0 when absent).';
COMMENT ON FUNCTION metering._check_pricing(jsonb) IS 'Internal: validates a pricing rule (MT009).';
COMMENT ON FUNCTION metering._periods(timestamptz, interval, text, timestamptz, timestamptz) IS
    'Internal: whole billing periods [anchor + k x interval, anchor + (k+1) x interval) in a time zone '
    'that overlap [from_ts, to_ts).';

CREATE FUNCTION metering._cut_periods(anchor timestamptz, billing_interval interval, timezone text,
        starts_at timestamptz, ends_at timestamptz, to_ts timestamptz)
    RETURNS TABLE(period_start timestamptz, period_end timestamptz, full_start timestamptz, full_end timestamptz)
    AS 'MODULE_PATHNAME', 'metering_cut_periods'
    LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION metering._cut_periods(timestamptz, interval, text, timestamptz, timestamptz, timestamptz) IS
    'Internal: the periods of a subscription over [starts_at, ends_at) (''infinity'' when open) that overlap '
    '[starts_at, to_ts), cut to the subscription (full_start, full_end: the whole period).';
-- Planner support of _due_in: a join estimate from the statistics of due_at, and the
-- index conditions due_at >= from_ts AND due_at < to_ts (src/rating/due_in.cpp).
CREATE FUNCTION metering._due_in_support(internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'metering_due_in_support'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION metering._due_in(due_at timestamptz, from_ts timestamptz, to_ts timestamptz) RETURNS boolean
    AS 'MODULE_PATHNAME', 'metering_due_in'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    SUPPORT metering._due_in_support;
COMMENT ON FUNCTION metering._due_in(timestamptz, timestamptz, timestamptz) IS
    'Internal: from_ts <= due_at < to_ts (an event in a billing period), with a planner support function.';
COMMENT ON FUNCTION metering._due_in_support(internal) IS
    'Internal: planner support of _due_in (join selectivity from due_at''s statistics, index conditions).';

CREATE TABLE metering.charges (
    charge_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plan_code   text COLLATE "C" NOT NULL REFERENCES metering.plans (code),
    meter       text COLLATE "C" NOT NULL REFERENCES metering.meters (code),
    pricing     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (plan_code, meter)
);
COMMENT ON TABLE metering.charges IS
    'A meter priced on a plan (at most one charge per meter and plan); pricing is validated when added.';

CREATE TABLE metering.subscriptions (
    subscription_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id     text COLLATE "C" NOT NULL REFERENCES metering.customers (customer_id),
    plan_code       text COLLATE "C" NOT NULL REFERENCES metering.plans (code),
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz CHECK (ends_at > starts_at),
    billing_anchor  timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_customer ON metering.subscriptions (customer_id, starts_at);
COMMENT ON TABLE metering.subscriptions IS
    'A customer on a plan from starts_at until ends_at (NULL: open), billed in periods counted from '
    'billing_anchor in the customer''s time zone. A customer''s subscriptions never overlap.';

SELECT pg_catalog.pg_extension_config_dump('metering.charges', '');
SELECT pg_catalog.pg_extension_config_dump('metering.charges_charge_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('metering.subscriptions', '');
SELECT pg_catalog.pg_extension_config_dump('metering.subscriptions_subscription_id_seq', '');

CREATE TRIGGER charges_keep BEFORE UPDATE OR DELETE OR TRUNCATE ON metering.charges
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'charges price invoice lines', 'Create a new plan with the new pricing instead.');
CREATE TRIGGER subscriptions_keep BEFORE DELETE OR TRUNCATE ON metering.subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'subscriptions are billed', 'End the subscription with metering.end_subscription.');

CREATE FUNCTION metering.add_charge(plan_code text, meter_code text, pricing jsonb) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
BEGIN
    IF plan_code IS NULL OR meter_code IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', CASE WHEN plan_code IS NULL THEN 'plan_code' ELSE 'meter_code' END
            USING ERRCODE = '22004';
    END IF;
    PERFORM 1 FROM metering.plans p WHERE p.code = add_charge.plan_code;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'plan "%" does not exist', plan_code USING ERRCODE = 'MT018',
            HINT = 'Create it first with metering.create_plan.';
    END IF;
    PERFORM 1 FROM metering.meters m WHERE m.code = meter_code;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'meter "%" does not exist', meter_code USING ERRCODE = 'MT002',
            HINT = 'Create it first with metering.create_meter.';
    END IF;
    INSERT INTO metering.charges (plan_code, meter, pricing)
    VALUES (plan_code, meter_code, metering._check_pricing(pricing))
    RETURNING charge_id INTO id;
    RETURN id;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'plan "%" already has a charge for meter "%"', plan_code, meter_code
        USING ERRCODE = 'duplicate_object', HINT = 'A plan prices each meter once.';
END
$$;
COMMENT ON FUNCTION metering.add_charge(text, text, jsonb) IS
    'Prices a meter on a plan; pricing is jsonb ({"model": "per_unit" | "graduated" | "volume" | '
    '"package" | "percentage", ..., "free_units": N}) and is validated here. Returns the charge_id.';

CREATE FUNCTION metering.subscribe(customer_id text, plan_code text, starts_at timestamptz DEFAULT now(),
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
COMMENT ON FUNCTION metering.subscribe(text, text, timestamptz, timestamptz) IS
    'Subscribes a customer to a plan from starts_at; periods count from billing_anchor (default '
    'starts_at) in the customer''s time zone. Returns the subscription_id.';

CREATE FUNCTION metering.end_subscription(subscription_id bigint, ends_at timestamptz DEFAULT now())
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
COMMENT ON FUNCTION metering.end_subscription(bigint, timestamptz) IS
    'Ends a subscription at ends_at: its last period is cut there (base fee prorated).';

-- Periods of a subscription: whole periods cut to [starts_at, ends_at).
CREATE FUNCTION metering._subscription_periods(s metering.subscriptions, timezone text, billing_interval interval,
        from_ts timestamptz, to_ts timestamptz)
    RETURNS TABLE(period_start timestamptz, period_end timestamptz, full_start timestamptz, full_end timestamptz)
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT greatest(p.period_start, s.starts_at), least(p.period_end, coalesce(s.ends_at, 'infinity')),
           p.period_start, p.period_end
    FROM metering._periods(s.billing_anchor, billing_interval, timezone,
                           greatest(from_ts, s.starts_at), least(to_ts, coalesce(s.ends_at, 'infinity'))) p
    WHERE greatest(from_ts, s.starts_at) < least(to_ts, coalesce(s.ends_at, 'infinity'))
$$;
COMMENT ON FUNCTION metering._subscription_periods(metering.subscriptions, text, interval, timestamptz, timestamptz) IS
    'Internal: the billing periods of a subscription overlapping [from_ts, to_ts), cut to the subscription.';

CREATE FUNCTION metering.billing_periods(subscription_id bigint, from_ts timestamptz, to_ts timestamptz)
    RETURNS TABLE(period_start timestamptz, period_end timestamptz)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s metering.subscriptions;
BEGIN
    IF subscription_id IS NULL OR from_ts IS NULL OR to_ts IS NULL THEN
        RAISE EXCEPTION '% must not be NULL',
            CASE WHEN subscription_id IS NULL THEN 'subscription_id' WHEN from_ts IS NULL THEN 'from_ts' ELSE 'to_ts' END
            USING ERRCODE = '22004';
    END IF;
    IF from_ts > to_ts THEN
        RAISE EXCEPTION 'from_ts % is after to_ts %', from_ts, to_ts USING ERRCODE = '22023';
    END IF;
    SELECT * INTO s FROM metering.subscriptions x WHERE x.subscription_id = billing_periods.subscription_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'subscription % does not exist', subscription_id USING ERRCODE = 'MT020';
    END IF;
    RETURN QUERY
        SELECT p.period_start, p.period_end
        FROM metering.customers c, metering.plans pl,
             metering._subscription_periods(s, c.timezone, pl.billing_interval, from_ts, to_ts) p
        WHERE c.customer_id = s.customer_id AND pl.code = s.plan_code
        ORDER BY 1;
END
$$;
COMMENT ON FUNCTION metering.billing_periods(bigint, timestamptz, timestamptz) IS
    'Billing periods of a subscription that overlap [from_ts, to_ts): [anchor + k x interval, '
    'anchor + (k+1) x interval) in the customer''s time zone, cut to the subscription''s start and end.';

-- The quantity of a custom meter: its stored expression is checked again as
-- create_meter checked it, and the checked tree itself runs over that customer's
-- events of the meter, as the caller (docs/rating.md, Custom meters).
CREATE FUNCTION metering._custom_quantity(meter text, expression text, customer_id text,
        from_ts timestamptz, to_ts timestamptz, filter jsonb)
    RETURNS numeric
    AS 'MODULE_PATHNAME', 'metering_custom_quantity'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION metering._custom_quantity(text, text, text, timestamptz, timestamptz, jsonb) IS
    'Internal: quantity of a custom meter''s expression for a customer over [from_ts, to_ts) by due_at; '
    'refuses an expression made of anything but built-in immutable objects of pg_catalog.';

-- Quantity of one meter of one customer over [from_ts, to_ts) by due_at, per
-- the meter's kind. No argument checks: usage(), the views and invoicing call it.
CREATE FUNCTION metering._quantity(m metering.meters, customer_id text, from_ts timestamptz, to_ts timestamptz)
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
COMMENT ON FUNCTION metering._quantity(metering.meters, text, timestamptz, timestamptz) IS
    'Internal: quantity of a meter for a customer over [from_ts, to_ts) by due_at.';

-- Every started period of every subscription, with what its lines need.
CREATE VIEW metering._started_periods AS
SELECT s.subscription_id, s.customer_id, s.plan_code, pl.currency, pl.base_fee,
       metering.currency_exponent(pl.currency) AS exponent,
       p.period_start, p.period_end, p.full_start, p.full_end,
       extract(epoch FROM p.period_end - p.period_start) AS seconds,
       extract(epoch FROM p.full_end - p.full_start) AS full_seconds,
       -- shown as the base fee's quantity; the amount uses the exact seconds
       CASE WHEN p.period_start = p.full_start AND p.period_end = p.full_end THEN 1::numeric
            ELSE round(extract(epoch FROM p.period_end - p.period_start)
                       / extract(epoch FROM p.full_end - p.full_start), 6) END AS fraction
FROM metering.subscriptions s
JOIN metering.customers c ON c.customer_id = s.customer_id
JOIN metering.plans pl ON pl.code = s.plan_code
CROSS JOIN LATERAL metering._cut_periods(s.billing_anchor, pl.billing_interval, c.timezone, s.starts_at,
                                         coalesce(s.ends_at, 'infinity'), now()) p;
COMMENT ON VIEW metering._started_periods IS
    'Internal: every billing period of every subscription that has started (cut to the subscription).';

-- One row per started period x charge, with the meter's rule (and its row, for
-- _quantity); k (meters.kind) numbers the kinds that _usage_quantities aggregates in
-- one pass, 0: one line at a time.
CREATE VIEW metering._usage_lines AS
SELECT sp.subscription_id, sp.customer_id, sp.period_start, sp.period_end, ch.charge_id, ch.meter,
       ch.pricing, sp.currency, m.filter, m.kind AS k, m AS meter_row
FROM metering._started_periods sp
JOIN metering.charges ch ON ch.plan_code = sp.plan_code
JOIN metering.meters m ON m.code = ch.meter;
COMMENT ON VIEW metering._usage_lines IS
    'Internal: every started period x charge, with the meter''s aggregation rule.';

-- The quantity of every usage line (docs/rating.md, "How the usage lines are computed"):
-- the line's rolled-up state (metering.usage_rollups) merged with the state of its
-- events not rolled up yet, the tail: the events whose transaction the last rollup step
-- did not see, read from the first block they wrote in each month (metering._tail_months)
-- and grouped by period as the rollup step groups them (so reading them costs the tail,
-- whatever the history). The TID range's upper bound bounds nothing: with both bounds
-- the planner estimates the range at 0.5 % of the month instead of a third (its defaults
-- for an unknown range and an unknown inequality), which on months of millions of events
-- made every read of the tail cost enough for JIT to compile it (about a second). A
-- filter on the view's customer reaches both branches. Custom and time_weighted lines
-- are read from the events.
CREATE FUNCTION metering._rolled_up() RETURNS txid_snapshot
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT r.snapshot FROM metering.rollup_state r $$;
COMMENT ON FUNCTION metering._rolled_up() IS
    'Internal: the snapshot of the last rollup step (an event is rolled up iff its transaction is visible in it).';

-- The months of the tail the reads merge with the rollups: _tail_months(_rolled_up(), NULL).
-- Through arrays: the planner counts ten rows for an unnest of one, where it counted 156
-- groups of the log (its defaults for a table never analyzed), each a TID range scan of a
-- month; on months of millions of events that priced current_usage high enough for JIT
-- to compile it at every call (90 ms).
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

-- What the live lines of a period and charge billed (metering.billed_lines, made by
-- the invoicing module): a period before the retention horizon is read from it. It
-- reads as its caller (who reads invoice_lines reads the billing tables).
CREATE FUNCTION metering._billed_quantity(subscription_id bigint, period_start timestamptz, charge_id bigint)
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

CREATE VIEW metering._usage_quantities AS
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
COMMENT ON VIEW metering._usage_quantities IS
    'Internal: the quantity of every usage line (subscription x started period x charge).';

CREATE VIEW metering.invoice_lines AS
SELECT sp.subscription_id, sp.customer_id, sp.period_start, sp.period_end,
       NULL::bigint AS charge_id, NULL::text AS meter,
       'Base fee, plan ' || sp.plan_code AS description,
       sp.fraction AS quantity,
       0::numeric AS free_units,
       sp.fraction AS billable_quantity,
       round(sp.base_fee * sp.seconds / sp.full_seconds, sp.exponent) AS amount,
       sp.currency, 'base_fee'::text AS kind
FROM metering._started_periods sp
UNION ALL
SELECT u.subscription_id, u.customer_id, u.period_start, u.period_end,
       u.charge_id, u.meter::text,
       'Usage of ' || u.meter AS description,
       q.quantity,
       metering._free_units(u.pricing),
       metering._billable_quantity(q.quantity, u.pricing),
       round(metering.rate(q.quantity, u.pricing), metering.currency_exponent(u.currency)),
       u.currency, 'usage'::text
FROM metering._usage_quantities u
CROSS JOIN LATERAL (SELECT coalesce(u.quantity, 0) AS quantity) q;
COMMENT ON VIEW metering.invoice_lines IS
    'One line per subscription x started period x charge, plus the base fee (in arrears, prorated by '
    'elapsed time for a partial first or last period); amount is rounded once, half away from zero, to '
    'the currency''s minor unit.';

CREATE VIEW metering.current_usage AS
SELECT l.* FROM metering.invoice_lines l
WHERE l.period_start <= now() AND now() < l.period_end;
COMMENT ON VIEW metering.current_usage IS
    'The lines of each subscription''s open period, so far.';

CREATE FUNCTION metering.billable_items(customer_id text)
    RETURNS TABLE(subscription_id bigint, plan_code text, charge_id bigint, meter text, aggregation text,
                  pricing jsonb)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.subscription_id, s.plan_code, ch.charge_id, ch.meter, m.aggregation, ch.pricing
    FROM metering.subscriptions s
    JOIN metering.charges ch ON ch.plan_code = s.plan_code
    JOIN metering.meters m ON m.code = ch.meter
    WHERE s.customer_id = billable_items.customer_id
      AND s.starts_at <= now() AND (s.ends_at IS NULL OR s.ends_at > now())
    ORDER BY ch.charge_id
$$;
COMMENT ON FUNCTION metering.billable_items(text) IS
    'The charges (meter and pricing) a customer is billed for now, by its current subscription.';
