-- The invoice lifecycle: close_periods, interim billing (bill_now), late usage,
-- review, void, and the admin correction of an unbilled event. Amounts are
-- checked by hand in the comments.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
SET timezone = 'UTC';
SELECT metering.create_customer('auto'), metering.create_customer('review', auto_issue => false);
SELECT metering.create_meter('calls', 'count'), metering.create_meter('gb', 'sum');
SELECT metering.create_plan('pro', 'USD', '1 month', 10);
SELECT metering.add_charge('pro', 'calls', '{"model": "per_unit", "unit_price": "0.01", "free_units": 10}'),
       metering.add_charge('pro', 'gb', '{"model": "graduated", "tiers": [{"up_to": 10, "unit_price": 1}, {"up_to": null, "unit_price": "0.5"}]}');
SELECT metering.subscribe('auto', 'pro', '2025-01-01') AS auto,
       metering.subscribe('review', 'pro', '2025-01-15', '2025-01-01') AS review \gset
SELECT count(*) FROM (SELECT metering.ingest('auto', 'calls', 1, '2025-01-05') FROM generate_series(1, 30)) x;
SELECT metering.ingest('auto', 'gb', 8, '2025-01-06') > 0, metering.ingest('auto', 'gb', 4, '2025-01-20') > 0;

-- Interim invoice on Jan 10: 30 calls (20 billable) = 0.20; 8 GB = 8.00; total 8.20.
SELECT metering.bill_now(:auto, '2025-01-10') AS interim \gset
-- Within the grace period (1 hour by default) nothing closes; then January closes once.
SELECT metering.close_periods('2025-02-01 00:30');
SELECT metering.close_periods('2025-02-01 01:00');
SELECT metering.close_periods('2025-02-01 01:00');
-- Regular January of 'auto': calls rate(30) - 0.20 = 0.00; gb rate(12) = 10 + 2 x 0.5 = 11, minus 8 = 3.00;
-- base fee 10.00: 13.00. Interim + regular = 21.20 = rate of the whole period.
-- 'review' (Jan 15 - Feb 1 of a Jan 1 anchor, 17/31 of 10 = 5.48) waits for approval.
SELECT invoice_id, subscription_id, period_start, period_end, kind, status, total, issued_at IS NOT NULL AS issued
FROM metering.invoices ORDER BY invoice_id;
SELECT invoice_id, item_no, kind, meter, period_start, quantity, free_units, billable_quantity, amount
FROM metering.invoice_items ORDER BY invoice_id, item_no;

-- Late usage: 5 calls due Jan 31 arrive after January was invoiced; they go on the next
-- invoice, rated on their own quantity without free units: 5 x 0.01 = 0.05.
SELECT count(*) FROM (SELECT metering.ingest('auto', 'calls', 1, '2025-01-31') FROM generate_series(1, 5)) x;
SELECT metering.ingest('auto', 'gb', 3, '2025-02-03') > 0;
SELECT metering.close_periods('2025-03-01 01:00');
SELECT i.invoice_id, i.period_start AS invoice_period, it.kind, it.meter, it.period_start AS usage_period, it.quantity, it.amount
FROM metering.invoices i JOIN metering.invoice_items it USING (invoice_id)
WHERE i.subscription_id = :auto AND i.period_start = '2025-02-01' ORDER BY it.item_no;

-- Exactly once: what the live invoices billed per period and charge (the quantity of the
-- last line, the sum of the amounts): January's 35 calls and 12 GB, February's 3 GB.
SELECT b.subscription_id, b.period_start, ch.meter, b.quantity, b.amount
FROM metering.billed_lines b JOIN metering.charges ch USING (charge_id) ORDER BY 1, 2, 3;

-- Review and approval
SELECT metering.approve_invoice(invoice_id) FROM metering.invoices WHERE status = 'pending_review' AND period_start = '2025-01-15';
SELECT invoice_id, status, issued_at IS NOT NULL AS issued FROM metering.invoices WHERE subscription_id = :review ORDER BY 1;

-- Void the regular January invoice of 'auto': its usage is unbilled again, and
-- close_periods issues January anew (13.00 again: the late calls stay on February's).
SELECT invoice_id AS jan FROM metering.invoices WHERE subscription_id = :auto AND kind = 'regular' AND period_start = '2025-01-01' \gset
SELECT metering.void_invoice(:jan, 'wrong address');
-- what is left billed of January: the interim invoice and the late calls
SELECT b.period_start, ch.meter, b.quantity, b.amount
FROM metering.billed_lines b JOIN metering.charges ch USING (charge_id)
WHERE b.subscription_id = :auto AND b.period_start = '2025-01-01' ORDER BY 2;
SELECT metering.close_periods('2025-03-01 01:00');
SELECT invoice_id > :jan AS new_invoice, kind, status, total FROM metering.invoices
WHERE subscription_id = :auto AND period_start = '2025-01-01' ORDER BY invoice_id;

-- Corrections: an unbilled event may be deleted by an admin function; a billed one never.
SELECT metering.ingest('auto', 'calls', 1, '2025-03-05') AS unbilled \gset
SELECT metering.delete_unbilled_event('auto', :unbilled);
SELECT count(*) FROM metering.events WHERE event_id = :unbilled;
SELECT min(event_id) AS billed FROM metering.events \gset
SELECT metering.delete_unbilled_event('auto', :billed);
SELECT metering.delete_unbilled_event('auto', 999999);

-- Issued invoices, their items and the billing marks cannot be changed directly.
UPDATE metering.invoices SET total = 0;
DELETE FROM metering.invoices;
UPDATE metering.invoice_items SET amount = 0;
DELETE FROM metering.billed_lines;
DELETE FROM metering.events;

-- Errors
SELECT metering.close_periods(NULL);
SELECT metering.bill_now(NULL);
SELECT metering.bill_now(999);
SELECT metering.bill_now(:auto, 'infinity');
SELECT metering.bill_now(:auto, '2024-06-01');
SELECT metering.bill_now(:auto, '2025-01-20');
SELECT metering.approve_invoice(999);
SELECT metering.approve_invoice(:jan);
SELECT metering.void_invoice(:jan, 'again');
SELECT metering.void_invoice(:interim, '');
SELECT metering.void_invoice(999, 'x');
