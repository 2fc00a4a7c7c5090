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
    PRIMARY KEY (invoice_id, item_no)
);
COMMENT ON TABLE metering.invoice_items IS
    'Lines of an invoice. usage: the period''s billed quantity so far and the amount still due for it '
    '(rate of the whole minus what earlier invoices of the period billed); late_usage: events of an '
    'already invoiced period, rated on their own quantity without free units; base_fee.';
COMMENT ON COLUMN metering.invoice_items.period_start IS
    'The billing period the line''s usage belongs to (an earlier one for late_usage).';

-- One row per billed event: which invoice billed it. The primary key makes a second
-- billing impossible; voiding an invoice deletes its rows (the usage is unbilled again).
CREATE TABLE metering.billed_events (
    customer_id text COLLATE "C" NOT NULL,
    event_id    bigint NOT NULL,
    -- No foreign key: _issue_invoice writes the invoice and its marks together, and a
    -- per-row RI check was half of the time of marking 10 million events.
    invoice_id  bigint NOT NULL,
    meter       text COLLATE "C" NOT NULL,   -- copied from the event: an invoice's late
    due_at      timestamptz NOT NULL,        -- lines are found from its own marks
    PRIMARY KEY (customer_id, event_id)
);
CREATE INDEX billed_events_invoice ON metering.billed_events (invoice_id);
COMMENT ON TABLE metering.billed_events IS
    'Exactly-once bookkeeping: the invoice that billed each billed event.';

SELECT pg_catalog.pg_extension_config_dump('metering.invoices', '');
SELECT pg_catalog.pg_extension_config_dump('metering.invoices_invoice_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('metering.invoice_items', '');
SELECT pg_catalog.pg_extension_config_dump('metering.billed_events', '');

CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE OR TRUNCATE ON metering.invoices
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'issued invoices are immutable', 'Void the invoice with metering.void_invoice and bill again.');
CREATE TRIGGER invoice_items_immutable BEFORE UPDATE OR DELETE OR TRUNCATE ON metering.invoice_items
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'invoice items are immutable', 'Void the invoice with metering.void_invoice and bill again.');
CREATE TRIGGER billed_events_keep BEFORE UPDATE OR DELETE OR TRUNCATE ON metering.billed_events
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'billing marks change only with their invoice', 'Void the invoice with metering.void_invoice.');

-- Issues one invoice of subscription s: 'regular' for the period [p_start, p_end),
-- 'interim' for its usage due at or before as_of. The caller holds the customer lock.
CREATE FUNCTION metering._issue_invoice(s metering.subscriptions, p_start timestamptz, p_end timestamptz,
        full_start timestamptz, full_end timestamptz, inv_kind text, as_of timestamptz)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c metering.customers;
    pl metering.plans;
    exponent int;
    id bigint;
    item int := 0;
    inv_total numeric := 0;
    ch record;
    late record;
    q numeric;
    prev numeric;
    amount numeric;
    fraction numeric;
    period_closed boolean;
    live_ids bigint[];
    late_meter metering.meters;
