-- pgTAP: three months of invoicing (January to March 2025, UTC), every amount
-- checked by hand. Two customers on one plan: 'auto' is issued directly, 'review'
-- waits in pending_review. Events arrive late, an interim invoice is issued in
-- February, and March is voided and issued anew.
-- Plan pro (USD): base fee 20 a month; api_calls at 0.10 with 100 free units
-- a month; storage_gb (max) volume tiers: up to 10 GB 1.00 each, above 0.50 each.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS metering;
SELECT plan(25);
SET LOCAL timezone = 'UTC';

SELECT metering.create_customer('auto'), metering.create_customer('review', auto_issue => false);
SELECT metering.create_meter('api_calls', 'count'), metering.create_meter('storage_gb', 'max');
SELECT metering.create_plan('pro', 'USD', '1 month', 20);
SELECT metering.add_charge('pro', 'api_calls', '{"model": "per_unit", "unit_price": "0.10", "free_units": 100}');
SELECT metering.add_charge('pro', 'storage_gb', '{"model": "volume", "tiers": [{"up_to": 10, "unit_price": 1}, {"up_to": null, "unit_price": "0.50"}]}');
CREATE TEMP TABLE subs AS
SELECT metering.subscribe('auto', 'pro', '2025-01-01') AS auto, metering.subscribe('review', 'pro', '2025-01-01') AS review;

-- January: auto 150 calls, storage peaks at 12 GB; review 40 calls, 5 GB.
SELECT metering.ingest('auto', 'api_calls', 1, '2025-01-02'::timestamptz + i * interval '1 hour') FROM generate_series(1, 150) i;
SELECT metering.ingest('auto', 'storage_gb', 12, '2025-01-10'), metering.ingest('auto', 'storage_gb', 6, '2025-01-20');
SELECT metering.ingest('review', 'api_calls', 1, '2025-01-03'::timestamptz + i * interval '1 hour') FROM generate_series(1, 40) i;
SELECT metering.ingest('review', 'storage_gb', 5, '2025-01-15');

SELECT is(metering.close_periods('2025-02-01 00:59'), 0, 'nothing closes within the 1-hour grace period');
SELECT is(metering.close_periods('2025-02-01 01:00'), 2, 'January closes for both customers');
SELECT is(metering.close_periods('2025-02-01 01:00'), 0, 'closing again issues nothing (idempotent)');
-- auto January: calls (150 - 100) x 0.10 = 5.00; storage max 12 -> volume tier 2: 12 x 0.50 = 6.00;
-- base 20.00: total 31.00. review: 40 calls free, 5 GB x 1.00 = 5.00, base 20.00: 25.00.
SELECT results_eq(
    $$SELECT customer_id COLLATE "default", kind, status, total FROM metering.invoices WHERE period_start = '2025-01-01' ORDER BY 1$$,
    $$VALUES ('auto'::text, 'regular'::text, 'issued'::text, 31.00::numeric),
             ('review', 'regular', 'pending_review', 25.00)$$,
    'January: auto issued 31.00, review waits for approval with 25.00');

-- February: 30 late calls for January arrive (due Jan 31) for auto, and February usage.
SELECT metering.ingest('auto', 'api_calls', 1, '2025-01-31 12:00'::timestamptz + i * interval '1 second') FROM generate_series(1, 30) i;
SELECT metering.ingest('auto', 'api_calls', 1, '2025-02-02'::timestamptz + i * interval '1 hour') FROM generate_series(1, 120) i;
SELECT metering.ingest('auto', 'storage_gb', 8, '2025-02-03');
-- Interim invoice on Feb 10 for auto: 120 calls so far (20 billable) = 2.00; storage 8 x 1.00 = 8.00;
-- the 30 late January calls, rated without free units: 3.00. Total 13.00.
CREATE TEMP TABLE interim AS SELECT metering.bill_now((SELECT auto FROM subs), '2025-02-10') AS id;
SELECT is((SELECT total FROM metering.invoices WHERE invoice_id = (SELECT id FROM interim)),
          13.00, 'interim invoice of February 10: 2.00 + 8.00 + late 3.00');
