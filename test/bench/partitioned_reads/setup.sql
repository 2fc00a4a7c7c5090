-- Set-up of test/bench/partitioned_reads.sh (not timed).
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION metering;
INSERT INTO metering.customers (customer_id) SELECT 'c' || i FROM generate_series(1, 2000) i;
SELECT metering.create_meter('calls', 'count'), metering.create_meter('tokens', 'sum'), metering.create_meter('gauge', 'time_weighted');
SELECT metering.create_plan('pro', 'USD', '1 month', 10);
SELECT metering.add_charge('pro', m, '{"model": "graduated", "tiers": [{"up_to": 1000, "unit_price": 0.01}, {"up_to": null, "unit_price": 0.005}]}')
FROM unnest(ARRAY['calls', 'tokens', 'gauge']) m;
SELECT count(metering.subscribe('c' || i, 'pro', '2025-01-01')) FROM generate_series(1, 2000) i;
-- 480,000 events over 23 months (2025-01 .. 2026-11)
INSERT INTO metering.events_import (customer_id, meter, value, occurred_at, idempotency_key)
SELECT 'c' || (i % 2000 + 1), (ARRAY['calls', 'tokens', 'gauge'])[i % 3 + 1], i % 100 + 1,
       timestamptz '2025-01-01 00:00Z' + i * (interval '698 days' / 480000), 'k' || i
FROM generate_series(1, 480000) i;
SELECT metering.refresh_usage();
ANALYZE;
-- a tail of 2,000 events not rolled up yet, in the open month
INSERT INTO metering.events_import (customer_id, meter, value, occurred_at)
SELECT 'c' || (i % 2000 + 1), 'calls', 1, timestamptz '2026-12-01 00:00Z' + i * interval '1 second'
FROM generate_series(1, 2000) i;
