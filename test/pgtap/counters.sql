-- pgTAP: counter semantics (SPEC section 3, Counters). Increments (negative =
-- decrement), set replaces the value at its instant, later increments add to
-- it; operations are events applied in `at` order (late and out-of-order ones
-- included), operations at the same instant in recording order; idempotent.
-- No subscriptions here: counter_value is the value over the whole history.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS metering;
SELECT plan(70);

SET LOCAL timezone = 'UTC';

\o /dev/null
SELECT metering.create_customer(c) FROM unnest(ARRAY['inc', 'ooo', 'same', 'idem']) AS c;
SELECT metering.create_meter('seats', 'counter'), metering.create_meter('calls', 'count');
\o

-- 1. Increments, decrements, set, later increments (customer inc) ------------------
SELECT is(metering.counter_value('inc', 'seats', '2025-11-01 08:00Z'), 0::numeric,
    'a counter with no operations is 0');
SELECT is(metering.counter_increment('inc', 'seats', 5, '2025-11-01 09:00Z'), 5::numeric, '+5 at Nov 1 09:00 -> 5');
SELECT is(metering.counter_increment('inc', 'seats', 2, '2025-11-01 10:00Z'), 7::numeric, '+2 at Nov 1 10:00 -> 7');
SELECT is(metering.counter_increment('inc', 'seats', at => '2025-11-01 11:00Z'), 8::numeric,
    'by defaults to 1: +1 at Nov 1 11:00 -> 8');
SELECT is(metering.counter_increment('inc', 'seats', -3, '2025-11-02 10:00Z'), 5::numeric,
    'a negative increment decrements: -3 at Nov 2 10:00 -> 5');
SELECT is(metering.counter_set('inc', 'seats', 10, '2025-11-03 00:00Z'), 10::numeric,
    'set 10 at Nov 3 replaces 5 -> 10');
SELECT is(metering.counter_increment('inc', 'seats', 4, '2025-11-04 00:00Z'), 14::numeric,
    'an increment after a set adds to it: 10 + 4 -> 14');
SELECT is(metering.counter_increment('inc', 'seats', -4, '2025-11-05 00:00Z'), 10::numeric, '-4 at Nov 5 -> 10');
SELECT is(metering.counter_value('inc', 'seats', '2025-11-01 08:59:59.999999Z'), 0::numeric,
    'value just before the first operation is 0');
SELECT is(metering.counter_value('inc', 'seats', '2025-11-01 09:00Z'), 5::numeric,
    'value at the exact instant of an operation includes it');
SELECT is(metering.counter_value('inc', 'seats', '2025-11-01 09:59:59Z'), 5::numeric, 'value at Nov 1 09:59:59 = 5');
SELECT is(metering.counter_value('inc', 'seats', '2025-11-01 10:00Z'), 7::numeric, 'value at Nov 1 10:00 = 5 + 2 = 7');
SELECT is(metering.counter_value('inc', 'seats', '2025-11-02 09:00Z'), 8::numeric, 'value at Nov 2 09:00 = 5 + 2 + 1 = 8');
SELECT is(metering.counter_value('inc', 'seats', '2025-11-02 10:00Z'), 5::numeric, 'value at Nov 2 10:00 = 8 - 3 = 5');
SELECT is(metering.counter_value('inc', 'seats', '2025-11-03 23:59Z'), 10::numeric, 'value at Nov 3 23:59 = set 10');
SELECT is(metering.counter_value('inc', 'seats', '2025-11-04 00:00Z'), 14::numeric, 'value at Nov 4 = 10 + 4 = 14');
SELECT is(metering.counter_value('inc', 'seats'), 10::numeric, 'value now (default at) = 10 + 4 - 4 = 10');
-- usage over November: starts at 0 on Nov 1; last set 10 (Nov 3), then +4 -4 = 10
SELECT is(metering.usage('inc', 'seats', '2025-11-01Z', '2025-12-01Z'), 10::numeric,
    'usage over November = value at period end = 10');