SELECT results_eq(
    $$SELECT it.kind, it.meter COLLATE "default", it.period_start::date, it.quantity, it.amount FROM metering.invoice_items it
      JOIN metering.invoices i USING (invoice_id) WHERE i.kind = 'interim' ORDER BY it.item_no$$,
    $$VALUES ('usage'::text, 'api_calls'::text, '2025-02-01'::date, 120::numeric, 2.00::numeric),
             ('usage', 'storage_gb', '2025-02-01', 8, 8.00),
             ('late_usage', 'api_calls', '2025-01-01', 30, 3.00)$$,
    'interim items: February usage so far and January''s late calls');
SELECT is((SELECT total FROM metering.invoices WHERE period_start = '2025-01-01' AND customer_id = 'auto'), 31.00::numeric,
    'the January invoice did not change');

-- More February usage after the interim invoice: 50 calls and a 15 GB peak.
SELECT metering.ingest('auto', 'api_calls', 1, '2025-02-20'::timestamptz + i * interval '1 minute') FROM generate_series(1, 50) i;
SELECT metering.ingest('auto', 'storage_gb', 15, '2025-02-21');
SELECT is(metering.close_periods('2025-03-01 01:00'), 2, 'February closes for both');
-- auto February regular: calls 170 -> (170 - 100) x 0.10 = 7.00, minus the interim 2.00 = 5.00;
-- storage max 15 -> 15 x 0.50 = 7.50, minus 8.00 = -0.50; base 20.00: total 24.50.
-- Interim + regular = 13.00 - 3.00 (late) + 24.50 = 34.50 = 7.00 + 7.50 + 20.00.
SELECT results_eq(
    $$SELECT it.kind, it.meter COLLATE "default", it.quantity, it.amount FROM metering.invoice_items it
      JOIN metering.invoices i USING (invoice_id)
      WHERE i.customer_id = 'auto' AND i.kind = 'regular' AND i.period_start = '2025-02-01' ORDER BY it.item_no$$,
    $$VALUES ('usage'::text, 'api_calls'::text, 170::numeric, 5.00::numeric),
             ('usage', 'storage_gb', 15, -0.50),
             ('base_fee', NULL, 1, 20.00)$$,
    'February regular invoice bills the rest of the period');
SELECT is((SELECT sum(it.amount) FROM metering.invoice_items it JOIN metering.invoices i USING (invoice_id)
           WHERE i.customer_id = 'auto' AND i.period_start = '2025-02-01' AND it.kind <> 'late_usage'),
          34.50::numeric, 'interim + regular February = rate of the whole period + base fee');
SELECT is((SELECT total FROM metering.invoices WHERE customer_id = 'review' AND period_start = '2025-02-01'),
          20.00::numeric, 'review February: base fee only (no usage)');

-- Review: approve January, leave February pending.
SELECT metering.approve_invoice(invoice_id) FROM metering.invoices WHERE customer_id = 'review' AND period_start = '2025-01-01';
SELECT results_eq(
    $$SELECT period_start::date, status, issued_at IS NOT NULL FROM metering.invoices WHERE customer_id = 'review' ORDER BY 1$$,
    $$VALUES ('2025-01-01'::date, 'issued'::text, true), ('2025-02-01', 'pending_review', false)$$,
    'approve_invoice issues January; February still waits');
SELECT throws_ok($$SELECT metering.approve_invoice((SELECT invoice_id FROM metering.invoices
                   WHERE customer_id = 'review' AND period_start = '2025-01-01'))$$,
    '55000', NULL, 'approving twice is refused');

-- March: auto 110 calls; the invoice is voided (wrong), then issued anew with a correction.
SELECT metering.ingest('auto', 'api_calls', 1, '2025-03-02'::timestamptz + i * interval '1 hour') FROM generate_series(1, 110) i;
SELECT is(metering.close_periods('2025-04-01 01:00'), 2, 'March closes for both');
-- auto March: (110 - 100) x 0.10 = 1.00; storage none -> tier 1 at 0 GB = 0.00; base 20.00: 21.00.
SELECT is((SELECT total FROM metering.invoices WHERE customer_id = 'auto' AND period_start = '2025-03-01'), 21.00::numeric,
    'March for auto: 21.00');
