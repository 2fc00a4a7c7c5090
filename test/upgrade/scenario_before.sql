-- Usage recorded and billed under 0.1.0, before ALTER EXTENSION metering UPDATE:
-- two customers (UTC and Tokyo), a count, a graduated sum and a counter, January
-- closed, late January usage billed on February's invoice, one invoice voided and
-- issued again, one invoice waiting for review.
SET timezone = 'UTC';
SELECT metering.create_customer('acme'), metering.create_customer('kaze', timezone => 'Asia/Tokyo', auto_issue => false);
SELECT metering.create_meter('api_calls', 'count'), metering.create_meter('gb_out', 'sum'),
       metering.create_meter('seats', 'counter');
SELECT metering.create_plan('pro', 'USD', '1 month', 20);
SELECT metering.add_charge('pro', 'api_calls', '{"model": "per_unit", "unit_price": "0.10"}'),
       metering.add_charge('pro', 'gb_out', '{"model": "graduated", "tiers": [{"up_to": 10, "unit_price": 0}, {"up_to": null, "unit_price": "0.25"}]}'),
       metering.add_charge('pro', 'seats', '{"model": "per_unit", "unit_price": 5}');
SELECT metering.subscribe('acme', 'pro', '2025-01-01'), metering.subscribe('kaze', 'pro', '2025-01-01 00:00+09');

SELECT count(metering.ingest(c, 'api_calls', 1, '2025-01-05'::timestamptz + i * interval '1 hour', c || '-jan-' || i))
FROM unnest(ARRAY['acme', 'kaze']) c, generate_series(1, 30) i;
SELECT metering.ingest('acme', 'gb_out', 12.5, '2025-01-10', 'acme-gb-1'), metering.ingest('kaze', 'gb_out', 3, '2025-01-11');
SELECT metering.counter_set('acme', 'seats', 4, '2025-01-02'), metering.counter_increment('acme', 'seats', 2, '2025-01-20'),
       metering.counter_increment('acme', 'seats', -1, '2025-01-25', 'seat-off-1');
SELECT * FROM metering.ingest_batch('[{"customer_id": "acme", "meter": "api_calls", "occurred_at": "2025-01-28T10:00:00Z", "idempotency_key": "b1"},
                                      {"customer_id": "kaze", "meter": "api_calls", "occurred_at": "2025-01-28T10:00:00+09:00"}]');
SELECT metering.close_periods('2025-02-02');

-- late January usage, then February
SELECT metering.ingest('acme', 'api_calls', 1, '2025-01-31 18:00', 'late-1'), metering.ingest('acme', 'gb_out', 2, '2025-01-31 19:00');
SELECT count(metering.ingest('acme', 'api_calls', 1, '2025-02-03'::timestamptz + i * interval '1 hour')) FROM generate_series(1, 7) i;
SELECT metering.counter_increment('acme', 'seats', 3, '2025-02-10');
SELECT metering.bill_now(s.subscription_id, '2025-02-15') FROM metering.subscriptions s WHERE s.customer_id = 'acme';
SELECT metering.close_periods('2025-03-02');
SELECT metering.void_invoice(invoice_id, 'wrong address') FROM metering.invoices
WHERE customer_id = 'acme' AND kind = 'regular' AND period_start = '2025-02-01';
SELECT metering.close_periods('2025-03-02');
SELECT metering.approve_invoice(min(invoice_id)) FROM metering.invoices WHERE customer_id = 'kaze';

-- Custom meters stored under 0.1.0 (none charged): one that 0.2.0 still rates, and one
-- whose expression calls a function of the database's own, which 0.1.0 let through and
-- 0.2.0 refuses (inserted as 0.1.0 stored it: today's library checks create_meter too).
CREATE FUNCTION public.upgrade_twice(v numeric) RETURNS numeric IMMUTABLE LANGUAGE sql AS 'SELECT v * 2';
SELECT metering.create_meter('gold_gb', 'custom',
    expression => 'sum((properties->>''gb'')::numeric) FILTER (WHERE properties->>''tier'' = ''gold'')');
INSERT INTO metering.meters (code, aggregation, allow_negative, expression, created_at)
VALUES ('twice', 'custom', false, 'sum(public.upgrade_twice(value))', '2025-01-01');
SELECT metering.ingest('acme', 'gold_gb', 1, '2025-02-20', properties => '{"gb": 2.5, "tier": "gold"}'),
       metering.ingest('acme', 'gold_gb', 1, '2025-02-21', properties => '{"gb": 4, "tier": "silver"}'),
       metering.ingest('acme', 'twice', 3, '2025-02-20');