-- usage over [Nov 1, Nov 3): no set in the window: 5 + 2 + 1 - 3 = 5
SELECT is(metering.usage('inc', 'seats', '2025-11-01Z', '2025-11-03Z'), 5::numeric,
    'usage over [Nov 1, Nov 3) = 5 + 2 + 1 - 3 = 5 (the set at Nov 3 is outside the half-open window)');
SELECT is((SELECT array_agg(op || ' ' || value ORDER BY occurred_at, event_id) FROM metering.events
           WHERE customer_id = 'inc' AND meter = 'seats'),
    ARRAY['increment 5', 'increment 2', 'increment 1', 'increment -3', 'set 10', 'increment 4', 'increment -4'],
    'every operation is stored as an event (auditable history)');

-- 2. Out-of-order operations are applied in `at` order (customer ooo) ----------------
SELECT is(metering.counter_increment('ooo', 'seats', 5, '2025-11-10Z'), 5::numeric, 'ooo: +5 at Nov 10 -> 5');
SELECT is(metering.counter_increment('ooo', 'seats', 3, '2025-11-20Z'), 8::numeric, 'ooo: +3 at Nov 20 -> 8');
-- a late set between the two increments
SELECT is(metering.counter_set('ooo', 'seats', 100, '2025-11-15Z'), 100::numeric,
    'ooo: late set 100 at Nov 15 (recorded after Nov 20) returns 100');
SELECT is(ARRAY[metering.counter_value('ooo', 'seats', '2025-11-10Z'),
                metering.counter_value('ooo', 'seats', '2025-11-15Z'),
                metering.counter_value('ooo', 'seats', '2025-11-20Z'),
                metering.counter_value('ooo', 'seats', '2025-11-25Z')],
    ARRAY[5, 100, 103, 103]::numeric[],
    'ooo after the late set: Nov 10 = 5, Nov 15 = 100, Nov 20 = 100 + 3 = 103, Nov 25 = 103');
-- a late increment before everything
SELECT is(metering.counter_increment('ooo', 'seats', 7, '2025-11-05Z'), 7::numeric,
    'ooo: late +7 at Nov 5 returns its own instant''s value 7');
SELECT is(ARRAY[metering.counter_value('ooo', 'seats', '2025-11-05Z'),
                metering.counter_value('ooo', 'seats', '2025-11-10Z'),
                metering.counter_value('ooo', 'seats', '2025-11-15Z'),
                metering.counter_value('ooo', 'seats', '2025-11-20Z')],
    ARRAY[7, 12, 100, 103]::numeric[],
    'ooo: Nov 5 = 7, Nov 10 = 7 + 5 = 12, the set at Nov 15 still gives 100, Nov 20 = 103');
-- a late increment just before the set changes nothing after the set
SELECT is(metering.counter_increment('ooo', 'seats', 1000, '2025-11-12Z'), 1012::numeric,
    'ooo: late +1000 at Nov 12 -> 7 + 5 + 1000 = 1012');
SELECT is(ARRAY[metering.counter_value('ooo', 'seats', '2025-11-12Z'),
                metering.counter_value('ooo', 'seats', '2025-11-14 23:59:59Z'),
                metering.counter_value('ooo', 'seats', '2025-11-15Z'),
                metering.counter_value('ooo', 'seats', '2025-11-20Z')],
    ARRAY[1012, 1012, 100, 103]::numeric[],
    'ooo: 1012 until the set, then 100, then 103');
-- a second late set after the first one, before the Nov 20 increment
SELECT is(metering.counter_set('ooo', 'seats', 50, '2025-11-18Z'), 50::numeric, 'ooo: late set 50 at Nov 18 -> 50');
-- a late decrement between the two sets
SELECT is(metering.counter_increment('ooo', 'seats', -3, '2025-11-16Z'), 97::numeric,
    'ooo: late -3 at Nov 16 -> 100 - 3 = 97');
SELECT is(ARRAY[metering.counter_value('ooo', 'seats', '2025-11-15Z'),
                metering.counter_value('ooo', 'seats', '2025-11-16Z'),
                metering.counter_value('ooo', 'seats', '2025-11-18Z'),
                metering.counter_value('ooo', 'seats', '2025-11-20Z'),
                metering.counter_value('ooo', 'seats', '2025-11-30Z')],
    ARRAY[100, 97, 50, 53, 53]::numeric[],
    'ooo: Nov 15 = 100, Nov 16 = 97, Nov 18 = set 50, Nov 20 = 50 + 3 = 53, Nov 30 = 53');