BEGIN
    SELECT * INTO c FROM metering.customers x WHERE x.customer_id = s.customer_id;
    SELECT * INTO pl FROM metering.plans x WHERE x.code = s.plan_code;
    exponent := metering.currency_exponent(pl.currency);
    INSERT INTO metering.invoices (subscription_id, customer_id, period_start, period_end, kind, status,
                                   currency, total, issued_at, as_of)
    VALUES (s.subscription_id, s.customer_id, p_start, p_end, inv_kind,
            CASE WHEN c.auto_issue THEN 'issued' ELSE 'pending_review' END, pl.currency, 0,
            CASE WHEN c.auto_issue THEN now() END, as_of)
    RETURNING invoice_id INTO id;
    -- An interim invoice of a period that already has its regular invoice bills late usage only.
    period_closed := EXISTS (SELECT 1 FROM metering.invoices r
                             WHERE r.subscription_id = s.subscription_id AND r.kind = 'regular'
                               AND r.status <> 'void' AND r.invoice_id <> id AND r.period_start = p_start);

    -- Mark what this invoice bills: the unbilled events of the plan's meters due in this
    -- period (up to as_of for an interim invoice), and the unbilled events of earlier
    -- periods that already have their regular invoice (late usage). An event committed
    -- after this statement's snapshot is not seen: it stays unbilled for the next invoice.
    INSERT INTO metering.billed_events (customer_id, event_id, invoice_id, meter, due_at)
    SELECT e.customer_id, e.event_id, id, e.meter, e.due_at
    FROM metering.charges chg
    JOIN metering.events e ON e.customer_id = s.customer_id AND e.meter = chg.meter
    WHERE chg.plan_code = s.plan_code
      AND e.due_at >= s.starts_at AND e.due_at < p_end
      AND ((NOT period_closed AND e.due_at >= p_start AND (inv_kind = 'regular' OR e.due_at <= as_of))
           OR EXISTS (SELECT 1 FROM metering.invoices r
                      WHERE r.subscription_id = s.subscription_id AND r.kind = 'regular' AND r.status <> 'void'
                        AND r.invoice_id <> id AND r.period_start <= e.due_at AND e.due_at < r.period_end))
      AND NOT EXISTS (SELECT 1 FROM metering.billed_events b
                      WHERE b.customer_id = e.customer_id AND b.event_id = e.event_id);

    -- The live invoices of this period, this one included (not the ones billing it as late usage).
    SELECT array_agg(i.invoice_id) INTO live_ids FROM metering.invoices i
    WHERE i.subscription_id = s.subscription_id AND i.status <> 'void' AND i.period_start = p_start;

    -- usage: the period's quantity billed so far by live invoices (this one included),
    -- rated as a whole, minus what earlier invoices of the period billed for the charge.
    FOR ch IN SELECT chg.charge_id, chg.meter, chg.pricing, m AS meter_row
              FROM metering.charges chg JOIN metering.meters m ON m.code = chg.meter
              WHERE chg.plan_code = s.plan_code AND NOT period_closed ORDER BY chg.charge_id
    LOOP
        q := coalesce(metering._quantity(ch.meter_row, s.customer_id, p_start, p_end, live_ids), 0);
        SELECT coalesce(sum(it.amount), 0) INTO prev
        FROM metering.invoice_items it JOIN metering.invoices i ON i.invoice_id = it.invoice_id
        WHERE i.subscription_id = s.subscription_id AND i.status <> 'void' AND i.invoice_id <> id
          AND it.kind = 'usage' AND it.charge_id = ch.charge_id AND it.period_start = p_start;
        amount := round(metering.rate(q, ch.pricing), exponent) - prev;
        item := item + 1;
        INSERT INTO metering.invoice_items VALUES
            (id, item, ch.charge_id, ch.meter, 'usage', 'Usage of ' || ch.meter, p_start, p_end, q,
             metering._free_units(ch.pricing), metering._billable_quantity(q, ch.pricing), amount);
        inv_total := inv_total + amount;
    END LOOP;

    -- late_usage: per earlier period and charge with events this invoice marked (found
    -- from this invoice's own marks, not by reading the subscription's history).
    FOR late IN SELECT DISTINCT r.period_start, r.period_end, chg.charge_id, chg.meter, chg.pricing
                FROM metering.billed_events b
                JOIN metering.invoices r ON r.subscription_id = s.subscription_id AND r.kind = 'regular'
                     AND r.status <> 'void' AND r.invoice_id <> id
                     AND b.due_at >= r.period_start AND b.due_at < r.period_end
                JOIN metering.charges chg ON chg.plan_code = s.plan_code AND chg.meter = b.meter
                WHERE b.invoice_id = id
                ORDER BY r.period_start, chg.charge_id
    LOOP
        SELECT * INTO late_meter FROM metering.meters m WHERE m.code = late.meter;
        q := coalesce(metering._quantity(late_meter, s.customer_id, late.period_start, late.period_end, ARRAY[id]), 0);
        amount := round(metering.rate(q, late.pricing - 'free_units'), exponent);
        item := item + 1;
        INSERT INTO metering.invoice_items VALUES
            (id, item, late.charge_id, late.meter, 'late_usage', 'Late usage of ' || late.meter,
             late.period_start, late.period_end, q, 0, metering._billable_quantity(q, late.pricing - 'free_units'),
             amount);
        inv_total := inv_total + amount;
    END LOOP;

    -- base fee: in arrears on the regular invoice, prorated for a partial period.
    IF inv_kind = 'regular' THEN
        fraction := CASE WHEN p_start = full_start AND p_end = full_end THEN 1
                         ELSE round(extract(epoch FROM p_end - p_start) / extract(epoch FROM full_end - full_start), 6) END;
        amount := round(pl.base_fee * extract(epoch FROM p_end - p_start) / extract(epoch FROM full_end - full_start),
                        exponent);
        item := item + 1;
        INSERT INTO metering.invoice_items VALUES
            (id, item, NULL, NULL, 'base_fee', 'Base fee, plan ' || pl.code, p_start, p_end,
             fraction, 0, fraction, amount);
        inv_total := inv_total + amount;
    END IF;

    PERFORM metering._internal_change(true);
    UPDATE metering.invoices x SET total = inv_total WHERE x.invoice_id = id;
    PERFORM metering._internal_change(false);
    RETURN id;
