-- pgTAP: one small SaaS month (November 2025, UTC), every number checked by hand.
-- Three customers, six meters, events through all three paths (ingest,
-- ingest_batch, plain INSERT into metering.events = the COPY path), with
-- duplicates by idempotency key, then metering.usage per customer x meter over
-- [2025-11-01, 2025-12-01), and the SQLSTATE of every kind of bad input.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS metering;
SELECT plan(74);

SET LOCAL timezone = 'UTC';

-- Catalog ----------------------------------------------------------------------
SELECT is(metering.create_customer('acme', 'Acme Corp', 'billing@acme.test', 'Europe/Berlin'), 'acme',
    'create_customer returns the customer id');
SELECT is(metering.create_customer('globex', 'Globex', NULL, 'America/New_York', false), 'globex',
    'create_customer globex (auto_issue off)');
SELECT is(metering.create_customer('initech'), 'initech', 'create_customer initech with defaults');
SELECT is(metering.create_meter('api_calls', 'count'), 'api_calls', 'meter api_calls (count)');
SELECT is(metering.create_meter('tokens', 'sum'), 'tokens', 'meter tokens (sum)');
SELECT is(metering.create_meter('active_users', 'unique_count', 'user'), 'active_users',
    'meter active_users (unique_count of properties.user)');
SELECT is(metering.create_meter('seats', 'counter'), 'seats', 'meter seats (counter)');
SELECT is(metering.create_meter('eu_calls', 'count', filter => '{"region": "eu"}'), 'eu_calls',
    'meter eu_calls (count where properties @> {"region":"eu"})');
SELECT is(metering.create_meter('peak_gb', 'max'), 'peak_gb', 'meter peak_gb (max)');
SELECT is(metering.create_plan('pro', 'USD', '1 month', 49), 'pro', 'plan pro in USD');
SELECT is(ARRAY[metering.currency_exponent('USD'), metering.currency_exponent('JPY'),
                metering.currency_exponent('BHD')], ARRAY[2, 0, 3],
    'currency exponents: USD 2, JPY 0, BHD 3');

\o /dev/null
-- acme via ingest -----------------------------------------------------------------
SELECT metering.ingest('acme', 'api_calls', 1, '2025-11-03 10:00Z', 'a-1');
SELECT metering.ingest('acme', 'api_calls', 1, '2025-11-10 12:00Z');                         -- no key
SELECT metering.ingest('acme', 'api_calls', 1, '2025-10-31 22:00Z', 'a-due-nov', due_at => '2025-11-01 00:00Z');
SELECT metering.ingest('acme', 'api_calls', 1, '2025-11-30 20:00Z', 'a-due-dec', due_at => '2025-12-01 00:00Z');
SELECT metering.ingest('acme', 'tokens', 1200, '2025-11-02 09:00Z', 't-1');
SELECT metering.ingest('acme', 'tokens', -200, '2025-11-20 09:00Z', 't-correction');        -- sum allows negative
SELECT metering.ingest('acme', 'active_users', properties => '{"user": "carol", "plan": "x"}',
                       occurred_at => '2025-11-04 08:00Z');
SELECT metering.ingest('acme', 'eu_calls', 1, '2025-11-05 01:00Z', properties => '{"region": "eu"}');
SELECT metering.ingest('acme', 'eu_calls', 1, '2025-11-05 02:00Z', properties => '{"region": "us"}');
SELECT metering.ingest('acme', 'eu_calls', 1, '2025-11-06 01:00Z', properties => '{"region": "eu", "path": "/v1"}');
SELECT metering.ingest('acme', 'eu_calls', 1, '2025-11-07 01:00Z');                          -- no properties
SELECT metering.ingest('acme', 'peak_gb', 12.5, '2025-11-03 00:00Z');
SELECT metering.ingest('acme', 'peak_gb', 40, '2025-11-10 00:00Z');
SELECT metering.counter_increment('acme', 'seats', 5, '2025-10-25 00:00Z');                  -- October
SELECT metering.counter_increment('acme', 'seats', 3, '2025-11-02 00:00Z');
SELECT metering.counter_increment('acme', 'seats', -1, '2025-11-07 00:00Z');
SELECT metering.counter_set('acme', 'seats', 10, '2025-11-15 00:00Z');
\o
SELECT is(metering.ingest('acme', 'api_calls', 1, '2025-11-03 10:00Z', 'a-1'),
          (SELECT event_id FROM metering.events WHERE customer_id = 'acme' AND idempotency_key = 'a-1'),
    'ingest of a duplicate returns the stored event id');
