-- Figure 4 set-up (not timed): invoice lines of one monthly period over 10 million
-- events. psql variables:
--   nevents   events due inside the month (10,000,000)
--   nside     events due in the neighbouring months, half before, half after (1,000,000)
-- The month is the one that started two months before now (UTC), so that the month
-- after it is over too and every customer's period of it has started.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET synchronize_seqscans = off;  -- the copies keep the physical order of metering.events

CREATE EXTENSION IF NOT EXISTS metering;
CREATE SCHEMA bench_il;
CREATE TABLE bench_il.params AS
SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '2 months')::timestamp AS month;

-- 10,000 customers in four time zones: a customer's September starts at its local
-- midnight, so period bounds differ by up to 14 hours between customers.
SELECT count(metering.create_customer('cust-' || i, timezone =>
           (ARRAY['UTC', 'America/New_York', 'Europe/Berlin', 'Asia/Tokyo'])[1 + i % 4]))
FROM generate_series(1, 10000) i;

-- Four meters of kinds a hand-written GROUP BY can express.
SELECT metering.create_meter('api_calls', 'count'),
       metering.create_meter('tokens', 'sum'),
       metering.create_meter('storage_gb', 'max'),
       metering.create_meter('active_users', 'unique_count', value_property => 'user');

-- One monthly plan (USD, base fee 49) with four charges, one per pricing model, each
-- with free units.
SELECT metering.create_plan('pro', 'USD', '1 month', 49);
SELECT metering.add_charge('pro', 'api_calls',
           '{"model": "graduated", "free_units": 100, "tiers": [
              {"up_to": 500, "unit_price": 0},
              {"up_to": 5000, "unit_price": "0.002"},
              {"up_to": null, "unit_price": "0.0015", "flat_price": 5}]}'),
       metering.add_charge('pro', 'tokens',
           '{"model": "volume", "free_units": 50000, "tiers": [
              {"up_to": 1000000, "unit_price": "0.00001"},
              {"up_to": 10000000, "unit_price": "0.000008", "flat_price": 2},
              {"up_to": null, "unit_price": "0.000005", "flat_price": 10}]}'),
       metering.add_charge('pro', 'storage_gb',
           '{"model": "per_unit", "unit_price": "0.125", "free_units": 5}'),
       metering.add_charge('pro', 'active_users',
           '{"model": "package", "package_size": 10, "package_price": 15, "free_units": 3}');

-- Every customer on the plan from its local midnight of the month before (anchor the
-- same): periods are the local calendar months. Figure 5 (start_at_month set) starts
-- them with the month, whose close it times.
\if :{?start_at_month}
SELECT count(metering.subscribe(c.customer_id, 'pro', p.month AT TIME ZONE c.timezone))
FROM metering.customers c, bench_il.params p;
\else
SELECT count(metering.subscribe(c.customer_id, 'pro', (p.month - interval '1 month') AT TIME ZONE c.timezone))
FROM metering.customers c, bench_il.params p;
\endif

-- The events (invoice_lines_events.sql), in one statement, or committed every :chunk rows.
\ir invoice_lines_events.sql
-- (the events give due_at: their months are made first, docs/design.md "Event store")
SELECT metering.create_event_partitions((month - interval '5 days') AT TIME ZONE 'UTC',
                                        (month + interval '1 month 5 days') AT TIME ZONE 'UTC')
FROM bench_il.params;
SELECT setseed(0.4242);
\if :{?chunk}
\else
    SELECT :nevents + :nside AS chunk \gset
\endif
CALL bench_il.load_events(:nevents, :nside, :chunk);

-- The baseline: the same events in a plain table of the same columns, in the same
-- physical order, with one index on (customer_id, meter, due_at) (the runs "without
-- index" turn index scans off instead of keeping a second 1.3 GB copy); and each
-- customer's periods of the three months, as a billing system keeps them, in a plain
-- table (local calendar months: the same bounds as metering's periods).
\if :{?no_plain}
VACUUM (FREEZE, ANALYZE) metering.events, metering.customers, metering.subscriptions, metering.charges,
    metering.meters, metering.plans;
\quit
\endif
CREATE TABLE bench_il.plain_events (LIKE metering.events INCLUDING DEFAULTS);
INSERT INTO bench_il.plain_events SELECT * FROM metering.events;
CREATE INDEX plain_events_key ON bench_il.plain_events (customer_id, meter, due_at);
CREATE TABLE bench_il.plain_periods (
    customer_id  text COLLATE "C" NOT NULL,
    period_start timestamptz NOT NULL,
    period_end   timestamptz NOT NULL,
    PRIMARY KEY (customer_id, period_start)
);
INSERT INTO bench_il.plain_periods
SELECT c.customer_id, (p.month + k * interval '1 month') AT TIME ZONE c.timezone,
       (p.month + (k + 1) * interval '1 month') AT TIME ZONE c.timezone
FROM metering.customers c, bench_il.params p, generate_series(-1, 1) k;

-- Same state for every table: all-visible, frozen, hint bits set, statistics.
VACUUM (FREEZE, ANALYZE) metering.events, bench_il.plain_events,
    metering.customers, metering.subscriptions, metering.charges, metering.meters, metering.plans,
    bench_il.plain_periods;
