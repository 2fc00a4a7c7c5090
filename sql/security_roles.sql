-- The threat model of docs/privileges.md, one role at a time: each role is given
-- exactly the GRANT lines of the docs, does what it is for, and then tries to go
-- beyond them. Every attempt shows ok or SQLSTATE: message.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
SET timezone = 'UTC';
CREATE FUNCTION pg_temp.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    code text; message text;
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
    RETURN code || ': ' || message;
END $$;
CREATE TEMP TABLE attempts (role text, statement text);
SELECT metering.create_customer('c1'), metering.create_meter('calls', 'count'), metering.create_meter('seats', 'counter');
SELECT metering.create_plan('pro', 'USD', '1 month', 10),
       metering.add_charge('pro', 'calls', '{"model": "per_unit", "unit_price": 1}') > 0 AS charged,
       metering.subscribe('c1', 'pro', '2025-01-01') AS sub \gset
SELECT metering.ingest('c1', 'calls', 1, '2025-01-10') AS billed_event \gset
SELECT metering.close_periods('2025-02-02');
GRANT ALL ON TABLE pg_temp.attempts TO PUBLIC;

-- The roles, with the GRANT lines of docs/privileges.md.
-- any role, even one given USAGE on the schema, has only the pure functions
CREATE ROLE regress_public;
GRANT USAGE ON SCHEMA metering TO regress_public;
CREATE ROLE regress_app;
GRANT USAGE ON SCHEMA metering TO regress_app;
GRANT EXECUTE ON FUNCTION
    metering.ingest(text, text, numeric, timestamptz, text, jsonb, timestamptz),
    metering.ingest_batch(jsonb),
    metering.counter_increment(text, text, numeric, timestamptz, text),
    metering.counter_set(text, text, numeric, timestamptz, text),
    metering.counter_value(text, text, timestamptz)
TO regress_app;
CREATE ROLE regress_loader;
GRANT USAGE ON SCHEMA metering TO regress_loader;
GRANT INSERT ON metering.events_import TO regress_loader;
CREATE ROLE regress_reporter;
GRANT USAGE ON SCHEMA metering TO regress_reporter;
GRANT SELECT ON ALL TABLES IN SCHEMA metering TO regress_reporter;
CREATE ROLE regress_finance;
GRANT USAGE ON SCHEMA metering TO regress_finance;
GRANT SELECT ON ALL TABLES IN SCHEMA metering TO regress_finance;
GRANT EXECUTE ON FUNCTION
    metering.create_customer(text, text, text, text, boolean),
    metering.create_meter(text, text, text, jsonb, boolean, text),
    metering.create_plan(text, text, interval, numeric),
    metering.add_charge(text, text, jsonb),
    metering.subscribe(text, text, timestamptz, timestamptz),
    metering.end_subscription(bigint, timestamptz),
    metering.billing_periods(bigint, timestamptz, timestamptz),
    metering.usage(text, text, timestamptz, timestamptz),
    metering.billable_items(text),
    metering.close_periods(timestamptz),
    metering.bill_now(bigint, timestamptz),
    metering.approve_invoice(bigint),
    metering.void_invoice(bigint, text),
    metering.delete_unbilled_event(text, bigint)
TO regress_finance;