SELECT is(metering.ingest('acme', 'api_calls', 1, '2025-11-03T11:00:00+01:00', 'a-1'),
          (SELECT event_id FROM metering.events WHERE customer_id = 'acme' AND idempotency_key = 'a-1'),
    'the same instant written with another offset is the same payload');
SELECT is(metering.counter_increment('acme', 'seats', 2, '2025-11-20 00:00Z', 's-1'), 12::numeric,
    'acme seats: set 10 on Nov 15, +2 on Nov 20 = 12');
SELECT is(metering.counter_increment('acme', 'seats', 2, '2025-11-20 00:00Z', 's-1'), 12::numeric,
    'a duplicate counter increment returns the value at its instant and adds nothing');

-- acme + globex via ingest_batch ------------------------------------------------------
CREATE TEMP TABLE batch1 ON COMMIT DROP AS
SELECT * FROM metering.ingest_batch('[
  {"customer_id": "acme", "meter": "api_calls", "occurred_at": "2025-11-15T09:00:00+01:00", "idempotency_key": "a-2"},
  {"customer_id": "acme", "meter": "api_calls", "value": 1, "occurred_at": "2025-11-03T10:00:00Z", "idempotency_key": "a-1"},
  {"customer_id": "acme", "meter": "tokens", "value": 800.5, "occurred_at": "2025-11-05T00:00:00Z", "idempotency_key": "t-2"},
  {"customer_id": "acme", "meter": "tokens", "value": "1200", "occurred_at": "2025-11-02T09:00:00Z", "idempotency_key": "t-1"},
  {"customer_id": "acme", "meter": "active_users", "occurred_at": "2025-11-01T00:00:00Z", "properties": {"user": "ann"}},
  {"customer_id": "acme", "meter": "active_users", "occurred_at": "2025-11-02T00:00:00Z", "properties": {"user": "bob"}},
  {"customer_id": "acme", "meter": "active_users", "occurred_at": "2025-11-03T00:00:00Z", "properties": {"user": "ann"}},
  {"customer_id": "acme", "meter": "eu_calls", "occurred_at": "2025-11-08T00:00:00Z", "properties": {"region": "eu"}},
  {"customer_id": "acme", "meter": "peak_gb", "value": 37.25, "occurred_at": "2025-11-12T00:00:00Z"},
  {"customer_id": "acme", "meter": "seats", "value": 2, "occurred_at": "2025-11-05T00:00:00Z"},
  {"customer_id": "globex", "meter": "api_calls", "occurred_at": "2025-11-01T00:00:00Z", "idempotency_key": "g-1"},
  {"customer_id": "globex", "meter": "api_calls", "occurred_at": "2025-11-02T00:00:00Z", "idempotency_key": "g-2"},
  {"customer_id": "globex", "meter": "api_calls", "occurred_at": "2025-11-03T00:00:00Z", "idempotency_key": "g-3"},
  {"customer_id": "globex", "meter": "api_calls", "occurred_at": "2025-11-03T00:00:00Z", "idempotency_key": "g-3"},
  {"customer_id": "globex", "meter": "api_calls", "occurred_at": "2025-11-10T00:00:00Z", "idempotency_key": "a-1"}
]');

SELECT is((SELECT array_agg(status ORDER BY ordinal) FROM batch1),
    ARRAY['created', 'duplicate', 'created', 'duplicate', 'created', 'created', 'created', 'created',
          'created', 'created', 'created', 'created', 'created', 'duplicate', 'created'],
    'ingest_batch statuses: 2 (a-1 stored by ingest), 4 (t-1 stored by ingest) and 14 (g-3 twice in the batch) are duplicates');
SELECT is((SELECT array_agg(ordinal ORDER BY ordinal) FROM batch1),
    ARRAY[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], 'ingest_batch ordinals are 1-based, one per element');
SELECT is((SELECT event_id FROM batch1 WHERE ordinal = 2),
          (SELECT event_id FROM metering.events WHERE customer_id = 'acme' AND idempotency_key = 'a-1'),
    'a duplicate element reports the stored event id (acme a-1)');
SELECT is((SELECT event_id FROM batch1 WHERE ordinal = 14), (SELECT event_id FROM batch1 WHERE ordinal = 13),
    'a duplicate inside the batch reports the id of its first occurrence');
