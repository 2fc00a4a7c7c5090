-- metering.invoice_lines and metering.current_usage: one line per subscription x
-- started period x charge, plus the base fee. Every amount is checked by hand
-- in the comments.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
SET timezone = 'UTC';
SELECT metering.create_meter('calls', 'count'), metering.create_meter('storage_gb', 'max'),
       metering.create_meter('seats', 'counter'), metering.create_meter('eu_calls', 'count', filter => '{"region": "eu"}');
SELECT metering.create_plan('pro', 'EUR', '1 month', 10), metering.create_plan('yen', 'JPY', '1 month', 1000),
       metering.create_plan('dinar', 'BHD', '1 month', 0);
SELECT metering.add_charge('pro', 'calls', '{"model": "per_unit", "unit_price": "0.0015", "free_units": 1000}'),
       metering.add_charge('pro', 'storage_gb', '{"model": "graduated", "tiers": [{"up_to": 10, "unit_price": 0, "flat_price": 5}, {"up_to": null, "unit_price": "0.25"}]}'),
       metering.add_charge('pro', 'seats', '{"model": "per_unit", "unit_price": 8}'),
       metering.add_charge('yen', 'calls', '{"model": "package", "package_size": 1000, "package_price": 150}'),
       metering.add_charge('dinar', 'eu_calls', '{"model": "per_unit", "unit_price": "0.0005"}');

-- Berlin customer from Jan 15 (local midnight), anchored on the 1st: Jan is a partial period.
SELECT metering.create_customer('acme', timezone => 'Europe/Berlin');
SELECT metering.subscribe('acme', 'pro', '2025-01-15 00:00 Europe/Berlin', '2025-01-01 00:00 Europe/Berlin') AS acme \gset
-- January: 1,500 calls, storage peaks at 12 GB, 3 seats then a set to 5 and one removed.
SELECT count(*) FROM metering.ingest_batch((
    SELECT jsonb_agg(jsonb_build_object('customer_id', 'acme', 'meter', 'calls',
                                        'occurred_at', '2025-01-20T10:00:00Z'::timestamptz + i * interval '1 second'))
    FROM generate_series(1, 1500) i));
SELECT metering.ingest('acme', 'storage_gb', 4, '2025-01-16 00:00+01'),
       metering.ingest('acme', 'storage_gb', 12, '2025-01-20 00:00+01'),
       metering.ingest('acme', 'storage_gb', 7, '2025-01-30 00:00+01');
SELECT metering.counter_increment('acme', 'seats', 3, '2025-01-16'),
       metering.counter_set('acme', 'seats', 5, '2025-01-20'),
       metering.counter_increment('acme', 'seats', -1, '2025-01-25');
-- An event at Feb 1 00:00 Berlin (Jan 31 23:00 UTC) belongs to February (half-open periods),
-- and so does one due in February though it occurred in January.
SELECT metering.ingest('acme', 'calls', 1, '2025-01-31 23:00+00'),
       metering.ingest('acme', 'calls', 1, '2025-01-31 22:59:59+00', due_at => '2025-02-10');
-- February: seats start again from 0 (counters reset per period): +2.
SELECT metering.counter_increment('acme', 'seats', 2, '2025-02-03');

-- January (Jan 15 - Feb 1, 17 of 31 days):
--   base fee 10 x 17/31 = 5.4838... -> 5.48
--   calls 1,500 - 1,000 free = 500 x 0.0015 = 0.75
--   storage max 12 GB: tier 1 flat 5 + 2 x 0.25 = 5.50
--   seats 5 - 1 = 4 x 8 = 32.00
-- February: base 10.00; calls 2 (free) 0.00; storage none: tier 1 flat 5.00; seats 2 x 8 = 16.00
SELECT period_start, period_end, kind, meter, quantity, free_units, billable_quantity, amount, currency
FROM metering.invoice_lines
WHERE subscription_id = :acme AND period_start < '2025-03-01'
ORDER BY period_start, kind, meter NULLS FIRST;
SELECT period_start, sum(amount) AS total FROM metering.invoice_lines
WHERE subscription_id = :acme AND period_start < '2025-03-01' GROUP BY 1 ORDER BY 1;

-- JPY (exponent 0): 2,001 calls = 3 packages x 150 = 450 yen; ends Feb 15: 14/28 of 1,000 = 500 yen.
SELECT metering.create_customer('tokyo', timezone => 'Asia/Tokyo');
SELECT metering.subscribe('tokyo', 'yen', '2025-02-01 00:00 Asia/Tokyo') AS tokyo \gset
SELECT count(*) FROM metering.ingest_batch((
    SELECT jsonb_agg(jsonb_build_object('customer_id', 'tokyo', 'meter', 'calls', 'occurred_at', '2025-02-03T00:00:00Z'))
    FROM generate_series(1, 2001)));
SELECT metering.end_subscription(:tokyo, '2025-02-15 00:00 Asia/Tokyo');
SELECT period_start, period_end, kind, quantity, amount, currency FROM metering.invoice_lines
WHERE subscription_id = :tokyo ORDER BY kind;

