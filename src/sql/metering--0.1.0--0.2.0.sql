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

-- end_subscription takes the customer's lock; close_periods refuses a future as_of and
-- reads the subscription again once it holds the customer's lock
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
    -- The customer's lock first, as billing takes it: no invoice is being issued for it
    -- while the end moves (the trigger subscriptions_freeze_billed refuses an end before
    -- what is already invoiced).
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

CREATE OR REPLACE FUNCTION metering.close_periods(as_of timestamptz DEFAULT now()) RETURNS int
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
REVOKE EXECUTE ON FUNCTION metering._billed_until(bigint), metering._freeze_billed() FROM PUBLIC;