SELECT isnt((SELECT event_id FROM batch1 WHERE ordinal = 15),
            (SELECT event_id FROM metering.events WHERE customer_id = 'acme' AND idempotency_key = 'a-1'),
    'idempotency keys are per customer: globex a-1 is a new event');
SELECT is((SELECT count(DISTINCT event_id) FROM batch1 WHERE status = 'created'), 12::bigint,
    '12 created elements have 12 distinct event ids');

-- COPY path: plain INSERT into metering.events --------------------------------------
INSERT INTO metering.events (customer_id, meter, value, occurred_at, idempotency_key, properties) VALUES
  ('acme', 'api_calls', 1, '2025-11-30 23:59:59Z', 'a-3', '{}'),
  ('acme', 'api_calls', 1, '2025-12-01 00:00:00Z', 'a-4', '{}'),          -- December (half-open)
  ('acme', 'api_calls', 1, '2025-10-31 23:59:59Z', 'a-5', '{}'),          -- October
  ('acme', 'api_calls', 1, '2025-11-15 08:00:00Z', 'a-2', '{}'),          -- replay of batch element 1: skipped
  ('acme', 'tokens', 300, '2025-12-01 00:00:00Z', NULL, '{}'),
  ('acme', 'active_users', 1, '2025-11-28 00:00:00Z', NULL, '{"user": "bob"}'),
  ('acme', 'active_users', 1, '2025-10-30 00:00:00Z', NULL, '{"user": "dave"}'),
  ('acme', 'active_users', 1, '2025-12-01 00:00:00Z', NULL, '{"user": "erin"}'),
  ('acme', 'eu_calls', 1, '2025-11-09 00:00:00Z', NULL, '{"region": "EU"}'),  -- filter is case-sensitive
  ('acme', 'peak_gb', 99, '2025-10-31 23:00:00Z', NULL, '{}'),
  ('acme', 'peak_gb', 41, '2025-12-01 00:00:00Z', NULL, '{}'),
  ('acme', 'seats', 1, '2025-11-25 00:00:00Z', NULL, '{}'),
  ('globex', 'api_calls', 1, '2025-11-02 00:00:00Z', 'g-2', '{}'),        -- replay of batch element 12: skipped
  ('globex', 'api_calls', 1, '2025-11-04 00:00:00Z', 'g-4', '{}'),
  ('globex', 'eu_calls', 1, '2025-11-04 00:00:00Z', NULL, '{"region": "us"}'),
  ('globex', 'eu_calls', 1, '2025-11-05 00:00:00Z', NULL, '{"region": "us"}'),
  ('initech', 'api_calls', 1, '2025-10-31 23:59:59.999999Z', NULL, '{}'),
  ('initech', 'api_calls', 1, '2025-12-01 00:00:00Z', NULL, '{}'),
  ('initech', 'peak_gb', 500, '2025-10-15 00:00:00Z', NULL, '{}');

-- globex via ingest and counters
\o /dev/null
SELECT metering.ingest('globex', 'tokens', 50, '2025-11-01 00:00Z');
SELECT metering.ingest('globex', 'tokens', 25.25, '2025-11-02 00:00Z');
SELECT metering.counter_set('globex', 'seats', 100, '2025-10-15 00:00Z');                    -- October
SELECT metering.counter_set('globex', 'seats', 4, '2025-11-01 00:00Z');
SELECT metering.counter_increment('globex', 'seats', -4, '2025-11-10 00:00Z');
\o

-- Stored rows, duplicates not stored --------------------------------------------------
-- acme:  api_calls 8 (a-1, no key Nov 10, a-due-nov, a-due-dec, a-2, a-3, a-4, a-5)
--        tokens 4 (t-1, t-correction, t-2, Dec 300)
--        active_users 7 (carol, ann, bob, ann, bob, dave, erin)
--        eu_calls 6 (eu, us, eu+path, none, eu, EU)
--        peak_gb 5 (12.5, 40, 37.25, 99, 41)
--        seats 7 (Oct +5, +3, -1, set 10, +2 s-1, batch +2, INSERT +1)        = 37
-- globex: api_calls 5 (g-1, g-2, g-3, a-1, g-4), tokens 2, eu_calls 2,
--        seats 3 (set 100, set 4, -4)                                         = 12
-- initech: api_calls 2, peak_gb 1                                              = 3
SELECT is(
    (SELECT array_agg(customer_id || ':' || n ORDER BY customer_id)
     FROM (SELECT customer_id, count(*) AS n FROM metering.events GROUP BY 1) c),
    ARRAY['acme:37', 'globex:12', 'initech:3'],
    'stored events per customer: 37, 12, 3 (duplicates from every path were not stored)');
