-- Privileges: PUBLIC gets nothing but pure helpers; an ingest-only role gets
-- EXECUTE on the ingest and counter functions and cannot touch the tables.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
SELECT metering.create_customer('p1'), metering.create_meter('calls', 'count'), metering.create_meter('seats', 'counter');

-- what PUBLIC may execute
SELECT p.oid::regprocedure AS public_function
FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
WHERE p.pronamespace = 'metering'::regnamespace AND a.grantee = 0 AND a.privilege_type = 'EXECUTE'
ORDER BY 1;
-- no table or sequence privilege for PUBLIC
SELECT c.relname, a.privilege_type
FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
WHERE c.relnamespace = 'metering'::regnamespace AND a.grantee = 0;
-- every SECURITY DEFINER function pins its search_path
SELECT p.oid::regprocedure AS definer_without_search_path FROM pg_proc p
WHERE p.pronamespace = 'metering'::regnamespace AND p.prosecdef
  AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false);

-- the GRANT lines of docs/privileges.md for an application that only ingests
CREATE ROLE regress_metering_app;
GRANT USAGE ON SCHEMA metering TO regress_metering_app;
GRANT EXECUTE ON FUNCTION
    metering.ingest(text, text, numeric, timestamptz, text, jsonb, timestamptz),
    metering.ingest_batch(jsonb),
    metering.counter_increment(text, text, numeric, timestamptz, text),
    metering.counter_set(text, text, numeric, timestamptz, text),
    metering.counter_value(text, text, timestamptz)
TO regress_metering_app;

SET ROLE regress_metering_app;
SELECT metering.ingest('p1', 'calls', 1, '2025-11-01Z', 'app-1') > 0 AS ingested;
SELECT status FROM metering.ingest_batch('[{"customer_id": "p1", "meter": "calls", "occurred_at": "2025-11-01T00:00:00Z"}]');
SELECT metering.counter_increment('p1', 'seats', 2, '2025-11-01Z');
SELECT metering.counter_value('p1', 'seats', '2025-11-02Z');
SELECT count(*) FROM metering.events;
INSERT INTO metering.events (customer_id, meter, value, occurred_at) VALUES ('p1', 'calls', 1, now());
UPDATE metering.customers SET name = 'x';
SELECT metering.create_customer('p2');
-- nor roll up: refresh_usage is for the owner and pg_cron's role
SELECT metering.refresh_usage();
-- nor list every subscription (customer, anchor, time zone) through the step's helper
SELECT * FROM metering._rollup_subscriptions();
SELECT metering.usage('p1', 'calls', '2025-11-01Z', '2025-12-01Z');
-- the CHECK function of events_import is PUBLIC, but answers only roles that may insert there
SELECT metering._import_check('p1', 'calls', 1, now(), NULL, NULL, NULL);
INSERT INTO metering.events_import (customer_id, meter, value, occurred_at) VALUES ('p1', 'calls', 1, now());
RESET ROLE;

-- a bulk loader may COPY: INSERT on the table, the trigger still applies every rule
CREATE ROLE regress_metering_loader;
GRANT USAGE ON SCHEMA metering TO regress_metering_loader;
GRANT INSERT ON metering.events TO regress_metering_loader;
SET ROLE regress_metering_loader;
COPY metering.events (customer_id, meter, value, occurred_at) FROM STDIN WITH (FORMAT csv);
p1,calls,1,2025-11-03 00:00:00+00
\.
COPY metering.events (customer_id, meter, value, occurred_at) FROM STDIN WITH (FORMAT csv);
nobody,calls,1,2025-11-03 00:00:00+00
\.
SELECT count(*) FROM metering.events;
RESET ROLE;
SELECT count(*) FROM metering.events;
-- the bulk path: INSERT on the table events_import alone is enough
GRANT INSERT ON metering.events_import TO regress_metering_loader;
REVOKE INSERT ON metering.events FROM regress_metering_loader;
SET ROLE regress_metering_loader;
COPY metering.events_import (customer_id, meter, value, occurred_at) FROM STDIN WITH (FORMAT csv);
p1,calls,1,2025-11-04 00:00:00+00
\.
COPY metering.events (customer_id, meter, value, occurred_at) FROM STDIN WITH (FORMAT csv);
p1,calls,1,2025-11-04 00:00:00+00
\.
RESET ROLE;
SELECT count(*) FROM metering.events;
-- INSERT granted on the columns it loads is enough too (another customer: the
-- reporting below reads p1's lines)
SELECT metering.create_customer('p3');
REVOKE INSERT ON metering.events_import FROM regress_metering_loader;
GRANT INSERT (customer_id, meter, value, occurred_at) ON metering.events_import TO regress_metering_loader;
SET ROLE regress_metering_loader;
INSERT INTO metering.events_import (customer_id, meter, value, occurred_at) VALUES ('p3', 'calls', 1, '2025-11-05');
INSERT INTO metering.events_import (customer_id, meter, value, occurred_at, idempotency_key)
VALUES ('p3', 'calls', 1, '2025-11-05', 'k');
RESET ROLE;
SELECT count(*) FROM metering.events;

-- finance/ops reads the views with the GRANT lines of docs/privileges.md: the
-- functions the views call are executable by PUBLIC and run as the reader
CREATE ROLE regress_metering_reporter;
GRANT USAGE ON SCHEMA metering TO regress_metering_reporter;
GRANT SELECT ON ALL TABLES IN SCHEMA metering TO regress_metering_reporter;
SELECT metering.create_plan('basic', 'EUR', '1 month', 10),
       metering.add_charge('basic', 'calls', '{"model": "per_unit", "unit_price": "0.5"}') > 0 AS charge,
       metering.subscribe('p1', 'basic', '2025-11-01 00:00Z') > 0 AS subscribed;
SET ROLE regress_metering_reporter;
SELECT period_start, meter, quantity, amount FROM metering.invoice_lines
WHERE period_start = '2025-11-01 00:00Z' ORDER BY meter NULLS FIRST;
RESET ROLE;
-- the helpers open no table to PUBLIC: called directly, _quantity reads as its caller
SET ROLE regress_metering_app;
\set VERBOSITY terse
SELECT metering._quantity(('calls', 'count', NULL, NULL, false, NULL, now(), 1)::metering.meters, 'p1',
                          '2025-11-01', '2025-12-01');
\set VERBOSITY default
RESET ROLE;

DROP OWNED BY regress_metering_app, regress_metering_loader, regress_metering_reporter;
DROP ROLE regress_metering_app, regress_metering_loader, regress_metering_reporter;