SELECT throws_ok($$UPDATE metering.invoices SET total = 0$$, 'MT017', NULL, 'issued invoices cannot be updated');
SELECT throws_ok($$DELETE FROM metering.invoice_items$$, 'MT017', NULL, 'invoice items cannot be deleted');
SELECT lives_ok($$SELECT metering.void_invoice((SELECT invoice_id FROM metering.invoices
                  WHERE customer_id = 'auto' AND period_start = '2025-03-01'), 'duplicate calls from a retry bug')$$,
    'void_invoice of March');
SELECT is((SELECT coalesce(sum(b.amount), 0) FROM metering.billed_lines b JOIN metering.subscriptions s USING (subscription_id)
           WHERE s.customer_id = 'auto' AND b.period_start = '2025-03-01'), 0::numeric,
    'a voided invoice bills nothing any more: March of auto is unbilled again');
-- Correction by a new event: 10 calls were counted twice; a count meter takes no negative
-- value, so the correction is to delete the 10 unbilled duplicates (admin function).
SELECT metering.delete_unbilled_event('auto', e.event_id)
FROM (SELECT event_id FROM metering.events WHERE customer_id = 'auto' AND meter = 'api_calls'
      AND due_at >= '2025-03-01' ORDER BY event_id DESC LIMIT 10) e;
SELECT is(metering.close_periods('2025-04-01 01:00'), 1, 'March is issued anew for auto');
-- 100 calls: all free; base 20.00.
SELECT results_eq(
    $$SELECT status, total FROM metering.invoices WHERE customer_id = 'auto' AND period_start = '2025-03-01' ORDER BY invoice_id$$,
    $$VALUES ('void'::text, 21.00::numeric), ('issued', 20.00)$$,
    'March: the void invoice and its replacement');
SELECT throws_ok($$SELECT metering.delete_unbilled_event('auto', (SELECT min(event_id) FROM metering.events))$$,
    'MT017', NULL, 'a billed event is never deleted');

-- Exactly once over the three months: what the live invoices billed per period and
-- charge is the period's whole quantity, and its amounts add up to the rate of it.
SELECT is((SELECT count(*) FROM metering.invoice_lines l
           LEFT JOIN metering.billed_lines b ON (b.subscription_id, b.period_start, b.charge_id)
                                              = (l.subscription_id, l.period_start, l.charge_id)
           WHERE l.kind = 'usage' AND l.period_end <= '2025-04-01' AND b.quantity IS DISTINCT FROM l.quantity),
          0::bigint, 'no usage is left unbilled once every period is closed');
SELECT is((SELECT count(*) FROM metering.billed_lines b JOIN metering.charges ch USING (charge_id)
           WHERE b.amount <> round(metering.rate(b.quantity, ch.pricing), 2)
             AND NOT EXISTS (SELECT 1 FROM metering.invoice_items it JOIN metering.invoices i USING (invoice_id)
                             WHERE i.subscription_id = b.subscription_id AND i.status <> 'void'
                               AND it.period_start = b.period_start AND it.charge_id = b.charge_id
                               AND it.kind = 'late_usage')),
          0::bigint, 'each period without late usage billed exactly the rate of its quantity');
-- auto: 31.00 + 13.00 + 24.50 + 20.00 = 88.50; review: 25.00 + 20.00 + 20.00 = 65.00.
SELECT results_eq(
    $$SELECT customer_id COLLATE "default", sum(total) FROM metering.invoices WHERE status <> 'void' GROUP BY 1 ORDER BY 1$$,
    $$VALUES ('auto'::text, 88.50::numeric), ('review', 65.00)$$,
    'totals billed per customer over three months');

SELECT * FROM finish();
ROLLBACK;