-- usage: last set in November is 50 (Nov 18), then +3 (Nov 20) = 53
SELECT is(metering.usage('ooo', 'seats', '2025-11-01Z', '2025-12-01Z'), 53::numeric, 'ooo: usage over November = 53');
SELECT is((SELECT array_agg(op || ' ' || value ORDER BY occurred_at, event_id) FROM metering.events
           WHERE customer_id = 'ooo'),
    ARRAY['increment 7', 'increment 5', 'increment 1000', 'set 100', 'increment -3', 'set 50', 'increment 3'],
    'ooo: the stored history in at order');

-- 3. Operations at the same instant apply in recording order (customer same) ---------
SELECT is(metering.counter_set('same', 'seats', 7, '2025-11-05Z'), 7::numeric, 'same Nov 5: set 7 -> 7');
SELECT is(metering.counter_increment('same', 'seats', 1, '2025-11-05Z'), 8::numeric,
    'same Nov 5: then +1 at the same instant -> 8');
SELECT is(metering.counter_value('same', 'seats', '2025-11-05Z'), 8::numeric, 'same: value at Nov 5 = 8 (set, then +1)');
SELECT is(metering.counter_increment('same', 'seats', 1, '2025-11-06Z'), 9::numeric, 'same Nov 6: +1 -> 9');
SELECT is(metering.counter_set('same', 'seats', 3, '2025-11-06Z'), 3::numeric, 'same Nov 6: then set 3 -> 3');
SELECT is(metering.counter_value('same', 'seats', '2025-11-06Z'), 3::numeric, 'same: value at Nov 6 = 3 (+1, then set 3)');
SELECT is(metering.counter_increment('same', 'seats', 2, '2025-11-07Z'), 5::numeric, 'same Nov 7: +2 -> 3 + 2 = 5');
SELECT is(metering.counter_set('same', 'seats', 50, '2025-11-07Z'), 50::numeric, 'same Nov 7: then set 50 -> 50');
SELECT is(metering.counter_increment('same', 'seats', 5, '2025-11-07Z'), 55::numeric, 'same Nov 7: then +5 -> 55');
SELECT is(metering.counter_increment('same', 'seats', -5, '2025-11-07Z'), 50::numeric, 'same Nov 7: then -5 -> 50');
-- late operations recorded at an instant that already has operations come after them
SELECT is(metering.counter_set('same', 'seats', 0, '2025-11-05Z'), 0::numeric,
    'same: a later-recorded set 0 at Nov 5 applies after set 7 and +1 -> 0');
SELECT is(metering.counter_increment('same', 'seats', 10, '2025-11-06Z'), 13::numeric,
    'same: a later-recorded +10 at Nov 6 applies after +1 and set 3 -> 13');
SELECT is(ARRAY[metering.counter_value('same', 'seats', '2025-11-05Z'),
                metering.counter_value('same', 'seats', '2025-11-06Z'),
                metering.counter_value('same', 'seats', '2025-11-07Z')],
    ARRAY[0, 13, 50]::numeric[],
    'same: Nov 5 = 0, Nov 6 = set 3 + 10 = 13, Nov 7 = 13 + 2, set 50, +5, -5 = 50');
SELECT is(metering.usage('same', 'seats', '2025-11-01Z', '2025-12-01Z'), 50::numeric,
    'same: usage over November = 50 (last set is the Nov 7 set 50, then +5 -5)');

-- 4. Idempotent counter operations (customer idem) -----------------------------------
SELECT is(metering.counter_increment('idem', 'seats', 5, '2025-11-01Z', 'op-1'), 5::numeric, 'idem: +5 key op-1 -> 5');
SELECT is(metering.counter_increment('idem', 'seats', 5, '2025-11-01Z', 'op-1'), 5::numeric,
    'idem: repeating op-1 returns 5 and adds nothing');