END
$$;
COMMENT ON FUNCTION metering._issue_invoice(metering.subscriptions, timestamptz, timestamptz, timestamptz, timestamptz, text, timestamptz) IS
    'Internal: issues one invoice and marks the events it bills.';

CREATE FUNCTION metering.close_periods(as_of timestamptz DEFAULT now()) RETURNS int
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz;
    s metering.subscriptions;
    p record;
    locked boolean;
    made int := 0;
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
    FOR s IN SELECT * FROM metering.subscriptions x WHERE x.starts_at < cutoff ORDER BY x.subscription_id LOOP
        locked := false;
        -- The first due period without its regular invoice, again after each invoice.
        LOOP
            SELECT sp.* INTO p FROM metering.customers c, metering.plans pl,
                   metering._subscription_periods(s, c.timezone, pl.billing_interval, s.starts_at, cutoff) sp
            WHERE c.customer_id = s.customer_id AND pl.code = s.plan_code AND sp.period_end <= cutoff
              AND NOT EXISTS (SELECT 1 FROM metering.invoices i
                              WHERE i.subscription_id = s.subscription_id AND i.kind = 'regular'
                                AND i.status <> 'void' AND i.period_start = sp.period_start)
            ORDER BY sp.period_start LIMIT 1;
            EXIT WHEN NOT FOUND;
            IF NOT locked THEN
                -- Everything that bills a customer takes this lock; ingest never does. Once
                -- it is held, the subscription is read again (end_subscription may have
                -- moved its end while we waited) and the due periods are computed again.
                PERFORM 1 FROM metering.customers c WHERE c.customer_id = s.customer_id FOR UPDATE;
                SELECT * INTO s FROM metering.subscriptions x WHERE x.subscription_id = s.subscription_id;
                locked := true;
                CONTINUE;
            END IF;
            PERFORM metering._issue_invoice(s, p.period_start, p.period_end, p.full_start, p.full_end,
                                            'regular', as_of);
            made := made + 1;
        END LOOP;
        -- An ended subscription has no next invoice: its late usage gets an interim
        -- invoice of its last period (late usage lines only).
        IF s.ends_at IS NOT NULL AND s.ends_at <= cutoff THEN
            IF NOT locked THEN
                PERFORM 1 FROM metering.customers c WHERE c.customer_id = s.customer_id FOR UPDATE;
                SELECT * INTO s FROM metering.subscriptions x WHERE x.subscription_id = s.subscription_id;
            END IF;
            SELECT sp.* INTO p FROM metering.customers c, metering.plans pl,
                   metering._subscription_periods(s, c.timezone, pl.billing_interval, s.ends_at - interval '1 microsecond', s.ends_at) sp
            WHERE c.customer_id = s.customer_id AND pl.code = s.plan_code;
            IF EXISTS (SELECT 1 FROM metering.charges chg
                       JOIN metering.events e ON e.customer_id = s.customer_id AND e.meter = chg.meter
                       WHERE chg.plan_code = s.plan_code AND e.due_at >= s.starts_at AND e.due_at < s.ends_at
                         AND NOT EXISTS (SELECT 1 FROM metering.billed_events b
                                         WHERE b.customer_id = e.customer_id AND b.event_id = e.event_id)
                         AND EXISTS (SELECT 1 FROM metering.invoices r
                                     WHERE r.subscription_id = s.subscription_id AND r.kind = 'regular'
                                       AND r.status <> 'void' AND r.period_start <= e.due_at AND e.due_at < r.period_end))
            THEN
                PERFORM metering._issue_invoice(s, p.period_start, p.period_end, p.full_start, p.full_end,
                                                'interim', as_of);
                made := made + 1;
            END IF;
        END IF;
    END LOOP;
    RETURN made;
