-- After ALTER EXTENSION metering UPDATE: what 0.1.0 billed is intact, and billing goes on.
-- Every amount is worked by hand from scenario_before.sql. Plan pro (USD): base fee 20;
-- api_calls 0.10 each; gb_out graduated, the first 10 free, then 0.25; seats a counter at 5.
SET timezone = 'UTC';
CREATE FUNCTION pg_temp.expect(what text, got anyelement, want anyelement) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF got IS DISTINCT FROM want THEN
        RAISE EXCEPTION 'upgrade scenario: % is %, expected %', what, got, want;
    END IF;
END $$;

-- acme January: 31 calls 3.10; 12.5 GB -> 2.5 x 0.25 = 0.625 -> 0.63; seats set 4, +2, -1 = 5 -> 25.00;
-- base 20.00: 48.73. kaze (Tokyo) January: 31 calls 3.10, 3 GB free, base 20.00: 23.10, approved.
SELECT pg_temp.expect('acme January total', (SELECT total FROM metering.invoices
       WHERE customer_id = 'acme' AND kind = 'regular' AND period_start = '2025-01-01 00:00Z'), 48.73);
SELECT pg_temp.expect('kaze January', (SELECT status || ' ' || total FROM metering.invoices
       WHERE customer_id = 'kaze' AND period_start = '2025-01-01 00:00+09'), 'issued 23.10');
-- acme interim of Feb 15: 7 calls 0.70, seats 3 -> 15.00, late January call 0.10, and the
-- late 2 GB: under 0.1.0, rated on their own in the free tier, 0.00 (15.80); billed by
-- 0.2.0 (test/restore/), at the margin, 12.5 -> 14.5 GB all above the free 10: 0.50 (16.30).
-- February regular (issued again after a void): 0.70 - 0.70, 15.00 - 15.00, base 20.00.
\if :{?interim}
\else
    \set interim 15.80
\endif
SELECT pg_temp.expect('acme interim', (SELECT total FROM metering.invoices WHERE customer_id = 'acme' AND kind = 'interim'), :interim);
SELECT pg_temp.expect('acme February regular invoices (live, void)',
       (SELECT string_agg(status || ' ' || total, ', ' ORDER BY invoice_id) FROM metering.invoices
        WHERE customer_id = 'acme' AND kind = 'regular' AND period_start = '2025-02-01 00:00Z'), 'void 20.00, issued 20.00');

-- A retry with the key of an event stored under 0.1.0 returns that event.
SELECT pg_temp.expect('retry of late-1', metering.ingest('acme', 'api_calls', 1, '2025-01-31 18:00', 'late-1'),
       (SELECT event_id FROM metering.events WHERE idempotency_key = 'late-1'));
SELECT pg_temp.expect('retry of b1', (SELECT status FROM metering.ingest_batch(
       '[{"customer_id": "acme", "meter": "api_calls", "occurred_at": "2025-01-28T10:00:00Z", "idempotency_key": "b1"}]')), 'duplicate');

-- Custom meters stored under 0.1.0: the allowed one is rated as before (gold only: 2.5);
-- the update went through with the other, which is refused when rated (42501).
SELECT pg_temp.expect('custom meter gold_gb', metering.usage('acme', 'gold_gb', '2025-02-01', '2025-03-01'), 2.5);
DO $$
BEGIN
    PERFORM metering.usage('acme', 'twice', '2025-02-01', '2025-03-01');
    RAISE EXCEPTION 'upgrade scenario: custom meter twice was rated';
EXCEPTION WHEN insufficient_privilege THEN NULL;
END
$$;

-- March: 5 calls, one seat, and a late February call (per unit: 0.10 under any rule).
SELECT count(metering.ingest('acme', 'api_calls', 1, '2025-03-03'::timestamptz + i * interval '1 day', 'mar-' || i))
FROM generate_series(1, 5) i;
SELECT metering.counter_increment('acme', 'seats', 1, '2025-03-04');
SELECT metering.ingest('acme', 'api_calls', 1, '2025-02-27 12:00', 'late-feb');
SELECT pg_temp.expect('March close', metering.close_periods('2025-04-02'), 2);
SELECT pg_temp.expect('March close again', metering.close_periods('2025-04-02'), 0);
-- acme March: 0.50 + 0 + 5.00 + late 0.10 + base 20.00 = 25.60; kaze March: base 20.00, pending review.
SELECT pg_temp.expect('acme March', (SELECT total FROM metering.invoices
       WHERE customer_id = 'acme' AND kind = 'regular' AND period_start = '2025-03-01 00:00Z'), 25.60);
SELECT pg_temp.expect('acme March items', (SELECT string_agg(kind || ' ' || coalesce(meter, '-') || ' ' || amount, ', ' ORDER BY item_no)
       FROM metering.invoice_items WHERE invoice_id = (SELECT invoice_id FROM metering.invoices
       WHERE customer_id = 'acme' AND kind = 'regular' AND period_start = '2025-03-01 00:00Z')),
       'usage api_calls 0.50, usage gb_out 0.00, usage seats 5.00, late_usage api_calls 0.10, base_fee - 20.00');
SELECT pg_temp.expect('kaze March', (SELECT status || ' ' || total FROM metering.invoices
       WHERE customer_id = 'kaze' AND period_start = '2025-03-01 00:00+09'), 'pending_review 20.00');
