-- Counters: increments (negative = decrement), sets, values at any instant.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
SELECT metering.create_customer('acme');
SELECT metering.create_meter('seats', 'counter'), metering.create_meter('calls', 'count');

SELECT metering.counter_increment('acme', 'seats', 5, '2025-11-01 09:00Z');
SELECT metering.counter_increment('acme', 'seats', 2, '2025-11-01 10:00Z');
SELECT metering.counter_increment('acme', 'seats', -3, '2025-11-02 10:00Z');     -- decrement
SELECT metering.counter_set('acme', 'seats', 10, '2025-11-03 00:00Z');
SELECT metering.counter_increment('acme', 'seats', 1, '2025-11-04 00:00Z');
SELECT metering.counter_value('acme', 'seats', '2025-11-01 09:30Z') AS at_0930,
       metering.counter_value('acme', 'seats', '2025-11-02 10:00Z') AS at_decrement,
       metering.counter_value('acme', 'seats', '2025-11-03 12:00Z') AS after_set,
       metering.counter_value('acme', 'seats') AS now,
       metering.counter_value('acme', 'seats', '2025-10-01Z') AS before_any;

-- out-of-order operations apply in `at` order: a late increment before the set
-- changes nothing after the set; a late set rewrites every later value
SELECT metering.counter_increment('acme', 'seats', 100, '2025-11-02 12:00Z');
SELECT metering.counter_value('acme', 'seats', '2025-11-04 01:00Z');
SELECT metering.counter_set('acme', 'seats', 0, '2025-11-01 09:30Z');
SELECT metering.counter_value('acme', 'seats', '2025-11-01 11:00Z') AS after_late_set;

-- operations at the same instant apply in the order they were recorded
SELECT metering.counter_set('acme', 'seats', 7, '2025-11-05Z'), metering.counter_increment('acme', 'seats', 1, '2025-11-05Z');

-- idempotent operations
SELECT metering.counter_increment('acme', 'seats', 1, '2025-11-06Z', 'op-1');
SELECT metering.counter_increment('acme', 'seats', 1, '2025-11-06Z', 'op-1');
SELECT metering.counter_set('acme', 'seats', 1, '2025-11-06Z', 'op-1');          -- same key, another operation

-- the history is auditable: every operation is an event
SELECT value, occurred_at, op FROM metering.events WHERE meter = 'seats' ORDER BY occurred_at, event_id;

-- bad input
SELECT metering.counter_increment('acme', 'calls');            -- not a counter
SELECT metering.counter_value('acme', 'calls');
SELECT metering.counter_set('nobody', 'seats', 1);
SELECT metering.counter_increment('acme', 'nothing');
SELECT metering.counter_increment('acme', 'seats', NULL);
SELECT metering.counter_set('acme', 'seats', NULL);
SELECT metering.counter_set('acme', 'seats', 'NaN');
SELECT metering.counter_increment('acme', 'seats', 1, NULL);
SELECT metering.counter_increment('acme', 'seats', 1, '2999-01-01Z');
SELECT metering.counter_value('acme', 'seats', NULL);
SELECT metering.ingest('acme', 'seats', 4, '2025-11-07Z', due_at => '2025-12-01Z');   -- a counter's due_at is its instant
SELECT metering.ingest('acme', 'seats', 4, '2025-11-07Z');                            -- plain ingest = increment
SELECT metering.counter_value('acme', 'seats', '2025-11-07Z');