-- What each role tries beyond its grants (and, first, what it is for).
INSERT INTO attempts VALUES
    ('regress_public', $$SELECT metering.rate(1, '{"model": "per_unit", "unit_price": 1}')$$),
    ('regress_public', $$SELECT metering.ingest('c1', 'calls')$$),
    ('regress_public', $$SELECT metering.ingest_batch('[]')$$),
    ('regress_public', $$SELECT metering.counter_value('c1', 'seats')$$),
    ('regress_public', $$SELECT count(*) FROM metering.events$$),
    ('regress_public', $$SELECT count(*) FROM metering.invoice_lines$$),
    ('regress_public', $$SET metering.max_future_skew = '1d'$$),
    ('regress_app', $$SELECT metering.ingest('c1', 'calls', 1, '2025-02-10') > 0$$),
    ('regress_app', $$SELECT metering.counter_increment('c1', 'seats', 2, '2025-02-10')$$),
    ('regress_app', $$SELECT count(*) FROM metering.events$$),
    ('regress_app', $$SELECT count(*) FROM metering.customers$$),
    ('regress_app', $$INSERT INTO metering.events (customer_id, meter, value, occurred_at) VALUES ('c1', 'calls', 1000000, now())$$),
    ('regress_app', $$INSERT INTO metering.events_import (customer_id, meter, value, occurred_at) VALUES ('c1', 'calls', 1, now())$$),
    ('regress_app', $$SELECT metering.create_customer('c2')$$),
    ('regress_app', $$SELECT metering.usage('c1', 'calls', '2025-01-01', '2025-02-01')$$),
    ('regress_app', $$SELECT metering.close_periods('2025-03-02')$$),
    ('regress_app', $$SELECT metering._internal_change(true)$$),
    ('regress_app', $$SELECT metering.rate(1, '{"model": "per_unit", "unit_price": 1}')$$),
    ('regress_app', $$SET metering.max_future_skew = '1d'$$),
    ('regress_loader', $$INSERT INTO metering.events_import (customer_id, meter, value, occurred_at) VALUES ('c1', 'calls', 1, '2025-02-11')$$),
    ('regress_loader', $$SELECT count(*) FROM metering.events$$),
    ('regress_loader', $$SELECT count(*) FROM metering.events_import$$),
    ('regress_loader', $$INSERT INTO metering.events (customer_id, meter, value, occurred_at) VALUES ('c1', 'calls', 1, now())$$),
    ('regress_loader', $$SELECT metering.ingest('c1', 'calls')$$),
    ('regress_reporter', $$SELECT count(*) > 0 FROM metering.invoice_lines$$),
    ('regress_reporter', $$SELECT total FROM metering.invoices$$),
    ('regress_reporter', $$INSERT INTO metering.events (customer_id, meter, value, occurred_at) VALUES ('c1', 'calls', 1, now())$$),
    ('regress_reporter', $$UPDATE metering.invoices SET total = 0$$),
    ('regress_reporter', $$SELECT metering.close_periods('2025-03-02')$$),
    ('regress_reporter', $$SELECT metering.create_customer('c2')$$),
    ('regress_reporter', $$SELECT metering.void_invoice(1, 'mine')$$),
    ('regress_finance', $$SELECT metering.create_customer('c3')$$),
    ('regress_finance', $$SELECT metering.usage('c1', 'calls', '2025-01-01', '2025-02-01')$$),
    ('regress_finance', $$SELECT metering.close_periods('2025-03-02')$$),
    ('regress_finance', $$UPDATE metering.invoices SET total = 0$$),
    ('regress_finance', $$DELETE FROM metering.invoice_items$$),
    ('regress_finance', $$INSERT INTO metering.events (customer_id, meter, value, occurred_at) VALUES ('c1', 'calls', 1, now())$$),
    ('regress_finance', $$SELECT metering.delete_unbilled_event('c1', $$ || :billed_event || $$)$$),
    ('regress_finance', $$SELECT metering.close_periods(now() + interval '1 day')$$),
    ('regress_finance', $$SET metering.close_grace_period = 0$$),
    ('regress_finance', $$SELECT metering._issue_invoices(ARRAY[1], now(), now(), 'regular')$$),
    ('regress_finance', $$SELECT metering._rollup_rebuild('c1')$$),
    ('regress_finance', $$DELETE FROM metering.late_groups$$),
    ('regress_finance', $$UPDATE metering.rollup_state SET snapshot = '1:1:'$$),
    ('regress_app', $$SELECT metering.refresh_usage()$$),
    -- the write log says where the steps read: deleting a row would hide events from billing
    ('regress_finance', $$DELETE FROM metering.event_writes$$),
    ('regress_app', $$INSERT INTO metering.event_writes VALUES (1, 'metering.events', 0, '-infinity', 'infinity', 0)$$),
    ('regress_reporter', $$SELECT count(*) FROM metering.event_writes$$),
    ('regress_reporter', $$SELECT count(*) FROM metering._unrolled_months$$),
    ('regress_reporter', $$SELECT count(*) FROM metering._tail_months('1:1:', NULL)$$),
    ('regress_public', $$SELECT count(*) FROM metering._unrolled_months$$),
    ('regress_finance', $$SELECT metering._internal_change(true)$$),
    ('superuser', $$UPDATE metering.invoices SET total = 0$$),
    ('superuser', $$DELETE FROM metering.invoice_items$$),
    ('superuser', $$TRUNCATE metering.billed_lines$$),
    ('superuser', $$SELECT metering.delete_unbilled_event('c1', $$ || :billed_event || $$)$$);

\pset format unaligned
SELECT a.role, a.statement, r.outcome
-- superuser: the session's own role (RESET ROLE), whatever installcheck connects as
FROM attempts a, LATERAL (SELECT set_config('role', CASE a.role WHEN 'superuser' THEN 'none' ELSE a.role END, true)) s,
     LATERAL (SELECT pg_temp.try(a.statement) AS outcome) r;
\pset format aligned
RESET ROLE;
-- Nothing of it changed the history: the January invoice and its event are intact.
SELECT i.total, i.status, (SELECT count(*) FROM metering.events) AS events FROM metering.invoices i;

DROP OWNED BY regress_public, regress_app, regress_loader, regress_reporter, regress_finance;
DROP ROLE regress_public, regress_app, regress_loader, regress_reporter, regress_finance;