SELECT is(
    (SELECT array_agg(meter || ':' || n ORDER BY meter)
     FROM (SELECT meter, count(*) AS n FROM metering.events WHERE customer_id = 'acme' GROUP BY 1) m),
    ARRAY['active_users:7', 'api_calls:8', 'eu_calls:6', 'peak_gb:5', 'seats:7', 'tokens:4'],
    'acme stored events per meter');
-- keyed: acme a-1..a-5, a-due-nov, a-due-dec, t-1, t-2, t-correction, s-1 (11);
--        globex g-1..g-4, a-1 (5) = 16
SELECT is((SELECT count(*) FROM metering.events WHERE idempotency_key IS NOT NULL), 16::bigint,
    '16 keyed events stored, one per (customer_id, idempotency_key)');
SELECT is((SELECT count(*) FROM (SELECT 1 FROM metering.events WHERE idempotency_key IS NOT NULL
                                GROUP BY customer_id, idempotency_key HAVING count(*) > 1) d),
    0::bigint, 'no (customer_id, idempotency_key) is stored twice');
SELECT is((SELECT count(*) FROM metering.events WHERE customer_id = 'acme' AND idempotency_key = 'a-2'), 1::bigint,
    'a-2 from the batch, replayed through INSERT, is stored once');
SELECT is((SELECT due_at FROM metering.events WHERE customer_id = 'acme' AND idempotency_key = 'a-3'),
    '2025-11-30 23:59:59Z'::timestamptz, 'due_at defaults to occurred_at on the COPY path');
SELECT is((SELECT array_agg(op ORDER BY occurred_at, event_id) FROM metering.events
           WHERE customer_id = 'acme' AND meter = 'seats'),
    ARRAY['increment', 'increment', 'increment', 'increment', 'set', 'increment', 'increment'],
    'counter operations from every path are stored with their op (plain events of a counter are increments)');
SELECT is((SELECT count(*) FROM metering.events WHERE meter <> 'seats' AND op IS NOT NULL), 0::bigint,
    'events of non-counter meters carry no op');

-- Usage over [2025-11-01, 2025-12-01) by due_at ----------------------------------------
-- acme api_calls: a-1 (Nov 3) + no key (Nov 10) + a-2 (Nov 15 08:00Z) + a-3 (Nov 30 23:59:59)
--   + a-due-nov (occurred Oct 31, due Nov 1 00:00) = 5;
--   excluded: a-4 (Dec 1 00:00), a-5 (Oct 31 23:59:59), a-due-dec (occurred Nov 30, due Dec 1)
SELECT is(metering.usage('acme', 'api_calls', '2025-11-01Z', '2025-12-01Z'), 5::numeric, 'acme api_calls = 5');
-- acme tokens: 1200 + 800.5 - 200 = 1800.5 (the Dec 1 300 is December)
SELECT is(metering.usage('acme', 'tokens', '2025-11-01Z', '2025-12-01Z'), 1800.5, 'acme tokens = 1800.5');
-- acme active_users: {ann (Nov 1 00:00, inclusive), bob, ann, carol, bob} = ann, bob, carol = 3
--   (dave is October, erin is December)
SELECT is(metering.usage('acme', 'active_users', '2025-11-01Z', '2025-12-01Z'), 3::numeric, 'acme active_users = 3');
-- acme seats: counter starts at 0 on Nov 1 (the October +5 is ignored); last set in the window
--   is 10 on Nov 15; after it +2 (Nov 20) +1 (Nov 25) = 13
--   (before the set: 0 + 3 + 2 - 1 = 4, replaced by the set)
SELECT is(metering.usage('acme', 'seats', '2025-11-01Z', '2025-12-01Z'), 13::numeric, 'acme seats = 13');
-- acme eu_calls: eu Nov 5, eu+path Nov 6, eu Nov 8 = 3 (us, no properties and "EU" do not match)
SELECT is(metering.usage('acme', 'eu_calls', '2025-11-01Z', '2025-12-01Z'), 3::numeric, 'acme eu_calls = 3');
-- acme peak_gb: max(12.5, 40, 37.25) = 40 (99 is October, 41 is December)
SELECT is(metering.usage('acme', 'peak_gb', '2025-11-01Z', '2025-12-01Z'), 40::numeric, 'acme peak_gb = 40');

