-- metering.usage: a customer's quantity of a meter over [from, to), per aggregation kind.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
SELECT metering.create_customer('u1');
SELECT metering.create_meter('calls', 'count'),
       metering.create_meter('tokens', 'sum'),
       metering.create_meter('gb', 'sum', 'gb'),
       metering.create_meter('peak', 'max'),
       metering.create_meter('low', 'min'),
       metering.create_meter('tier', 'latest'),
       metering.create_meter('users', 'unique_count', 'user'),
       metering.create_meter('eu_calls', 'count', filter => '{"region": "eu"}'),
       metering.create_meter('seats', 'counter'),
       metering.create_meter('seat_hours', 'time_weighted');
SELECT count(*) FROM metering.ingest_batch('[
  {"customer_id": "u1", "meter": "calls", "occurred_at": "2025-11-01T00:00:00Z"},
  {"customer_id": "u1", "meter": "calls", "occurred_at": "2025-11-15T00:00:00Z"},
  {"customer_id": "u1", "meter": "calls", "occurred_at": "2025-12-01T00:00:00Z"},
  {"customer_id": "u1", "meter": "tokens", "value": 100, "occurred_at": "2025-11-02T00:00:00Z"},
  {"customer_id": "u1", "meter": "tokens", "value": -30, "occurred_at": "2025-11-03T00:00:00Z"},
  {"customer_id": "u1", "meter": "gb", "value": 1, "occurred_at": "2025-11-02T00:00:00Z", "properties": {"gb": 2.5}},
  {"customer_id": "u1", "meter": "gb", "value": 1, "occurred_at": "2025-11-03T00:00:00Z", "properties": {"gb": "4"}},
  {"customer_id": "u1", "meter": "peak", "value": 7, "occurred_at": "2025-11-02T00:00:00Z"},
  {"customer_id": "u1", "meter": "peak", "value": 9, "occurred_at": "2025-11-03T00:00:00Z"},
  {"customer_id": "u1", "meter": "low", "value": 7, "occurred_at": "2025-11-02T00:00:00Z"},
  {"customer_id": "u1", "meter": "low", "value": 3, "occurred_at": "2025-11-03T00:00:00Z"},
  {"customer_id": "u1", "meter": "tier", "value": 2, "occurred_at": "2025-11-05T00:00:00Z"},
  {"customer_id": "u1", "meter": "tier", "value": 3, "occurred_at": "2025-11-04T00:00:00Z"},
  {"customer_id": "u1", "meter": "tier", "value": 4, "occurred_at": "2025-11-05T00:00:00Z"},
  {"customer_id": "u1", "meter": "users", "occurred_at": "2025-11-02T00:00:00Z", "properties": {"user": "ann"}},
  {"customer_id": "u1", "meter": "users", "occurred_at": "2025-11-03T00:00:00Z", "properties": {"user": "bob"}},
  {"customer_id": "u1", "meter": "users", "occurred_at": "2025-11-04T00:00:00Z", "properties": {"user": "ann"}},
  {"customer_id": "u1", "meter": "eu_calls", "occurred_at": "2025-11-02T00:00:00Z", "properties": {"region": "eu"}},
  {"customer_id": "u1", "meter": "eu_calls", "occurred_at": "2025-11-02T00:00:00Z", "properties": {"region": "us"}},
  {"customer_id": "u1", "meter": "seats", "value": 3, "occurred_at": "2025-10-20T00:00:00Z"},
  {"customer_id": "u1", "meter": "seats", "value": 2, "occurred_at": "2025-11-02T00:00:00Z"},
  {"customer_id": "u1", "meter": "seats", "value": -1, "occurred_at": "2025-11-05T00:00:00Z"}
]');
SELECT metering.counter_set('u1', 'seats', 10, '2025-11-10Z');
SELECT metering.counter_increment('u1', 'seats', 5, '2025-11-20Z');

SELECT m AS meter, metering.usage('u1', m, '2025-11-01Z', '2025-12-01Z') AS november
FROM unnest(ARRAY['calls', 'tokens', 'gb', 'peak', 'low', 'tier', 'users', 'eu_calls', 'seats']) AS m;
-- half-open: the event at 2025-12-01 00:00 belongs to December
SELECT metering.usage('u1', 'calls', '2025-12-01Z', '2026-01-01Z') AS december;
-- a counter starts at 0 at from_ts: only the operations in the window count
SELECT metering.usage('u1', 'seats', '2025-11-01Z', '2025-11-09Z') AS before_set;
-- no events: 0 for count and sum, NULL where there is no value to report
SELECT metering.usage('u1', 'calls', '2020-01-01Z', '2020-02-01Z') AS calls,
       metering.usage('u1', 'peak', '2020-01-01Z', '2020-02-01Z') AS peak;

SELECT metering.usage('nobody', 'calls', '2025-11-01Z', '2025-12-01Z');
SELECT metering.usage('u1', 'nothing', '2025-11-01Z', '2025-12-01Z');
SELECT metering.usage('u1', 'calls', NULL, '2025-12-01Z');
SELECT metering.usage('u1', 'calls', '2025-12-01Z', '2025-11-01Z');
-- time_weighted: a gauge of 10 from Nov 1 00:00, 20 from Nov 1 12:00 (value x hours):
-- Nov 1 = 10 x 12 + 20 x 12 = 360; Nov 2 holds 20 all day = 480 (the value before the range);
-- before the first event the gauge is 0.
SELECT metering.ingest('u1', 'seat_hours', 10, '2025-11-01 00:00Z') > 0, metering.ingest('u1', 'seat_hours', 20, '2025-11-01 12:00Z') > 0;
SELECT metering.usage('u1', 'seat_hours', '2025-11-01Z', '2025-11-02Z') AS nov_1,
       metering.usage('u1', 'seat_hours', '2025-11-02Z', '2025-11-03Z') AS nov_2,
       metering.usage('u1', 'seat_hours', '2025-10-31Z', '2025-11-01Z') AS oct_31,
       metering.usage('u1', 'seat_hours', '2025-10-31 18:00Z', '2025-11-01 06:00Z') AS across;
