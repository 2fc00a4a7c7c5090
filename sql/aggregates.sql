-- Rating aggregates: metering.latest, unique_count, counter_total and
-- time_weighted; their state type metering.aggregate_state; every bad input.
-- Results are worked out by hand in the comments. The parallel plans vary, so
-- only "is it parallel" and "same results as serial" are checked here.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
SET timezone = 'UTC';

-- Errors as one line each: SQLSTATE, message, detail, hint.
CREATE FUNCTION pg_temp.error_of(statement text, OUT code text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    code := 'none';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
        detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
END
$$;

------------------------------------------------------------------------------
-- time_weighted: value x hours over [period_start, period_end)
------------------------------------------------------------------------------
CREATE TABLE gauge (customer text, value numeric, at timestamptz, id bigint);
INSERT INTO gauge VALUES
    ('a', 10, '2025-01-01 00:00Z', 1),
    ('a', 20, '2025-01-01 12:00Z', 2),
    ('a', 99, '2025-01-02 00:00Z', 3),     -- at the period end: does not count
    ('b', 7,  '2024-12-31 22:00Z', 4),     -- before the period, older: does not matter
    ('b', 5,  '2024-12-31 23:00Z', 5),     -- the last value before the period: held until 12:00
    ('b', 10, '2025-01-01 12:00Z', 6),
    ('c', 1,  '2025-01-01 23:59:59Z', 7),  -- one second of 1: 1/3600 h, does not end
    ('d', 30, '2025-01-01 06:00Z', 8),     -- two values at one instant; the smaller
    ('d', 10, '2025-01-01 06:00Z', 9),     -- one was ingested later (event id 9)
    ('e', 2.50, '2025-01-01 18:00Z', 10),
    ('f', NULL, '2025-01-01 18:00Z', 11);  -- NULL value: ignored
-- a: 10 x 12 + 20 x 12 = 360; b: 5 x 12 + 10 x 12 = 180; c: 0.000277...;
-- d: 0 x 6, then the greater value 30 x 18 = 540, with event ids 10 (id 9) x 18 = 180;
-- e: 2.50 x 6 = 15.00 (the values' scale); f: 0
SELECT customer,
       metering.time_weighted(value, at, '2025-01-01Z', '2025-01-02Z') AS value_hours,
       metering.time_weighted(value, at, '2025-01-01Z', '2025-01-02Z', id) AS by_event_id
FROM gauge GROUP BY customer ORDER BY customer;
-- no rows at all
SELECT metering.time_weighted(value, at, '2025-01-01Z', '2025-01-02Z') FROM gauge WHERE false;
-- a period per billing month, from a table of periods
SELECT p.period_start, metering.time_weighted(g.value, g.at, p.period_start, p.period_end)
FROM (VALUES ('2024-12-31 12:00Z'::timestamptz, '2025-01-01Z'::timestamptz),
             ('2025-01-01Z', '2025-01-02Z')) AS p(period_start, period_end)
JOIN gauge g ON g.customer = 'b' AND g.at < p.period_end
GROUP BY p.period_start ORDER BY 1;   -- 0 x 10 + 7 x 1 + 5 x 1 = 12; then 180

------------------------------------------------------------------------------
-- latest: the value with the greatest at
------------------------------------------------------------------------------
SELECT customer,
       metering.latest(value, at) AS latest,               -- d: tie at 06:00, the greater value
       metering.latest(value, at, id) AS by_event_id       -- d: the later-ingested (id 9)
FROM gauge GROUP BY customer ORDER BY customer;
SELECT metering.latest(value, at) FROM gauge WHERE false;  -- NULL: no row
SELECT metering.latest(v, t) FROM (VALUES (1.5, '2025-01-01Z'::timestamptz), (1.50, '2025-01-01Z')) x(v, t);  -- equal values: the longer scale
-- running latest (a window aggregate)
SELECT id, value, metering.latest(value, at) OVER (ORDER BY id) FROM gauge WHERE customer IN ('a', 'b') ORDER BY id;

------------------------------------------------------------------------------
-- unique_count: distinct non-NULL values, byte for byte
------------------------------------------------------------------------------
CREATE TABLE requests (customer text, user_id text);
INSERT INTO requests VALUES ('a', 'u1'), ('a', 'u2'), ('a', 'u1'), ('a', NULL), ('a', ''),
    ('a', 'U1'), ('b', 'é'), ('b', E'e\u0301'), ('c', NULL);
-- a: u1 u2 '' U1 = 4; b: two spellings of é = 2; c: 0
SELECT customer, metering.unique_count(user_id), count(DISTINCT user_id) AS sql_count_distinct
FROM requests GROUP BY customer ORDER BY customer;
SELECT metering.unique_count(user_id) FROM requests WHERE false;
SELECT metering.unique_count(DISTINCT user_id) FILTER (WHERE customer = 'a') FROM requests;
-- a running count (window): the state is reused after each final call
SELECT v, metering.unique_count(v) OVER (ORDER BY n)
FROM (VALUES (1, 'x'), (2, 'y'), (3, 'x'), (4, 'z'), (5, NULL)) r(n, v) ORDER BY n;

------------------------------------------------------------------------------
-- counter_total: the last set plus the increments after it
------------------------------------------------------------------------------
CREATE TABLE ops (counter text, op text, value numeric, at timestamptz, id bigint);
INSERT INTO ops VALUES
    ('seats', 'increment', 5,  '2025-11-01 09:00Z', 1),
    ('seats', 'increment', 2,  '2025-11-01 10:00Z', 2),
    ('seats', 'increment', -3, '2025-11-02 10:00Z', 3),
    ('seats', 'set',       10, '2025-11-03 00:00Z', 4),
    ('seats', NULL,        1,  '2025-11-04 00:00Z', 5),   -- NULL op: an increment
    ('seats', 'increment', 100, '2025-11-02 12:00Z', 6),  -- late, before the set: nothing
    ('same', 'increment', 1, '2025-11-05Z', 7),           -- at the instant of the set...
    ('same', 'set',       7, '2025-11-05Z', 8),           -- ...counts after it: 8; by id: 7
    ('only_incs', 'increment', 1.5, '2025-11-01Z', 9),
    ('only_incs', 'increment', 2.25, '2025-11-02Z', 10);
SELECT counter, metering.counter_total(op, value, at), metering.counter_total(op, value, at, id) AS by_event_id
FROM ops GROUP BY counter ORDER BY counter;
SELECT metering.counter_total(op, value, at) FROM ops WHERE false;

------------------------------------------------------------------------------
-- over metering.events, with event_id as the tiebreak
------------------------------------------------------------------------------
SELECT metering.create_customer('acme'), metering.create_meter('cpus', 'latest');
SELECT metering.ingest('acme', 'cpus', 4, '2025-11-01 10:00Z') > 0 AS ok,
       metering.ingest('acme', 'cpus', 8, '2025-11-01 10:00Z') > 0 AS ok,   -- later-ingested, same instant
       metering.ingest('acme', 'cpus', 2, '2025-11-01 09:00Z') > 0 AS ok;   -- late but older
SELECT metering.latest(value, occurred_at, event_id), metering.latest(value, occurred_at),
       metering.time_weighted(value, occurred_at, '2025-11-01 09:00Z', '2025-11-01 12:00Z', event_id)
FROM metering.events WHERE customer_id = 'acme' AND meter = 'cpus';   -- 8, 8, 2 x 1 + 8 x 2 = 18

------------------------------------------------------------------------------
-- states as values: text and binary forms, combined "on another shard"
------------------------------------------------------------------------------
SELECT metering.latest_trans(NULL, 1.5, '2025-01-01Z');
SELECT metering.latest_final('\x010100010080d47e98cd020000000000000000000001010f');
SELECT metering.unique_count_trans(metering.unique_count_trans(NULL, 'a'), 'b') AS state,
       metering.aggregate_state_send(metering.unique_count_trans(metering.unique_count_trans(NULL, 'a'), 'b')) AS binary;
-- transition functions outside an aggregate return flat states
SELECT metering.counter_total_final(metering.counter_total_trans(metering.counter_total_trans(NULL, 'set', 3, '2025-01-01Z'), 'increment', 2, '2025-01-02Z'));
SELECT metering.time_weighted_final(metering.time_weighted_trans(NULL, 10, '2025-01-01Z', '2025-01-01Z', '2025-01-01 06:00Z'));  -- 60

-- per-shard partial states with the transition and combine functions, as a
-- distributed engine runs them, stored in a table and finished elsewhere
CREATE AGGREGATE unique_count_partial(text) (
    SFUNC = metering.unique_count_trans, STYPE = metering.aggregate_state,
    COMBINEFUNC = metering.unique_count_combine, PARALLEL = SAFE);
CREATE AGGREGATE unique_count_finish(metering.aggregate_state) (
    SFUNC = metering.unique_count_combine, STYPE = metering.aggregate_state,
    FINALFUNC = metering.unique_count_final);
CREATE AGGREGATE time_weighted_partial(numeric, timestamptz, timestamptz, timestamptz) (
    SFUNC = metering.time_weighted_trans, STYPE = metering.aggregate_state,
    COMBINEFUNC = metering.time_weighted_combine);
CREATE AGGREGATE time_weighted_finish(metering.aggregate_state) (
    SFUNC = metering.time_weighted_combine, STYPE = metering.aggregate_state,
    FINALFUNC = metering.time_weighted_final);
CREATE TABLE shard_states AS
SELECT id % 2 AS shard, unique_count_partial(customer) AS customers,
       time_weighted_partial(value, at, '2025-01-01Z', '2025-01-02Z') FILTER (WHERE customer = 'a') AS gauge_a
FROM gauge GROUP BY id % 2;
COPY shard_states TO STDOUT;
\copy shard_states TO 'results/aggregate_states.bin' WITH (FORMAT binary)
CREATE TABLE shard_states_back (LIKE shard_states);
\copy shard_states_back FROM 'results/aggregate_states.bin' WITH (FORMAT binary)
-- 6 customers (a..f); 360 value-hours for a, as above
SELECT unique_count_finish(customers), time_weighted_finish(gauge_a) FROM shard_states_back;
SELECT count(*) AS same_after_binary_round_trip
FROM shard_states s JOIN shard_states_back b USING (shard)
WHERE s.customers::text = b.customers::text AND s.gauge_a::text = b.gauge_a::text;

------------------------------------------------------------------------------
-- parallel aggregation gives the serial results
------------------------------------------------------------------------------
CREATE TABLE pts AS
SELECT i AS id, 'c' || (i % 7) AS customer, (i % 13) * 0.5 AS value,
       '2025-01-01Z'::timestamptz + i * interval '1 minute' AS at,
       CASE WHEN i % 500 = 0 THEN 'set' ELSE 'increment' END AS op, 'u' || (i % 321) AS prop
FROM generate_series(1, 30000) i;
ANALYZE pts;
CREATE FUNCTION pg_temp.runs_in_parallel(query text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE plan text;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON, COSTS OFF) ' || query INTO plan;
    RETURN plan LIKE '%"Partial Mode": "Partial"%' AND plan LIKE '%"Node Type": "Gather%';
END
$$;
CREATE VIEW pts_results AS
SELECT customer, metering.latest(value, at, id) AS latest, metering.unique_count(prop) AS users,
       metering.counter_total(op, value, at, id) AS counter,
       metering.time_weighted(value, at, '2025-01-05Z', '2025-01-15Z') AS value_hours
FROM pts GROUP BY customer;
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE serial_results AS SELECT * FROM pts_results;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SELECT pg_temp.runs_in_parallel('SELECT * FROM pts_results') AS grouped_in_parallel,
       pg_temp.runs_in_parallel('SELECT metering.unique_count(prop), metering.latest(value, at) FROM pts') AS plain_in_parallel;
CREATE TEMP TABLE parallel_results AS SELECT * FROM pts_results;
SELECT count(*) AS groups, count(*) FILTER (WHERE s::text = p::text) AS same
FROM serial_results s JOIN parallel_results p USING (customer);
SELECT * FROM parallel_results WHERE customer IN ('c0', 'c3') ORDER BY customer;
SELECT metering.unique_count(prop), count(DISTINCT prop), metering.latest(value, at) FROM pts;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;

------------------------------------------------------------------------------
-- bad input
------------------------------------------------------------------------------
SELECT n, e.* FROM (VALUES
    (1, $$SELECT metering.latest('NaN', '2025-01-01Z')$$),
    (2, $$SELECT metering.latest('-Infinity', '2025-01-01Z')$$),
    (3, $$SELECT metering.latest(1, 'infinity')$$),
    (4, $$SELECT metering.latest(1, '2025-01-01Z', NULL)$$),
    (5, $$SELECT metering.latest(('1e10001')::numeric, '2025-01-01Z')$$),
    (6, $$SELECT metering.counter_total('add', 1, '2025-01-01Z')$$),
    (7, $$SELECT metering.counter_total('SET', 1, '2025-01-01Z')$$),
    (8, $$SELECT metering.counter_total('set', 'NaN', '2025-01-01Z')$$),
    (9, $$SELECT metering.counter_total('set', 1, '-infinity')$$),
    (10, $$SELECT metering.counter_total('set', 1, '2025-01-01Z', NULL)$$),
    (11, $$SELECT metering.time_weighted(1, '2025-01-01Z', NULL, '2025-01-02Z')$$),
    (12, $$SELECT metering.time_weighted(1, '2025-01-01Z', '2025-01-01Z', NULL)$$),
    (13, $$SELECT metering.time_weighted(1, '2025-01-01Z', '2025-01-02Z', '2025-01-01Z')$$),
    (14, $$SELECT metering.time_weighted(1, '2025-01-01Z', '2025-01-01Z', '2025-01-01Z')$$),
    (15, $$SELECT metering.time_weighted(1, '2025-01-01Z', '-infinity', '2025-01-01Z')$$),
    (16, $$SELECT metering.time_weighted(1, 'infinity', '2025-01-01Z', '2025-01-02Z')$$),
    (17, $$SELECT metering.time_weighted(1, '2025-01-01Z', '2025-01-01Z', '2025-01-02Z', NULL)$$),
    (18, $$SELECT metering.time_weighted('Infinity', '2025-01-01Z', '2025-01-01Z', '2025-01-02Z')$$),
    (19, $$SELECT metering.time_weighted(value, at, date_trunc('day', at), date_trunc('day', at) + interval '1 day') FROM gauge$$),
    (20, $$SELECT metering.latest_final(metering.unique_count_trans(NULL, 'x'))$$),
    (21, $$SELECT metering.latest_combine(metering.latest_trans(NULL, 1, '2025-01-01Z'), metering.latest_trans(NULL, 1, '2025-01-01Z', 7))$$),
    (22, $$SELECT metering.unique_count_combine(metering.unique_count_trans(NULL, 'x'), metering.counter_total_trans(NULL, 'set', 1, '2025-01-01Z'))$$),
    (23, $$SELECT metering.time_weighted_combine(metering.time_weighted_trans(NULL, 1, '2025-01-01Z', '2025-01-01Z', '2025-01-02Z'), metering.time_weighted_trans(NULL, 1, '2025-01-01Z', '2025-01-01Z', '2025-01-03Z'))$$),
    (24, $$SELECT 'x1'::metering.aggregate_state$$),
    (25, $$SELECT '\x010'::metering.aggregate_state$$),
    (26, $$SELECT '\x01zz'::metering.aggregate_state$$),
    (27, $$SELECT '\x'::metering.aggregate_state$$),
    (28, $$SELECT '\x090100'::metering.aggregate_state$$),
    (29, $$SELECT '\x010200020401610161'::metering.aggregate_state$$),
    (30, $$SELECT '\x0102000204016101620000'::metering.aggregate_state$$),
    (31, $$SELECT metering.unique_count(i::text) FROM generate_series(1, 1000001) i$$),
    (32, $$SELECT metering.counter_total('increment', 1, '2025-01-01Z'::timestamptz + i * interval '1 microsecond') FROM generate_series(1, 1000001) i$$),
    (33, $$SELECT metering.time_weighted(1, '2025-01-01Z'::timestamptz + i * interval '1 microsecond', '2025-01-01Z', '2025-01-02Z') FROM generate_series(1, 1000001) i$$)
) AS t(n, statement), LATERAL pg_temp.error_of(statement) e ORDER BY n;

-- the caps count what is kept: a million rows on few instants are fine
SELECT metering.unique_count((i % 1000)::text),
       metering.counter_total(CASE WHEN i = 900000 THEN 'set' END, 1, '2025-01-01Z'::timestamptz + i * interval '1 microsecond'),
       metering.time_weighted(i % 3, '2025-01-01Z'::timestamptz + (i % 4) * interval '6 hours', '2025-01-01Z', '2025-01-02Z')
FROM generate_series(1, 1000001) i;   -- 1000; 1 + 100001 increments; 2 x 24 = 48

-- metering._line_quantity: the invoice lines' one aggregate (kind 1 count .. 7 counter)
SELECT k, metering._line_quantity(k, v, t, at, id, op) AS quantity
FROM (VALUES (1, 2.5, NULL, '2025-01-01Z'::timestamptz, 1, NULL), (1, NULL, NULL, '2025-01-02Z', 2, NULL),
             (2, 2.5, NULL, '2025-01-01Z', 1, NULL), (2, 0.25, NULL, '2025-01-02Z', 2, NULL),
             (3, 2.5, NULL, '2025-01-01Z', 1, NULL), (3, 2.50, NULL, '2025-01-02Z', 2, NULL),
             (4, 2.5, NULL, '2025-01-01Z', 1, NULL), (4, -1, NULL, '2025-01-02Z', 2, NULL),
             (5, NULL, 'a', '2025-01-01Z', 1, NULL), (5, NULL, 'a', '2025-01-02Z', 2, NULL),
             (6, 7, NULL, '2025-01-02Z', 1, NULL), (6, 8, NULL, '2025-01-01Z', 2, NULL),
             (7, 5, NULL, '2025-01-01Z', 1, 'set'), (7, 2, NULL, '2025-01-02Z', 2, 'increment'))
     AS r(k, v, t, at, id, op)
GROUP BY k ORDER BY k;   -- 2 rows; 2.75; 2.50; -1; 1 value; 7 (latest at); 5 + 2
-- bad input: a kind outside 1..7, and a kind that changes within a group
SELECT metering._line_quantity(9, 1, NULL, now(), 1, NULL);
SELECT metering._line_quantity(k, 1, NULL, now(), 1, NULL) FROM (VALUES (1), (2)) r(k);

DROP TABLE gauge, requests, ops, shard_states, shard_states_back, pts CASCADE;
DROP AGGREGATE unique_count_partial(text), unique_count_finish(metering.aggregate_state),
    time_weighted_partial(numeric, timestamptz, timestamptz, timestamptz), time_weighted_finish(metering.aggregate_state);
-- leave the database as the next suite expects it
DROP EXTENSION metering;