-- globex api_calls: g-1, g-2, g-3, a-1 (Nov 10), g-4 = 5
SELECT is(metering.usage('globex', 'api_calls', '2025-11-01Z', '2025-12-01Z'), 5::numeric, 'globex api_calls = 5');
-- globex tokens: 50 + 25.25 = 75.25
SELECT is(metering.usage('globex', 'tokens', '2025-11-01Z', '2025-12-01Z'), 75.25, 'globex tokens = 75.25');
-- globex active_users: no events = 0
SELECT is(metering.usage('globex', 'active_users', '2025-11-01Z', '2025-12-01Z'), 0::numeric, 'globex active_users = 0');
-- globex seats: set 4 on Nov 1, -4 on Nov 10 = 0 (the October set 100 is outside)
SELECT is(metering.usage('globex', 'seats', '2025-11-01Z', '2025-12-01Z'), 0::numeric, 'globex seats = 0');
-- globex eu_calls: two "us" calls = 0
SELECT is(metering.usage('globex', 'eu_calls', '2025-11-01Z', '2025-12-01Z'), 0::numeric, 'globex eu_calls = 0');
-- globex peak_gb: no events: NULL (nothing to report for max)
SELECT is(metering.usage('globex', 'peak_gb', '2025-11-01Z', '2025-12-01Z'), NULL::numeric, 'globex peak_gb = NULL');

-- initech: every event is outside November
SELECT is(metering.usage('initech', 'api_calls', '2025-11-01Z', '2025-12-01Z'), 0::numeric,
    'initech api_calls = 0 (Oct 31 23:59:59.999999 and Dec 1 00:00 are outside)');
SELECT is(metering.usage('initech', 'tokens', '2025-11-01Z', '2025-12-01Z'), 0::numeric, 'initech tokens = 0');
SELECT is(metering.usage('initech', 'active_users', '2025-11-01Z', '2025-12-01Z'), 0::numeric, 'initech active_users = 0');
SELECT is(metering.usage('initech', 'seats', '2025-11-01Z', '2025-12-01Z'), 0::numeric, 'initech seats = 0');
SELECT is(metering.usage('initech', 'eu_calls', '2025-11-01Z', '2025-12-01Z'), 0::numeric, 'initech eu_calls = 0');
SELECT is(metering.usage('initech', 'peak_gb', '2025-11-01Z', '2025-12-01Z'), NULL::numeric,
    'initech peak_gb = NULL (its only event is October)');

-- Neighbouring windows
-- acme api_calls in December so far: a-4 (Dec 1 00:00) + a-due-dec (due Dec 1 00:00) = 2
SELECT is(metering.usage('acme', 'api_calls', '2025-12-01Z', '2026-01-01Z'), 2::numeric, 'acme api_calls in December = 2');
-- acme api_calls in October: a-5 (Oct 31 23:59:59) = 1 (a-due-nov occurred in October but is due in November)
SELECT is(metering.usage('acme', 'api_calls', '2025-10-01Z', '2025-11-01Z'), 1::numeric, 'acme api_calls in October = 1');
-- acme seats value at the end of November, all history: set 10 (Nov 15) + 2 + 1 = 13
SELECT is(metering.counter_value('acme', 'seats', '2025-11-30 23:59:59Z'), 13::numeric,
    'acme seats counter_value at the end of November = 13');

-- ingest_batch is all or nothing -------------------------------------------------------
SELECT throws_like($$SELECT * FROM metering.ingest_batch('[
    {"customer_id": "acme", "meter": "api_calls", "occurred_at": "2025-11-20T00:00:00Z"},
    {"customer_id": "nobody", "meter": "api_calls", "occurred_at": "2025-11-20T00:00:00Z"}]')$$,
    '%element 2%customer_id%nobody%', 'a batch error names the element ordinal and the field');
SELECT throws_ok($$SELECT * FROM metering.ingest_batch('[
    {"customer_id": "acme", "meter": "api_calls", "occurred_at": "2025-11-20T00:00:00Z"},
    {"customer_id": "acme", "meter": "api_calls", "value": -1, "occurred_at": "2025-11-20T00:00:00Z"}]')$$,
    'MT004', NULL, 'a batch with a negative count value is rejected with MT004');