SELECT is((SELECT count(*) FROM metering.events WHERE customer_id = 'idem'), 1::bigint, 'idem: op-1 stored once');
SELECT is(metering.counter_increment('idem', 'seats', 2, '2025-11-02Z', 'op-2'), 7::numeric, 'idem: +2 key op-2 -> 7');
SELECT is(metering.counter_increment('idem', 'seats', 5, '2025-11-01Z', 'op-1'), 5::numeric,
    'idem: a late retry of op-1 returns the value at its instant (5)');
SELECT is(metering.counter_value('idem', 'seats', '2025-11-02Z'), 7::numeric,
    'idem: value at Nov 2 = 5 + 2 = 7, not 12');
SELECT is(metering.counter_set('idem', 'seats', 20, '2025-11-03Z', 'op-3'), 20::numeric, 'idem: set 20 key op-3 -> 20');
SELECT is(metering.counter_set('idem', 'seats', 20, '2025-11-03Z', 'op-3'), 20::numeric, 'idem: repeating op-3 -> 20');
SELECT is(metering.ingest('idem', 'seats', 2, '2025-11-02Z', 'op-2'),
          (SELECT event_id FROM metering.events WHERE customer_id = 'idem' AND idempotency_key = 'op-2'),
    'idem: a plain ingest with op-2''s payload is a duplicate of the stored increment');
SELECT throws_ok($$SELECT metering.counter_increment('idem', 'seats', 6, '2025-11-01Z', 'op-1')$$,
    'MT011', NULL, 'idem: op-1 with another amount is MT011');
SELECT throws_ok($$SELECT metering.counter_set('idem', 'seats', 5, '2025-11-01Z', 'op-1')$$,
    'MT011', NULL, 'idem: op-1 as a set instead of an increment is MT011');
SELECT throws_ok($$SELECT metering.counter_increment('idem', 'seats', 20, '2025-11-03Z', 'op-3')$$,
    'MT011', NULL, 'idem: op-3 as an increment instead of a set is MT011');
SELECT is((SELECT count(*) FROM metering.events WHERE customer_id = 'idem'), 3::bigint,
    'idem: three operations stored (op-1, op-2, op-3)');
SELECT is(metering.counter_value('idem', 'seats', '2025-11-30Z'), 20::numeric, 'idem: value at Nov 30 = 20');

-- 5. Bad counter input --------------------------------------------------------------
SELECT throws_ok($$SELECT metering.counter_increment('inc', 'calls', 1, '2025-11-01Z')$$,
    'MT016', NULL, 'counter_increment on a count meter is MT016');
SELECT throws_ok($$SELECT metering.counter_set('inc', 'calls', 1, '2025-11-01Z')$$,
    'MT016', NULL, 'counter_set on a count meter is MT016');
SELECT throws_ok($$SELECT metering.counter_value('inc', 'calls', '2025-11-01Z')$$,
    'MT016', NULL, 'counter_value on a count meter is MT016');
SELECT throws_ok($$SELECT metering.counter_increment('inc', 'nothing', 1, '2025-11-01Z')$$,
    'MT002', NULL, 'unknown counter is MT002');
SELECT throws_ok($$SELECT metering.counter_set('nobody', 'seats', 1, '2025-11-01Z')$$,
    'MT001', NULL, 'unknown customer is MT001');
SELECT throws_ok($$SELECT metering.counter_increment('inc', 'seats', NULL, '2025-11-01Z')$$,
    '22004', NULL, 'NULL by is 22004');
SELECT throws_ok($$SELECT metering.counter_value('inc', 'seats', NULL)$$,
    '22004', NULL, 'NULL at is 22004');
SELECT throws_ok($$SELECT metering.counter_set('inc', 'seats', 'NaN', '2025-11-01Z')$$,
    'MT003', NULL, 'NaN value is MT003');
SELECT throws_ok($$SELECT metering.counter_increment('inc', 'seats', 1, '2999-01-01')$$,
    'MT005', NULL, 'at far in the future is MT005');

SELECT * FROM finish();
ROLLBACK;
