-- The billing history cannot be rewritten (issue 9): once a period is invoiced, the
-- plan, the subscription's start and anchor and the customer's time zone it was
-- computed from are frozen; events cannot be truncated; a close cannot run ahead of
-- time; a subscription cannot end before what is already invoiced. Every attempt is
-- made by the table owner (the strongest role short of dropping the triggers), and the
-- data is checked unchanged afterwards.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
SET timezone = 'UTC';
-- An attempt and its outcome on one line: ok, or SQLSTATE: message (hint).
CREATE FUNCTION pg_temp.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    code text; message text; hint text;
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN code || ': ' || message || CASE WHEN hint <> '' THEN ' (' || hint || ')' ELSE '' END;
END $$;
SELECT metering.create_customer('frozen'), metering.create_customer('fresh');
SELECT metering.create_meter('calls', 'count');
SELECT metering.create_plan('pro', 'USD', '1 month', 10), metering.create_plan('unused', 'USD', '1 month', 10);
SELECT metering.add_charge('pro', 'calls', '{"model": "per_unit", "unit_price": 1}');
SELECT metering.subscribe('frozen', 'pro', '2025-01-01') AS frozen \gset
SELECT metering.ingest('frozen', 'calls', 1, '2025-01-10');
SELECT metering.close_periods('2025-02-01 01:00');
CREATE TEMP TABLE before AS
SELECT (SELECT array_agg(p ORDER BY code) FROM metering.plans p) AS plans,
       (SELECT array_agg(c ORDER BY customer_id) FROM metering.customers c) AS customers,
       (SELECT array_agg(s) FROM metering.subscriptions s) AS subscriptions,
       (SELECT count(*) FROM metering.events) AS events;

-- A plan with an invoiced period: base fee, interval and currency are frozen.
SELECT pg_temp.try($$UPDATE metering.plans SET base_fee = 99 WHERE code = 'pro'$$);
SELECT pg_temp.try($$UPDATE metering.plans SET billing_interval = '1 week' WHERE code = 'pro'$$);
SELECT pg_temp.try($$UPDATE metering.plans SET currency = 'EUR' WHERE code = 'pro'$$);
-- A plan nobody was invoiced on may still change.
SELECT pg_temp.try($$UPDATE metering.plans SET base_fee = 12 WHERE code = 'unused'$$);
SELECT pg_temp.try($$UPDATE metering.plans SET base_fee = 10 WHERE code = 'unused'$$);

-- A customer with an invoice keeps its time zone; another may change it (checked).
SELECT pg_temp.try($$UPDATE metering.customers SET timezone = 'Asia/Tokyo' WHERE customer_id = 'frozen'$$);
SELECT pg_temp.try($$UPDATE metering.customers SET timezone = 'Mars/Olympus' WHERE customer_id = 'fresh'$$);
SELECT pg_temp.try($$UPDATE metering.customers SET timezone = 'Asia/Tokyo' WHERE customer_id = 'fresh'$$);
SELECT pg_temp.try($$UPDATE metering.customers SET timezone = 'UTC' WHERE customer_id = 'fresh'$$);
UPDATE metering.customers SET name = 'Frozen Ltd' WHERE customer_id = 'frozen';  -- not billing data
SELECT pg_temp.try($$UPDATE metering.customers SET name = NULL WHERE customer_id = 'frozen'$$);

-- A subscription with an invoiced period: start, anchor, plan and customer are frozen,
-- and it cannot end (nor be made to end) before what is invoiced.
SELECT pg_temp.try(format($$UPDATE metering.subscriptions SET billing_anchor = '2025-01-15' WHERE subscription_id = %s$$, :frozen));
SELECT pg_temp.try(format($$UPDATE metering.subscriptions SET starts_at = '2025-01-05' WHERE subscription_id = %s$$, :frozen));
SELECT pg_temp.try(format($$UPDATE metering.subscriptions SET plan_code = 'unused' WHERE subscription_id = %s$$, :frozen));
SELECT pg_temp.try(format($$UPDATE metering.subscriptions SET ends_at = '2025-01-20' WHERE subscription_id = %s$$, :frozen));
SELECT pg_temp.try(format($$SELECT metering.end_subscription(%s, '2025-01-20')$$, :frozen));
-- ... nor overlap another subscription of the customer
SELECT metering.subscribe('fresh', 'pro', '2025-01-01') AS fresh \gset
SELECT metering.end_subscription(:fresh, '2025-03-01');
SELECT metering.subscribe('fresh', 'pro', '2025-03-01') AS fresh2 \gset
SELECT pg_temp.try(format($$UPDATE metering.subscriptions SET ends_at = NULL WHERE subscription_id = %s$$, :fresh));

-- Events cannot be truncated, updated or deleted.
SELECT pg_temp.try($$TRUNCATE metering.events$$);
SELECT pg_temp.try($$UPDATE metering.events SET value = 100$$);
SELECT pg_temp.try($$DELETE FROM metering.events$$);

-- close_periods cannot close periods that have not ended.
SELECT pg_temp.try($$SELECT metering.close_periods(now() + interval '1 month')$$);
SELECT pg_temp.try($$SELECT metering.close_periods(now() + interval '1 second')$$);

-- Nothing changed.
SELECT (SELECT array_agg(p ORDER BY code) FROM metering.plans p) = b.plans AS plans_unchanged,
       (SELECT array_agg(c ORDER BY customer_id) FROM metering.customers c) = b.customers AS customers_unchanged,
       (SELECT array_agg(s) FROM metering.subscriptions s WHERE s.subscription_id = :frozen) = b.subscriptions AS subscription_unchanged,
       (SELECT count(*) FROM metering.events) = b.events AS events_unchanged
FROM before b;
-- After voiding its only invoice, the subscription may end earlier.
SELECT metering.void_invoice(invoice_id, 'moved the end') FROM metering.invoices WHERE subscription_id = :frozen;
SELECT pg_temp.try(format($$SELECT metering.end_subscription(%s, '2025-01-20')$$, :frozen));
SELECT metering.close_periods('2025-02-01 01:00');
SELECT period_start, period_end, status, total FROM metering.invoices WHERE subscription_id = :frozen ORDER BY invoice_id;