SELECT is((SELECT count(*) FROM metering.events), 52::bigint, 'rejected batches stored nothing (still 37 + 12 + 3)');

-- Errors: SQLSTATEs -------------------------------------------------------------------
SELECT throws_ok($$SELECT metering.ingest('nobody', 'api_calls', 1, '2025-11-01Z')$$,
    'MT001', NULL, 'MT001: unknown customer');
SELECT throws_ok($$SELECT metering.ingest('acme', 'nothing', 1, '2025-11-01Z')$$,
    'MT002', NULL, 'MT002: unknown meter');
SELECT throws_ok($$SELECT metering.ingest(NULL, 'api_calls', 1, '2025-11-01Z')$$,
    '22004', NULL, '22004: NULL customer_id');
SELECT throws_ok($$SELECT metering.ingest('acme', 'tokens', NULL, '2025-11-01Z')$$,
    '22004', NULL, '22004: NULL value');
SELECT throws_ok($$SELECT metering.ingest('acme', 'tokens', 'NaN', '2025-11-01Z')$$,
    'MT003', NULL, 'MT003: NaN value');
SELECT throws_ok($$SELECT metering.ingest('acme', 'api_calls', -1, '2025-11-01Z')$$,
    'MT004', NULL, 'MT004: negative value on a count meter');
SELECT throws_ok($$SELECT metering.ingest('acme', 'api_calls', 1, '2999-01-01')$$,
    'MT005', NULL, 'MT005: occurred_at far in the future');
SELECT throws_ok($$SELECT metering.ingest('acme', 'api_calls', 1, 'infinity')$$,
    'MT006', NULL, 'MT006: infinite occurred_at');
SELECT throws_ok($$SELECT metering.ingest('acme', 'api_calls', 1, '2025-11-01Z', '')$$,
    'MT007', NULL, 'MT007: empty idempotency key');
SELECT throws_ok($$SELECT metering.ingest('acme', 'api_calls', 1, '2025-11-01Z', repeat('k', 256))$$,
    'MT007', NULL, 'MT007: idempotency key over 255 characters');
SELECT throws_ok($$SELECT metering.ingest('acme', 'tokens', 'Infinity', '2025-11-01Z')$$,
    'MT003', NULL, 'MT003: infinite value');
SELECT throws_ok($$SELECT * FROM metering.ingest_batch('[{"customer_id": "nobody", "meter": "api_calls", "occurred_at": "2025-11-01T00:00:00Z"}]')$$,
    'MT001', NULL, 'MT001 from ingest_batch: unknown customer');
SELECT throws_ok($$INSERT INTO metering.events (customer_id, meter, value, occurred_at) VALUES ('nobody', 'api_calls', 1, '2025-11-01Z')$$,
    'MT001', NULL, 'MT001 from the COPY path: unknown customer');
SELECT throws_ok($$SELECT metering.ingest('acme', 'api_calls', 1, '2025-11-01Z', properties => '[1, 2]')$$,
    'MT008', NULL, 'MT008: properties is an array');
SELECT throws_ok($$SELECT metering.create_plan('bad', 'XYZ')$$,
    'MT010', NULL, 'MT010: unknown currency in create_plan');
SELECT throws_ok($$SELECT metering.ingest('acme', 'api_calls', 1, '2025-11-04 10:00Z', 'a-1')$$,
    'MT011', NULL, 'MT011: idempotency key reused with another payload');
SELECT throws_ok($$SELECT metering.create_customer('martian', timezone => 'Mars/Olympus_Mons')$$,
    'MT012', NULL, 'MT012: unknown time zone');
SELECT throws_ok($$SELECT metering.create_meter('avg_latency', 'average')$$,
    'MT013', NULL, 'MT013: unknown aggregation');
SELECT throws_ok($$SELECT metering.counter_increment('acme', 'api_calls', 1, '2025-11-01Z')$$,
    'MT016', NULL, 'MT016: counter operation on a non-counter meter');
SELECT throws_ok($$UPDATE metering.events SET value = value + 1 WHERE customer_id = 'acme'$$,
    'MT017', NULL, 'MT017: UPDATE of metering.events is refused');

SELECT is((SELECT count(*) FROM metering.events), 52::bigint, 'failed calls left the event store unchanged');

SELECT * FROM finish();
ROLLBACK;
