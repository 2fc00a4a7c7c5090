-- metering.ingest: one event per call, idempotency for all time, every bad input.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
SELECT metering.create_customer('c1'), metering.create_customer('c2');
SELECT metering.create_meter('calls', 'count'), metering.create_meter('tokens', 'sum'),
       metering.create_meter('gb', 'sum', 'gb'), metering.create_meter('users', 'unique_count', 'user');

-- normal use; ids are bigints made by the extension
SELECT metering.ingest('c1', 'calls') > 0 AS stored;
SELECT metering.ingest('c1', 'tokens', 1200, '2025-11-01 10:00:00+01', 'req-1', '{"model": "small"}');
SELECT metering.ingest('c1', 'gb', 1, '2025-11-01T09:00:00Z', properties => '{"gb": "2.5"}');
SELECT customer_id, meter, value, occurred_at, due_at, idempotency_key, properties
FROM metering.events WHERE customer_id = 'c1' AND meter <> 'calls' ORDER BY event_id;

-- due_at picks the billing period; it defaults to occurred_at
SELECT metering.ingest('c1', 'tokens', 5, '2025-10-31 23:59:00Z', due_at => '2025-11-01 00:00:00Z') AS late_id \gset
SELECT occurred_at, due_at FROM metering.events WHERE event_id = :late_id;

-- a repeat with the same payload returns the stored id and stores nothing
SELECT metering.ingest('c1', 'tokens', 1200, '2025-11-01 09:00:00Z', 'req-1', '{"model": "small"}');
SELECT metering.ingest('c1', 'tokens', 1200.00, '2025-11-01 09:00:00Z', 'req-1', '{"model": "small"}');  -- same number
SELECT count(*) FROM metering.events WHERE idempotency_key = 'req-1';
-- the same key of another customer is another event
SELECT metering.ingest('c2', 'tokens', 7, '2025-11-01 09:00:00Z', 'req-1') <> 2 AS other_event;
-- a retry that lets occurred_at default to now() is the same event
SELECT metering.ingest('c2', 'calls', idempotency_key => 'retry-me') AS first_id \gset
SELECT metering.ingest('c2', 'calls', idempotency_key => 'retry-me') = :first_id AS same_id;
-- ... and a different payload is an error naming what differs
SELECT metering.ingest('c1', 'tokens', 1300, '2025-11-01 09:00:00Z', 'req-1', '{"model": "small"}');
SELECT metering.ingest('c1', 'tokens', 1200, '2025-11-01 09:00:01Z', 'req-1', '{"model": "small"}');
SELECT metering.ingest('c1', 'tokens', 1200, '2025-11-01 09:00:00Z', 'req-1', '{"model": "large"}');
SELECT metering.ingest('c1', 'calls', 1200, '2025-11-01 09:00:00Z', 'req-1', '{"model": "small"}');

-- an ingest in a transaction that rolls back leaves nothing
SELECT count(*) AS before FROM metering.events \gset
BEGIN;
SELECT metering.ingest('c1', 'calls', idempotency_key => 'rolled-back') > 0 AS stored;
ROLLBACK;
SELECT count(*) - :before AS added, count(*) FILTER (WHERE idempotency_key = 'rolled-back') AS kept
FROM metering.events;

-- bad input: each gets its own SQLSTATE
\set VERBOSITY sqlstate
SELECT metering.ingest('nobody', 'calls');
\set VERBOSITY default
SELECT metering.ingest('nobody', 'calls');
SELECT metering.ingest('c1', 'nothing');
SELECT metering.ingest(NULL, 'calls');
SELECT metering.ingest('c1', NULL);
SELECT metering.ingest('c1', 'calls', NULL);
SELECT metering.ingest('c1', 'calls', 1, NULL);
SELECT metering.ingest('c1', 'tokens', 'NaN');
SELECT metering.ingest('c1', 'tokens', 'Infinity');
SELECT metering.ingest('c1', 'tokens', '-Infinity');
SELECT metering.ingest('c1', 'calls', -1);
SELECT metering.ingest('c1', 'tokens', -30, '2025-11-02Z') > 0 AS correction_stored;   -- sum meters take corrections
SELECT metering.ingest('c1', 'calls', 1, '2999-01-01Z');
SELECT metering.ingest('c1', 'calls', 1, now() + interval '4 minutes') > 0 AS within_skew;
SET metering.max_future_skew = '1min';
\set VERBOSITY sqlstate
SELECT metering.ingest('c1', 'calls', 1, now() + interval '4 minutes');
\set VERBOSITY default
RESET metering.max_future_skew;
SELECT metering.ingest('c1', 'calls', 1, 'infinity');
SELECT metering.ingest('c1', 'calls', 1, '-infinity');
SELECT metering.ingest('c1', 'calls', 1, '2025-11-01Z', due_at => 'infinity');
SELECT metering.ingest('c1', 'calls', idempotency_key => '');
SELECT metering.ingest('c1', 'calls', idempotency_key => repeat('k', 256));
SELECT metering.ingest('c1', 'calls', idempotency_key => repeat('k', 255)) > 0 AS key_255_ok;
SELECT metering.ingest('c1', 'calls', properties => '[1, 2]');
SELECT metering.ingest('c1', 'calls', properties => '"text"');
SELECT metering.ingest('c1', 'gb', 1, properties => '{}');                 -- the meter aggregates properties.gb
SELECT metering.ingest('c1', 'gb', 1, properties => '{"gb": "lots"}');
SELECT metering.ingest('c1', 'gb', 1, properties => '{"gb": -3}');
SELECT metering.ingest('c1', 'users', properties => '{"user": "u1"}') > 0 AS stored;
SELECT metering.ingest('c1', 'users', properties => '{"name": "u1"}');
SELECT metering.ingest('c1', 'calls', 1, 'not a date');                     -- input syntax errors are Postgres' own

-- events are append-only
UPDATE metering.events SET value = 2;
DELETE FROM metering.events;