END
$$;
COMMENT ON FUNCTION metering.close_periods(timestamptz) IS
    'Issues the regular invoice of every subscription period that ended at or before as_of minus '
    'metering.close_grace_period (default 1 hour); idempotent and safe to run concurrently with itself '
    'and with ingest (schedule it with pg_cron). Returns the number of invoices made.';

CREATE FUNCTION metering.bill_now(subscription_id bigint, as_of timestamptz DEFAULT now()) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s metering.subscriptions;
    p record;
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
    PERFORM 1 FROM metering.customers c WHERE c.customer_id = s.customer_id FOR UPDATE;
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
    RETURN metering._issue_invoice(s, p.period_start, p.period_end, p.full_start, p.full_end, 'interim', as_of);
END
$$;
COMMENT ON FUNCTION metering.bill_now(bigint, timestamptz) IS
    'Interim invoice: bills the unbilled usage due at or before as_of in the open period (and late usage '
    'of closed periods); the period''s regular invoice later bills only the rest. Returns the invoice_id.';

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
    PERFORM 1 FROM metering.customers c WHERE c.customer_id = inv.customer_id FOR UPDATE;
    SELECT * INTO inv FROM metering.invoices i WHERE i.invoice_id = void_invoice.invoice_id;
    IF inv.status = 'void' THEN
        RAISE EXCEPTION 'invoice % is already void', invoice_id USING ERRCODE = '55000';
    END IF;
    PERFORM metering._internal_change(true);
    UPDATE metering.invoices i SET status = 'void', voided_at = now(), void_reason = reason
    WHERE i.invoice_id = void_invoice.invoice_id;
    DELETE FROM metering.billed_events b WHERE b.invoice_id = void_invoice.invoice_id;
    PERFORM metering._internal_change(false);
END
$$;
COMMENT ON FUNCTION metering.void_invoice(bigint, text) IS
    'Voids an invoice (final): its usage is unbilled again and goes on the next invoice '
    '(a voided regular invoice is issued anew by close_periods).';

CREATE FUNCTION metering.delete_unbilled_event(customer_id text, event_id bigint) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    billed_by bigint;
BEGIN
    IF customer_id IS NULL OR event_id IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', CASE WHEN customer_id IS NULL THEN 'customer_id' ELSE 'event_id' END
            USING ERRCODE = '22004';
    END IF;
    PERFORM 1 FROM metering.customers c WHERE c.customer_id = delete_unbilled_event.customer_id FOR UPDATE;
    PERFORM 1 FROM metering.events e
    WHERE e.customer_id = delete_unbilled_event.customer_id AND e.event_id = delete_unbilled_event.event_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event % of customer_id "%" does not exist', event_id, customer_id USING ERRCODE = 'MT023';
    END IF;
    SELECT b.invoice_id INTO billed_by FROM metering.billed_events b
    WHERE b.customer_id = delete_unbilled_event.customer_id AND b.event_id = delete_unbilled_event.event_id;
    IF FOUND THEN
        RAISE EXCEPTION 'event % is billed by invoice %', event_id, billed_by USING ERRCODE = 'MT017',
            HINT = 'A billed event is corrected by a new event (negative where the meter allows it).';
    END IF;
    PERFORM metering._internal_change(true);
    DELETE FROM metering.events e
    WHERE e.customer_id = delete_unbilled_event.customer_id AND e.event_id = delete_unbilled_event.event_id;
    PERFORM metering._internal_change(false);
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
    -- Each branch first takes the locks that billing takes (the customers' rows), so that
    -- an invoice being issued concurrently is either seen here or issued after the change.
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