-- BHD (exponent 3), a filtered meter, rounding half away from zero:
-- 3 EU calls x 0.0005 = 0.0015 -> 0.002 (the US call is not counted).
SELECT metering.create_customer('manama', timezone => 'Asia/Bahrain');
SELECT metering.subscribe('manama', 'dinar', '2025-03-01 00:00 Asia/Bahrain') AS manama \gset
SELECT metering.ingest('manama', 'eu_calls', 1, '2025-03-02', properties => '{"region": "eu"}'),
       metering.ingest('manama', 'eu_calls', 1, '2025-03-03', properties => '{"region": "eu", "x": 1}'),
       metering.ingest('manama', 'eu_calls', 1, '2025-03-04', properties => '{"region": "eu"}'),
       metering.ingest('manama', 'eu_calls', 1, '2025-03-05', properties => '{"region": "us"}');
SELECT kind, meter, quantity, amount, currency FROM metering.invoice_lines
WHERE subscription_id = :manama AND period_start < '2025-03-15' ORDER BY kind;

-- current_usage: the open period only (a subscription starting now has one).
SELECT metering.create_customer('now');
SELECT metering.subscribe('now', 'pro') AS now_sub \gset
SELECT kind, meter, period_start <= now() AND now() < period_end AS open, quantity
FROM metering.current_usage WHERE subscription_id = :now_sub ORDER BY kind, meter NULLS FIRST;
-- billable items of a customer now
SELECT plan_code, meter, aggregation, pricing->>'model' AS model FROM metering.billable_items('now');

-- add_charge errors
SELECT metering.add_charge('nothing', 'calls', '{"model": "per_unit", "unit_price": 1}');
SELECT metering.add_charge('pro', 'nothing', '{"model": "per_unit", "unit_price": 1}');
SELECT metering.add_charge('pro', 'calls', '{"model": "per_unit", "unit_price": 1}');
SELECT metering.add_charge('yen', 'seats', NULL);
SELECT metering.add_charge('yen', 'seats', '{"model": "volume", "tiers": [{"up_to": 10, "unit_price": 1}]}');
-- charges and subscriptions are not changed in place
UPDATE metering.charges SET pricing = '{}';
DELETE FROM metering.subscriptions;

-- The set-based plan of every kind agrees with one line at a time (metering._quantity,
-- the per-line rule): 40 customers x 3 months x 10 meters of every kind, through a
-- parallel plan whose hash aggregation spills (tiny work_mem), then a sorted one.
SELECT metering.create_meter('k_sum', 'sum', 'n'), metering.create_meter('k_min', 'min'),
       metering.create_meter('k_uniq', 'unique_count', 'user'), metering.create_meter('k_uniq_v', 'unique_count'),
       metering.create_meter('k_latest', 'latest'), metering.create_meter('k_counter', 'counter'),
       metering.create_meter('k_tw', 'time_weighted'),
       metering.create_meter('k_custom', 'custom', expression => 'sum(value * 2)');
SELECT metering.create_plan('every', 'EUR', '1 month', 0);
SELECT count(metering.add_charge('every', code, '{"model": "per_unit", "unit_price": 1}'))
FROM metering.meters WHERE code IN ('calls', 'storage_gb', 'eu_calls', 'seats') OR code LIKE 'k\_%';
SELECT count(metering.create_customer('every-' || i, timezone => (ARRAY['UTC', 'Asia/Tokyo', 'America/New_York'])[1 + i % 3]))
     + count(metering.subscribe('every-' || i, 'every', '2025-01-01 00:00Z'))
FROM generate_series(1, 40) i;
SELECT setseed(0.5);
SELECT count(*) FROM (
    SELECT CASE WHEN m.code = 'seats' THEN
                CASE WHEN random() < 0.2 THEN metering.counter_set('every-' || c, 'seats', floor(random() * 9)::numeric, at)::text
                     ELSE metering.counter_increment('every-' || c, 'seats', floor(random() * 5)::numeric - 2, at)::text END
           ELSE metering.ingest('every-' || c, m.code, round((random() * 20)::numeric, 1 + (c % 2)), at,
                                properties => jsonb_build_object('n', floor(random() * 7), 'user', 'u' || floor(random() * 6),
                                                                 'region', (ARRAY['eu', 'us'])[1 + floor(random() * 2)::int]))::text
           END
    FROM generate_series(1, 4000) i,
         LATERAL (SELECT 1 + floor(random() * 40)::int AS c,
                         timestamptz '2025-01-01 00:00Z' + random() * interval '95 days' AS at) r,
         LATERAL (SELECT code FROM metering.meters
                  WHERE code IN ('calls', 'storage_gb', 'eu_calls', 'seats') OR code LIKE 'k\_%'
                  ORDER BY code OFFSET floor(random() * 12 + i * 0)::int LIMIT 1) m) x;
ANALYZE metering.events;
CREATE TEMP VIEW line_check AS
SELECT count(*) AS lines, count(DISTINCT l.meter) FILTER (WHERE l.quantity <> 0) AS meters_used,
       count(*) FILTER (WHERE l.quantity IS DISTINCT FROM
                        coalesce(metering._quantity(m, l.customer_id, l.period_start, l.period_end), 0)) AS differ
FROM metering.invoice_lines l JOIN metering.meters m ON m.code = l.meter
WHERE l.customer_id LIKE 'every-%' AND l.period_start < '2025-04-01';
BEGIN;
SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0; SET LOCAL work_mem = '64kB';
SELECT * FROM line_check;
SET LOCAL enable_hashagg = off;
SELECT * FROM line_check;
COMMIT;
