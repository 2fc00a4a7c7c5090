-- Every row a user can see, in a stable order: kept as it was by ALTER EXTENSION UPDATE.
SET timezone = 'UTC';
\pset tuples_only on
\pset format unaligned
SELECT 'customer', customer_id, name, email, timezone, auto_issue, created_at FROM metering.customers ORDER BY 2;
SELECT 'meter', code, aggregation, value_property, filter, allow_negative, expression, created_at FROM metering.meters ORDER BY 2;
SELECT 'plan', code, currency, billing_interval, base_fee, created_at FROM metering.plans ORDER BY 2;
SELECT 'charge', charge_id, plan_code, meter, pricing, created_at FROM metering.charges ORDER BY 2;
SELECT 'subscription', subscription_id, customer_id, plan_code, starts_at, ends_at, billing_anchor, created_at
FROM metering.subscriptions ORDER BY 2;
SELECT 'event', event_id, customer_id, meter, value, occurred_at, due_at, ingested_at, idempotency_key, properties, op
FROM metering.events ORDER BY 2;
SELECT 'invoice', invoice_id, subscription_id, customer_id, period_start, period_end, kind, status, currency, total,
       issued_at, as_of, created_at, voided_at, void_reason
FROM metering.invoices ORDER BY 2;
SELECT 'item', invoice_id, item_no, charge_id, meter, kind, description, period_start, period_end, quantity, free_units,
       billable_quantity, amount
FROM metering.invoice_items ORDER BY 2, 3;
SELECT 'line', subscription_id, customer_id, period_start, period_end, charge_id, meter, description, quantity, free_units,
       billable_quantity, amount, currency, kind
FROM metering.invoice_lines WHERE period_start < '2025-03-01' ORDER BY 2, 4, 6 NULLS FIRST;
