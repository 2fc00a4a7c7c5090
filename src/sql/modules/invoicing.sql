-- metering: invoices: closing periods, exactly-once billing, late and interim usage
-- A module of the install script: the Makefile concatenates src/sql/modules/*.sql,
-- in the order of SQL_MODULES, into metering--<version>.sql.

------------------------------------------------------------------------------
-- Invoices: closing periods, exactly-once billing, late usage, interim billing
-- (docs/invoicing.md explains the mechanism and why it is correct under MVCC)
------------------------------------------------------------------------------

CREATE FUNCTION metering._grace_period() RETURNS interval
    AS 'MODULE_PATHNAME', 'metering_grace_period'
    LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION metering._internal_change(allow boolean) RETURNS void
    AS 'MODULE_PATHNAME', 'metering_internal_change'
    LANGUAGE C VOLATILE;
CREATE FUNCTION metering._internal_change_active() RETURNS boolean
    AS 'MODULE_PATHNAME', 'metering_internal_change_active'
    LANGUAGE C STABLE;
COMMENT ON FUNCTION metering._grace_period() IS 'Internal: metering.close_grace_period as an interval.';
COMMENT ON FUNCTION metering._internal_change(boolean) IS
    'Internal: lets metering''s own functions make a change the refuse triggers forbid (cleared at transaction end).';
COMMENT ON FUNCTION metering._internal_change_active() IS 'Internal: whether _internal_change(true) is in effect.';

CREATE TABLE metering.invoices (
    invoice_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id bigint NOT NULL REFERENCES metering.subscriptions (subscription_id),
    customer_id     text COLLATE "C" NOT NULL,
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('regular', 'interim')),
    status          text NOT NULL CHECK (status IN ('pending_review', 'issued', 'void')),
    currency        text NOT NULL,
    total           numeric NOT NULL,
    issued_at       timestamptz,
    as_of           timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    voided_at       timestamptz,
    void_reason     text
);
-- At most one live regular invoice per subscription period: close_periods is idempotent.
CREATE UNIQUE INDEX invoices_one_regular ON metering.invoices (subscription_id, period_start)
    WHERE kind = 'regular' AND status <> 'void';
CREATE INDEX invoices_customer ON metering.invoices (customer_id, period_start);
-- Voided regular invoices, which close_periods looks for in every run (a period voided and
-- not issued anew): found in O(voids), not by reading every invoice ever issued.
CREATE INDEX invoices_voided ON metering.invoices (subscription_id, period_start)
    WHERE kind = 'regular' AND status = 'void';
COMMENT ON TABLE metering.invoices IS
    'Invoices: regular (a closed period) or interim (bill_now); status pending_review, issued or void. '
    'Immutable but for approve_invoice and void_invoice.';
COMMENT ON COLUMN metering.invoices.as_of IS
    'The instant billed up to: an interim invoice bills usage due at or before it.';

CREATE TABLE metering.invoice_items (
    invoice_id        bigint NOT NULL REFERENCES metering.invoices (invoice_id),
    item_no           int NOT NULL,
    charge_id         bigint,
    meter             text COLLATE "C",
    kind              text NOT NULL CHECK (kind IN ('base_fee', 'usage', 'late_usage')),
    description       text NOT NULL,
    period_start      timestamptz NOT NULL,
    period_end        timestamptz NOT NULL,
    quantity          numeric NOT NULL,
    free_units        numeric NOT NULL,
    billable_quantity numeric NOT NULL,
    amount            numeric NOT NULL,
    PRIMARY KEY (invoice_id, item_no),
    period_quantity   numeric
);
COMMENT ON TABLE metering.invoice_items IS
    'Lines of an invoice. usage: the period''s billed quantity so far and the amount still due for it '
    '(rate of the whole minus what earlier invoices of the period billed); late_usage: the usage an '
    'already invoiced period gained since, priced at the margin without free units '
    '(rate''(billed + late) - rate''(billed)); base_fee.';
COMMENT ON COLUMN metering.invoice_items.period_quantity IS
    'The period''s whole quantity once this line is billed (what late usage is priced from); NULL for a base fee.';
COMMENT ON COLUMN metering.invoice_items.period_start IS
    'The billing period the line''s usage belongs to (an earlier one for late_usage).';

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

SELECT pg_catalog.pg_extension_config_dump('metering.invoices', '');
SELECT pg_catalog.pg_extension_config_dump('metering.invoices_invoice_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('metering.invoice_items', '');
SELECT pg_catalog.pg_extension_config_dump('metering.billed_lines', '');
SELECT pg_catalog.pg_extension_config_dump('metering.billing_failures', '');

CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE OR TRUNCATE ON metering.invoices
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'issued invoices are immutable', 'Void the invoice with metering.void_invoice and bill again.');
CREATE TRIGGER invoice_items_immutable BEFORE UPDATE OR DELETE OR TRUNCATE ON metering.invoice_items
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'invoice items are immutable', 'Void the invoice with metering.void_invoice and bill again.');
CREATE TRIGGER billed_lines_keep BEFORE UPDATE OR DELETE OR TRUNCATE ON metering.billed_lines
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'what was billed changes only with its invoices', 'Void the invoice with metering.void_invoice.');

-- Issues, in a handful of statements, the invoices of the subscriptions subs (the caller
-- holds the rollup lock and their customers' locks):
--   mode 'regular': every period ended at or before cutoff without its live regular
--     invoice, billing the period's rolled-up quantity; and, for a subscription ended at
--     or before cutoff that has late usage but no period left to close, an interim
--     invoice of its last period with the late usage alone;
--   mode 'interim': the open period containing as_of, billing the usage due up to as_of.
-- A usage line bills round(rate(quantity)) minus what the period's live lines billed;
-- a late line bills round(rate'(now) - rate'(billed)), rate' without free units
-- (billwerk: no free quota for late entries), on the subscription's first new invoice.
-- Returns the number of invoices made.
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
COMMENT ON FUNCTION metering._issue_invoices(bigint[], timestamptz, timestamptz, text) IS
    'Internal: issues the regular (or interim) invoices of a set of subscriptions in a handful of statements.';

-- The end of a subscription's last live regular invoice ('-infinity': none yet), as
-- one row to join LATERAL. Its periods before are invoiced, but for voided ones not
-- issued anew. A table function without SET, so that Postgres inlines it into its
-- callers as one index probe a subscription (called through fmgr it cost about 10
-- microseconds each, a second of a close of 100,000); inlined, it is planned with the
-- callers' search_path, which they pin. An aggregate over the probe, not a scalar
-- subquery: inlined, a scalar subquery was copied into each use of billed_to and
-- probed three times a subscription.
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

-- The subscriptions with something for close_periods to invoice at cutoff.
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
COMMENT ON FUNCTION metering._due_subscriptions(timestamptz) IS
    'Internal: the subscriptions with a period ended at or before cutoff and not invoiced, or ended with late usage.';

CREATE FUNCTION metering.close_periods(as_of timestamptz DEFAULT now()) RETURNS int
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
COMMENT ON FUNCTION metering.close_periods(timestamptz) IS
    'Issues the regular invoice of every subscription period that ended at or before as_of minus '
    'metering.close_grace_period (default 1 hour), set-based over the rolled-up usage; idempotent and safe '
    'to run concurrently with itself and with ingest (schedule it with pg_cron). A subscription that '
    'fails is left out and recorded in metering.billing_errors; the next run retries it. Returns the '
    'number of invoices made.';

CREATE FUNCTION metering.bill_now(subscription_id bigint, as_of timestamptz DEFAULT now()) RETURNS bigint
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
COMMENT ON FUNCTION metering.bill_now(bigint, timestamptz) IS
    'Interim invoice: bills the usage due at or before as_of in the open period (what earlier invoices of '
    'the period did not) and the late usage of closed periods; the period''s regular invoice later bills '
    'only the rest. Returns the invoice_id.';

CREATE FUNCTION metering.approve_invoice(invoice_id bigint) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inv metering.invoices;
BEGIN
    SELECT * INTO inv FROM metering.invoices i WHERE i.invoice_id = approve_invoice.invoice_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'invoice % does not exist', coalesce(invoice_id::text, 'NULL') USING ERRCODE = 'MT022';
    END IF;
    IF inv.status <> 'pending_review' THEN
        RAISE EXCEPTION 'invoice % is %, not pending_review', invoice_id, inv.status USING ERRCODE = '55000';
    END IF;
    PERFORM metering._internal_change(true);
    UPDATE metering.invoices i SET status = 'issued', issued_at = now() WHERE i.invoice_id = approve_invoice.invoice_id;
    PERFORM metering._internal_change(false);
END
$$;
COMMENT ON FUNCTION metering.approve_invoice(bigint) IS
    'Issues an invoice waiting in pending_review (customers created with auto_issue => false).';

CREATE FUNCTION metering.void_invoice(invoice_id bigint, reason text) RETURNS void
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
COMMENT ON FUNCTION metering.void_invoice(bigint, text) IS
    'Voids an invoice (final): its usage is unbilled again and goes on the next invoice (a voided regular '
    'invoice is issued anew by close_periods; late usage it billed goes on the next invoice). An interim '
    'invoice whose period has its regular invoice is voided after that one.';

CREATE FUNCTION metering.delete_unbilled_event(customer_id text, event_id bigint) RETURNS void
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
COMMENT ON FUNCTION metering.delete_unbilled_event(text, bigint) IS
    'Admin correction: deletes an event no invoice has billed. A billed event is never deleted.';

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
              FROM metering._unrolled_months t
              CROSS JOIN LATERAL (SELECT e.* FROM metering.events e
                                  WHERE e.due_at >= t.due_from AND e.due_at < t.due_to
                                    AND e.ctid >= t.first_tid AND e.ctid <= '(4294967295,65535)' OFFSET 0) ev
              WHERE ev.txid >= txid_snapshot_xmin(metering._rolled_up())
                AND NOT txid_visible_in_snapshot(ev.txid, metering._rolled_up())) w;
COMMENT ON VIEW metering.status IS
    'For operators: events waiting to be rolled up and since when, the last rollup step and how many events '
    'the steps rolled up, the last close_periods and how many invoices it made, invoices pending review, '
    'subscriptions in billing_errors, and whether the rollup worker runs (and for which databases).';
