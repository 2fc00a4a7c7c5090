-- The partitioned event store (issue 10): a partition per month of due_at (UTC),
-- made on demand by every ingest path; idempotency keys kept for all time in
-- metering.idempotency_keys; retention (metering.drop_events_before) with the keys of
-- dropped events still recognized; each new object tried by the least privileged roles.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
SET timezone = 'UTC';
CREATE FUNCTION pg_temp.error_of(statement text, OUT code text, OUT message text, OUT detail text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    code := 'none';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
END
$$;
CREATE VIEW pg_temp.months AS
SELECT p.partition, p.from_ts, p.to_ts,
       (SELECT count(*) FROM pg_depend d WHERE d.objid = p.partition AND d.deptype = 'e') AS members,
       (SELECT string_agg(i.indexrelid::regclass::text || ' ' || am.amname, ', ' ORDER BY i.indexrelid::regclass::text)
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
        WHERE i.indrelid = p.partition) AS indexes
FROM metering._event_partitions() p ORDER BY p.from_ts;

SELECT metering.create_customer('p1'), metering.create_customer('p2');
SELECT metering.create_meter('calls', 'count'), metering.create_meter('tokens', 'sum'),
       metering.create_meter('seats', 'counter'), metering.create_meter('gauge', 'time_weighted'),
       metering.create_meter('doubled', 'custom', expression => 'sum(value) * 2');
SELECT metering.create_plan('pro', 'USD', '1 month', 10);
SELECT metering.add_charge('pro', m, '{"model": "per_unit", "unit_price": 1}') > 0 AS charged
FROM unnest(ARRAY['calls', 'tokens', 'seats', 'gauge', 'doubled']) m;
SELECT metering.subscribe('p1', 'pro', '2025-01-01') AS sub \gset

------------------------------------------------------------------------------
-- Partitions made on demand: one per month (UTC) of due_at, by every ingest path,
-- with the primary key (no index on txid: metering.event_writes); made at run time, so not the
-- extension's (pg_dump dumps them with their rows).
------------------------------------------------------------------------------
SELECT * FROM pg_temp.months;
SELECT metering.ingest('p1', 'calls', 1, '2025-01-05', 'jan-1');
-- an instant at the end of a month in another time zone is in the next month in UTC
SELECT metering.ingest('p1', 'calls', 1, '2025-01-31 20:00-08', 'feb-1');
SELECT ordinal, status FROM metering.ingest_batch(
    '[{"customer_id": "p1", "meter": "tokens", "value": 5, "occurred_at": "2025-02-10T00:00:00Z", "idempotency_key": "b-1"},
      {"customer_id": "p1", "meter": "tokens", "value": 7, "occurred_at": "2025-03-10T00:00:00Z", "idempotency_key": "b-2"},
      {"customer_id": "p1", "meter": "tokens", "value": 5, "occurred_at": "2025-02-10T00:00:00Z", "idempotency_key": "b-1"}]');
COPY metering.events_import (customer_id, meter, value, occurred_at, idempotency_key) FROM STDIN WITH (FORMAT csv);
p1,calls,1,2025-04-02 10:00:00+00,bulk-1
p1,calls,1,2025-04-02 11:00:00+00,bulk-2
\.
SELECT metering.counter_increment('p1', 'seats', 3, '2025-01-10'), metering.counter_set('p1', 'seats', 10, '2025-02-10'),
       metering.counter_increment('p1', 'seats', 2, '2025-02-20');
SELECT metering.ingest('p1', 'gauge', 5, '2025-01-15'), metering.ingest('p1', 'gauge', 7, '2025-02-15'),
       metering.ingest('p1', 'doubled', 4, '2025-01-20');
-- COPY or INSERT into events without due_at: the row lands in events_undated, whose
-- trigger stores it in the month of its occurred_at (made if need be) and skips it there
COPY metering.events (customer_id, meter, value, occurred_at, idempotency_key) FROM STDIN WITH (FORMAT csv);
p1,calls,1,2025-05-03 10:00:00+00,copy-1
p1,calls,1,2025-01-06 10:00:00+00,copy-2
\.
INSERT INTO metering.events (customer_id, meter, value, occurred_at) VALUES ('p2', 'calls', 1, '2025-06-01');
SELECT * FROM pg_temp.months;
SELECT tableoid::regclass AS partition, count(*), min(due_at), max(due_at)
FROM metering.events GROUP BY 1 ORDER BY 1;
SELECT count(*) AS rows_in_events_undated FROM metering.events_undated;
-- A row given with a due_at of a month without a partition has nowhere to go: Postgres
-- routes rows before any trigger runs. The month is made first.
SELECT * FROM pg_temp.error_of($$INSERT INTO metering.events (customer_id, meter, value, occurred_at, due_at)
                                 VALUES ('p2', 'calls', 1, '2025-07-01', '2025-07-02')$$);
SELECT metering.create_event_partitions('2025-07-01', '2025-09-01');
SELECT metering.create_event_partitions('2025-07-15', '2025-08-15');  -- made already
INSERT INTO metering.events (customer_id, meter, value, occurred_at, due_at) VALUES ('p2', 'calls', 1, '2025-07-01', '2025-07-02');
SELECT * FROM pg_temp.error_of($$SELECT metering.create_event_partitions('2025-01-01', '2126-01-02')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_event_partitions('2025-02-01', '2025-01-01')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_event_partitions(NULL, '2025-01-01')$$);
-- the bounds of the first and last months Postgres has
SELECT metering._create_event_partition('4713-11-24 00:00:00+00 BC'), metering._create_event_partition('294276-12-31 23:59:59+00');
SELECT partition, from_ts, to_ts FROM pg_temp.months WHERE from_ts < '0001-01-01' OR to_ts = 'infinity' ORDER BY from_ts;

------------------------------------------------------------------------------
-- Dedup through metering.idempotency_keys: the same answers on every path.
------------------------------------------------------------------------------
SELECT customer_id, idempotency_key, event_id, meter, value, op, due_at, occurred_at, times_defaulted,
       properties_hash = metering._properties_hash('{}') AS empty_properties
FROM metering.idempotency_keys ORDER BY event_id;
SELECT metering.ingest('p1', 'calls', 1, '2025-01-05', 'jan-1') = (SELECT event_id FROM metering.idempotency_keys
                                                                  WHERE idempotency_key = 'jan-1') AS repeat_returns_stored;
SELECT * FROM pg_temp.error_of($$SELECT metering.ingest('p1', 'calls', 1, '2025-01-06', 'jan-1')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.ingest('p1', 'tokens', 1, '2025-01-05', 'jan-1')$$);
-- properties compare as jsonb does: key order and 1.0 = 1 do not matter
SELECT metering.ingest('p1', 'tokens', 2, '2025-03-01', 'props', '{"a": 1.0, "b": [1, "x"]}') AS props \gset
SELECT metering.ingest('p1', 'tokens', 2, '2025-03-01', 'props', '{"b": [1.00, "x"], "a": 1}') = :props AS same_props;
SELECT * FROM pg_temp.error_of($$SELECT metering.ingest('p1', 'tokens', 2, '2025-03-01', 'props', '{"a": 1, "b": [1, "y"]}')$$);
SELECT metering._properties_hash('{"a": 1.0}') = metering._properties_hash('{"a": 1}') AS equal_numbers,
       metering._properties_hash('{"a": "1"}') <> metering._properties_hash('{"a": 1}') AS string_is_not_number,
       metering._properties_hash('{"ab": "c"}') <> metering._properties_hash('{"a": "bc"}') AS keys_apart;
-- the bulk path and COPY take the same keys
COPY metering.events_import (customer_id, meter, value, occurred_at, idempotency_key) FROM STDIN WITH (FORMAT csv);
p1,calls,1,2025-04-02 10:00:00+00,bulk-1
\.
COPY metering.events_import (customer_id, meter, value, occurred_at, idempotency_key) FROM STDIN WITH (FORMAT csv);
p1,calls,1,2025-04-02 10:30:00+00,bulk-1
\.
COPY metering.events (customer_id, meter, value, occurred_at, due_at, idempotency_key) FROM STDIN WITH (FORMAT csv);
p1,calls,1,2025-01-05 00:00:00+00,2025-01-05 00:00:00+00,jan-1
\.
SELECT idempotency_key, count(*) FROM metering.events WHERE idempotency_key IS NOT NULL GROUP BY 1 ORDER BY 1;

------------------------------------------------------------------------------
-- Retention: drop_events_before drops the months once every billing period that
-- began before the horizon is invoiced for good.
------------------------------------------------------------------------------
SELECT * FROM pg_temp.error_of($$SELECT metering.drop_events_before('2025-03-15')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.drop_events_before(date_trunc('month', now(), 'UTC') + interval '1 month')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.drop_events_before(NULL)$$);
-- nothing invoiced yet
SELECT * FROM pg_temp.error_of($$SELECT metering.drop_events_before('2025-03-01')$$);
SELECT metering.close_periods('2025-04-02');
SELECT period_start, meter, quantity, amount FROM metering.invoice_lines
WHERE period_start < '2025-03-01' AND meter IS NOT NULL ORDER BY 1, 2;
-- a late event into invoiced February waits for the next invoice: not billed for good yet
SELECT metering.ingest('p1', 'calls', 1, '2025-02-20', 'late-feb') > 0 AS late;
SELECT * FROM pg_temp.error_of($$SELECT metering.drop_events_before('2025-03-01')$$);
SELECT metering.close_periods('2025-05-02');
SELECT metering.counter_value('p1', 'seats', '2025-03-15') AS seats_before,
       metering.usage('p1', 'gauge', '2025-03-01', '2025-04-01') AS gauge_march_before;
SELECT metering.drop_events_before('2025-03-01') AS months_dropped;
SELECT partition, from_ts, to_ts, members FROM pg_temp.months WHERE from_ts < '2025-06-01' AND from_ts > '0001-01-01';
SELECT count(*) AS events_left_before_march FROM metering.events WHERE due_at < '2025-03-01';
SELECT customer_id, meter, value, due_at FROM metering.retained_values ORDER BY meter;
-- what was billed stands, and reads go on from what was kept
SELECT period_start, meter, quantity, amount FROM metering.invoice_lines
WHERE period_start < '2025-03-01' AND meter IS NOT NULL ORDER BY 1, 2;
SELECT metering.counter_value('p1', 'seats', '2025-03-15') AS seats_after,
       metering.usage('p1', 'gauge', '2025-03-01', '2025-04-01') AS gauge_march_after;
-- The keys of dropped events are still recognized: the stored id, or MT011.
SELECT metering.ingest('p1', 'calls', 1, '2025-01-05', 'jan-1') = (SELECT event_id FROM metering.idempotency_keys
                                                                  WHERE idempotency_key = 'jan-1') AS dropped_key_returns_stored;
SELECT * FROM pg_temp.error_of($$SELECT metering.ingest('p1', 'calls', 2, '2025-01-05', 'jan-1')$$);
SELECT ordinal, status FROM metering.ingest_batch(
    '[{"customer_id": "p1", "meter": "tokens", "value": 5, "occurred_at": "2025-02-10T00:00:00Z", "idempotency_key": "b-1"}]');
COPY metering.events_import (customer_id, meter, value, occurred_at, idempotency_key) FROM STDIN WITH (FORMAT csv);
p1,calls,1,2025-01-31 20:00:00-08,feb-1
\.
COPY metering.events (customer_id, meter, value, occurred_at, idempotency_key) FROM STDIN WITH (FORMAT csv);
p1,calls,1,2025-01-06 10:00:00+00,copy-2
\.
SELECT count(*) AS events_left_before_march FROM metering.events WHERE due_at < '2025-03-01';
-- A new event due before the horizon is refused on every path (MT024).
SELECT * FROM pg_temp.error_of($$SELECT metering.ingest('p1', 'calls', 1, '2025-02-27', 'new-feb')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.ingest('p1', 'calls', 1, '2025-03-27', due_at => '2025-02-27')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.ingest_batch(
    '[{"customer_id": "p1", "meter": "calls", "occurred_at": "2025-03-02T00:00:00Z"},
      {"customer_id": "p1", "meter": "calls", "occurred_at": "2025-02-02T00:00:00Z"}]')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.counter_increment('p1', 'seats', 1, '2025-02-27')$$);
SELECT * FROM pg_temp.error_of($$INSERT INTO metering.events (customer_id, meter, value, occurred_at)
                                 VALUES ('p1', 'calls', 1, '2025-02-27')$$);
SELECT * FROM pg_temp.error_of($$INSERT INTO metering.events_import (customer_id, meter, value, occurred_at)
                                 VALUES ('p1', 'calls', 1, '2025-02-27')$$);
-- and so are reads and corrections that would need the dropped events
SELECT * FROM pg_temp.error_of($$SELECT metering.usage('p1', 'calls', '2025-01-01', '2025-04-01')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.counter_value('p1', 'seats', '2025-02-15')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.void_invoice((SELECT min(invoice_id) FROM metering.invoices), 'x')$$);
SELECT metering.drop_events_before('2025-02-01') AS already, metering.drop_events_before('2025-03-01') AS again;
-- a period of a custom or time_weighted meter must not lose part of its events
SELECT metering.create_customer('p3'), metering.subscribe('p3', 'pro', '2025-03-15') > 0 AS subscribed;
SELECT metering.ingest('p3', 'gauge', 1, '2025-03-20'), metering.ingest('p3', 'calls', 1, '2025-04-20');
SELECT metering.close_periods('2025-06-16');
SELECT * FROM pg_temp.error_of($$SELECT metering.drop_events_before('2025-04-01')$$);
SELECT * FROM pg_temp.months WHERE from_ts >= '2025-03-01' AND from_ts < '2025-05-01';

------------------------------------------------------------------------------
-- The least privileged roles that reach the new objects, beyond their grants.
------------------------------------------------------------------------------
CREATE ROLE regress_part_app;
GRANT USAGE ON SCHEMA metering TO regress_part_app;
GRANT EXECUTE ON FUNCTION metering.ingest(text, text, numeric, timestamptz, text, jsonb, timestamptz),
    metering.ingest_batch(jsonb) TO regress_part_app;
CREATE ROLE regress_part_copy;  -- a COPY loader: INSERT on events
GRANT USAGE ON SCHEMA metering TO regress_part_copy;
GRANT INSERT ON metering.events TO regress_part_copy;
CREATE ROLE regress_part_reporter;
GRANT USAGE ON SCHEMA metering TO regress_part_reporter;
GRANT SELECT ON ALL TABLES IN SCHEMA metering TO regress_part_reporter;
CREATE SCHEMA regress_part_own AUTHORIZATION regress_part_copy;
CREATE TABLE regress_part_own.t (LIKE metering.events);
ALTER TABLE regress_part_own.t OWNER TO regress_part_copy;
CREATE TEMP TABLE attempts (role text, statement text);
GRANT ALL ON TABLE pg_temp.attempts TO PUBLIC;
INSERT INTO attempts VALUES
    -- an application makes a month by ingesting into it (what it is for)
    ('regress_part_app', $$SELECT metering.ingest('p2', 'calls', 1, '2025-10-01') > 0$$),
    ('regress_part_app', $$SELECT metering.create_event_partitions('2030-01-01', '2030-02-01')$$),
    ('regress_part_app', $$SELECT metering._create_event_partition('2030-01-01')$$),
    ('regress_part_app', $$SELECT metering.drop_events_before('2025-04-01')$$),
    ('regress_part_app', $$SELECT count(*) FROM metering.idempotency_keys$$),
    ('regress_part_app', $$SELECT count(*) FROM metering.events_2025_04$$),
    ('regress_part_app', $$SELECT metering._properties_hash('{}')$$),
    ('regress_part_app', $$SELECT count(*) FROM metering._event_partitions()$$),
    -- the helpers the views call are PUBLIC's, and read as their caller
    ('regress_part_app', $$SELECT metering._retention_horizon() = '2025-03-01'$$),
    ('regress_part_app', $$SELECT metering._billed_quantity(1, '2025-01-01', 1)$$),
    -- a COPY loader inserts through events only, and may not touch a partition or the keys
    ('regress_part_copy', $$INSERT INTO metering.events (customer_id, meter, value, occurred_at) VALUES ('p2', 'calls', 1, '2025-10-02')$$),
    ('regress_part_copy', $$INSERT INTO metering.events_2025_10 (event_id, customer_id, meter, value, occurred_at, due_at, ingested_at, properties, txid)
                            VALUES (1, 'p2', 'calls', 1, '2025-10-02', '2025-10-02', '2000-01-01', '{}', 1)$$),
    ('regress_part_copy', $$INSERT INTO metering.events_undated (event_id, customer_id, meter, value, occurred_at, due_at, ingested_at, properties, txid)
                            VALUES (1, 'p2', 'calls', 1, '2025-10-02', 'infinity', '2000-01-01', '{}', 1)$$),
    ('regress_part_copy', $$INSERT INTO metering.idempotency_keys (event_id, due_at, occurred_at, properties_hash, times_defaulted,
                                                                    customer_id, idempotency_key, meter, value)
                            VALUES (1, now(), now(), 0, false, 'p2', 'forged', 'calls', 1)$$),
    ('regress_part_copy', $$DELETE FROM metering.idempotency_keys$$),
    ('regress_part_copy', $$ALTER TABLE metering.events ATTACH PARTITION regress_part_own.t FOR VALUES FROM ('2040-01-01') TO ('2040-02-01')$$),
    ('regress_part_copy', $$CREATE TABLE regress_part_own.u PARTITION OF metering.events FOR VALUES FROM ('2041-01-01') TO ('2041-02-01')$$),
    ('regress_part_copy', $$ALTER TABLE metering.events DETACH PARTITION metering.events_2025_10$$),
    ('regress_part_copy', $$DROP TABLE metering.events_retired$$),
    ('regress_part_copy', $$TRUNCATE metering.events_2025_10$$),
    -- the index that logs where a month was written serves the months only, and stays:
    -- without it a step would not find the month's new events
    ('regress_part_copy', $$CREATE INDEX ON regress_part_own.t USING metering_writes (txid)$$),
    ('regress_part_copy', $$DROP INDEX metering.events_2025_10_writes$$),
    ('regress_part_copy', $$DELETE FROM metering.event_writes$$),
    -- a reporter reads what it was granted, and changes nothing
    ('regress_part_reporter', $$SELECT count(*) > 0 FROM metering.idempotency_keys$$),
    ('regress_part_reporter', $$SELECT count(*) >= 0 FROM metering.events$$),
    ('regress_part_reporter', $$UPDATE metering.idempotency_keys SET event_id = 1$$),
    ('regress_part_reporter', $$DELETE FROM metering.retained_values$$),
    ('regress_part_reporter', $$SELECT metering.drop_events_before('2025-04-01')$$),
    ('regress_part_reporter', $$SELECT metering.create_event_partitions('2030-01-01', '2030-02-01')$$),
    ('regress_part_reporter', $$UPDATE metering.events_2025_04 SET value = 0$$),
    ('regress_part_reporter', $$SELECT metering._billed_quantity(1, '2025-01-01', 1)$$);
CREATE FUNCTION pg_temp.attempt(r text, statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    code text; message text;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    EXECUTE statement;
    RESET ROLE;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
    RETURN code || ': ' || message;
END $$;
SELECT a.role, a.statement, pg_temp.attempt(a.role, a.statement) AS outcome FROM attempts a;
RESET ROLE;
SELECT count(*) AS forged_keys FROM metering.idempotency_keys WHERE idempotency_key = 'forged';
-- the month the application made belongs to the owner of metering.events, like every other
SELECT m.partition, m.members, c.relowner = (SELECT relowner FROM pg_class WHERE oid = 'metering.events'::regclass) AS owners_month,
       c.relacl
FROM pg_temp.months m JOIN pg_class c ON c.oid = m.partition
WHERE m.from_ts >= '2025-10-01' AND m.from_ts < '2050-01-01';
DROP SCHEMA regress_part_own CASCADE;
DROP OWNED BY regress_part_app, regress_part_copy, regress_part_reporter;
DROP ROLE regress_part_app, regress_part_copy, regress_part_reporter;
