-- Security of the ingest paths (issue 9). Each attack, made by the least
-- privileged role that would try it, is refused with a clear SQLSTATE (shown
-- beside the message), leaves metering.events as it was, and the backend survives.
-- Roles: a login role with no grant at all, a bulk loader (INSERT on
-- events_import) and a COPY loader (INSERT on events), as docs/privileges.md
-- grants them.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
SET timezone = 'UTC';
SELECT metering.create_customer('s1'), metering.create_meter('calls', 'count'),
       metering.create_meter('seats', 'counter');
SELECT metering.ingest('s1', 'calls', 1, '2025-11-01Z', 'first') AS first_id \gset
SELECT metering.counter_set('s1', 'seats', 5, '2025-11-01Z');
-- Errors as one line: SQLSTATE and message (COPY FROM STDIN cannot run in a
-- function: its errors show in full, and the same rows go in by INSERT here).
CREATE FUNCTION pg_temp.error_of(statement text, OUT code text, OUT message text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    code := 'none';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
END
$$;
-- what "unchanged" compares: every column of every event
CREATE FUNCTION pg_temp.events_fingerprint() RETURNS text LANGUAGE sql
AS $$ SELECT md5(string_agg(e::text, ',' ORDER BY e.event_id, e.customer_id)) FROM metering.events e $$;
SELECT pg_temp.events_fingerprint() AS fingerprint \gset

CREATE ROLE regress_sec_ingest_login LOGIN;
CREATE ROLE regress_sec_ingest_bulk LOGIN;
GRANT USAGE ON SCHEMA metering TO regress_sec_ingest_bulk;
GRANT INSERT ON metering.events_import TO regress_sec_ingest_bulk;
CREATE ROLE regress_sec_ingest_copy LOGIN;
GRANT USAGE ON SCHEMA metering TO regress_sec_ingest_copy;
GRANT INSERT ON metering.events TO regress_sec_ingest_copy;

------------------------------------------------------------------------------
-- Attack 1: a table of one's own with the bulk path's access method. Access
-- methods have no privileges, so metering_import serves events_import alone.
------------------------------------------------------------------------------
SET ROLE regress_sec_ingest_login;
CREATE TEMP TABLE forged (customer_id text, meter text, value numeric, occurred_at timestamptz,
    due_at timestamptz, idempotency_key text, properties jsonb,
    CONSTRAINT events_import_valid CHECK (true)) USING metering_import;
SELECT * FROM pg_temp.error_of($$
    CREATE TEMP TABLE forged (customer_id text, meter text, value numeric, occurred_at timestamptz,
        due_at timestamptz, idempotency_key text, properties jsonb,
        CONSTRAINT events_import_valid CHECK (true)) USING metering_import$$);
-- a column of another type used to hand the store a wrong Datum: the server crashed
SELECT * FROM pg_temp.error_of($$
    CREATE TEMP TABLE forged (customer_id int8, meter text, value numeric, occurred_at timestamptz,
        due_at timestamptz, idempotency_key text, properties jsonb,
        CONSTRAINT events_import_valid CHECK (true)) USING metering_import$$);
-- the other ways to such a table: a rewrite, and the default access method
CREATE TEMP TABLE plain (customer_id text, meter text, value numeric, occurred_at timestamptz);
SELECT * FROM pg_temp.error_of($$ALTER TABLE plain SET ACCESS METHOD metering_import$$);
SET default_table_access_method = metering_import;
SELECT * FROM pg_temp.error_of($$CREATE TEMP TABLE by_default (customer_id text)$$);
RESET default_table_access_method;
-- and the real table without a grant
SELECT * FROM pg_temp.error_of($$INSERT INTO metering.events_import (customer_id, meter, value, occurred_at)
                                 VALUES ('s1', 'calls', 1000000, '2025-11-02Z')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering._import_check('s1', 'calls', 1, now(), NULL, NULL, NULL)$$);
SELECT 1 AS backend_alive;
RESET ROLE;
SELECT pg_temp.events_fingerprint() = :'fingerprint' AS events_unchanged;

-- The bulk loader cannot either; its own loads go through every rule.
SET ROLE regress_sec_ingest_bulk;
SELECT * FROM pg_temp.error_of($$
    CREATE TEMP TABLE forged (customer_id text, meter text, value numeric, occurred_at timestamptz,
        due_at timestamptz, idempotency_key text, properties jsonb,
        CONSTRAINT events_import_valid CHECK (true)) USING metering_import$$);
COPY metering.events_import (customer_id, meter, value, occurred_at) FROM STDIN WITH (FORMAT csv);
s1,calls,1,2025-11-02 00:00:00+00
s1,calls,NaN,2025-11-02 00:00:00+00
\.
SELECT * FROM pg_temp.error_of($$INSERT INTO metering.events_import (customer_id, meter, value, occurred_at)
                                 VALUES ('s1', 'calls', 'NaN', '2025-11-02Z')$$);
SELECT 1 AS backend_alive;
RESET ROLE;
SELECT pg_temp.events_fingerprint() = :'fingerprint' AS events_unchanged;

-- A table that has the access method without passing the check at creation
-- (made before it, or by a superuser's catalog change) gets no row through.
BEGIN;
CREATE TABLE public.old_forged (customer_id text, meter text, value numeric, occurred_at timestamptz,
    due_at timestamptz, idempotency_key text, properties jsonb);
UPDATE pg_class SET relam = (SELECT oid FROM pg_am WHERE amname = 'metering_import')
WHERE oid = 'public.old_forged'::regclass;
GRANT INSERT, SELECT ON public.old_forged TO regress_sec_ingest_login;
SET ROLE regress_sec_ingest_login;
SELECT * FROM pg_temp.error_of($$INSERT INTO public.old_forged (customer_id, meter, value, occurred_at)
                                 VALUES ('nobody', 'calls', 'NaN', now())$$);
SELECT * FROM pg_temp.error_of($$SELECT * FROM public.old_forged$$);
ROLLBACK;

-- events_import changed by its owner: the column types and the CHECK constraint
-- are checked at each statement, before any row is stored.
BEGIN;
ALTER TABLE metering.events_import DROP CONSTRAINT events_import_valid;
ALTER TABLE metering.events_import ALTER COLUMN customer_id TYPE varchar;
ALTER TABLE metering.events_import ADD CONSTRAINT events_import_valid CHECK (true);
SET ROLE regress_sec_ingest_bulk;
SELECT * FROM pg_temp.error_of($$INSERT INTO metering.events_import (customer_id, meter, value, occurred_at)
                                 VALUES ('nobody', 'calls', 1, now())$$);
ROLLBACK;
BEGIN;
ALTER TABLE metering.events_import DROP CONSTRAINT events_import_valid;
ALTER TABLE metering.events_import ADD CONSTRAINT events_import_valid CHECK (true);
SET ROLE regress_sec_ingest_bulk;
SELECT * FROM pg_temp.error_of($$INSERT INTO metering.events_import (customer_id, meter, value, occurred_at)
                                 VALUES ('nobody', 'calls', 1, now())$$);
ROLLBACK;
-- the rewrites of events_import itself still work
VACUUM FULL metering.events_import;
ALTER TABLE metering.events_import SET TABLESPACE pg_default;
TRUNCATE metering.events_import;
SELECT pg_temp.events_fingerprint() = :'fingerprint' AS events_unchanged;

------------------------------------------------------------------------------
-- COPY into metering.events with an op: only NULL, 'increment' or 'set', and
-- only for a counter (a 'decrement' was stored as an increment).
------------------------------------------------------------------------------
SET ROLE regress_sec_ingest_copy;
COPY metering.events (customer_id, meter, value, occurred_at, op) FROM STDIN WITH (FORMAT csv);
s1,seats,3,2025-11-02 00:00:00+00,decrement
\.
SELECT * FROM pg_temp.error_of($$INSERT INTO metering.events (customer_id, meter, value, occurred_at, op)
                                 VALUES ('s1', 'seats', 3, '2025-11-02Z', 'decrement')$$);
SELECT * FROM pg_temp.error_of($$INSERT INTO metering.events (customer_id, meter, value, occurred_at, op)
                                 VALUES ('s1', 'seats', 3, '2025-11-02Z', 'Set')$$);
COPY metering.events (customer_id, meter, value, occurred_at, op) FROM STDIN WITH (FORMAT csv);
s1,calls,3,2025-11-02 00:00:00+00,increment
\.
SELECT * FROM pg_temp.error_of($$INSERT INTO metering.events (customer_id, meter, value, occurred_at, op)
                                 VALUES ('s1', 'calls', 3, '2025-11-02Z', 'increment')$$);
SELECT 1 AS backend_alive;
RESET ROLE;
SELECT metering.counter_value('s1', 'seats', '2025-11-03Z');
SELECT pg_temp.events_fingerprint() = :'fingerprint' AS events_unchanged;

------------------------------------------------------------------------------
-- event_id and ingested_at: a loader's explicit values are not kept (no twin
-- (customer_id, event_id), which billing marks refer to; no backdating); a
-- superuser's row with its own ingested_at is restored history, kept as given.
------------------------------------------------------------------------------
SELECT :first_id AS first_id;  -- the COPY below names it literally
SET ROLE regress_sec_ingest_copy;
COPY metering.events (event_id, customer_id, meter, value, occurred_at, ingested_at, txid) FROM STDIN WITH (FORMAT csv);
1,s1,calls,1,2025-11-04 00:00:00+00,2000-01-01 00:00:00+00,1
\.
INSERT INTO metering.events (event_id, customer_id, meter, value, occurred_at, ingested_at, txid)
OVERRIDING SYSTEM VALUE VALUES (:first_id, 's1', 'calls', 1, '2025-11-05Z', '2000-01-01Z', 1);
RESET ROLE;
-- (txid, the inserting transaction, is what the rollup step finds new events by)
SELECT occurred_at, event_id = :first_id AS twin_id, event_id > :first_id AS new_id,
       ingested_at = '2000-01-01Z' AS backdated, ingested_at > '2025-01-01Z' AS ingested_now,
       txid = 1 AS txid_forged
FROM metering.events WHERE occurred_at IN ('2025-11-04Z', '2025-11-05Z') ORDER BY occurred_at;
SELECT count(*) AS events_with_first_id FROM metering.events WHERE event_id = :first_id;

-- a superuser's restored row: every column kept, even before its meter exists
-- (pg_dump restores events before meters) and beyond max_future_skew
INSERT INTO metering.events (event_id, customer_id, meter, value, occurred_at, due_at, ingested_at,
                             idempotency_key, properties, op)
OVERRIDING SYSTEM VALUE
VALUES (900001, 's1', 'restored_later', 2.50, '2030-01-01Z', '2030-02-01Z', '2001-01-01Z', 'r1', '{"a": 1}', NULL);
SELECT event_id, customer_id, meter, value, occurred_at, due_at, ingested_at, idempotency_key, properties, op
FROM metering.events WHERE event_id = 900001;
-- a superuser's row without its own ingested_at is a load: every rule applies
SELECT * FROM pg_temp.error_of($$INSERT INTO metering.events (customer_id, meter, value, occurred_at)
                                 VALUES ('s1', 'restored_later', 1, now())$$);

------------------------------------------------------------------------------
-- Texts handed to numeric_in and timestamptz_in are checked first; the
-- messages are those of ingest_batch (MT003, MT015).
------------------------------------------------------------------------------
SELECT metering.create_meter('gb', 'sum', 'gb');
SELECT status FROM metering.ingest_batch('[{"customer_id": "s1", "meter": "gb", "value": "2.5",
    "occurred_at": "2025-11-06T10:00:00.5+05:30", "properties": {"gb": "1e3"}}]');
SELECT value, occurred_at, properties FROM metering.events WHERE meter = 'gb';
SELECT * FROM pg_temp.error_of($$SELECT metering.ingest_batch(
    '[{"customer_id": "s1", "meter": "calls", "value": "1e131072"}]')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.ingest_batch(
    '[{"customer_id": "s1", "meter": "calls", "value": " 12 abc"}]')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.ingest_batch(
    '[{"customer_id": "s1", "meter": "calls", "occurred_at": "2025-02-29T00:00:00Z"}]')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.ingest_batch(
    '[{"customer_id": "s1", "meter": "calls", "occurred_at": "2025-11-01 10:00 UTC"}]')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.ingest_batch(
    '[{"customer_id": "s1", "meter": "gb", "occurred_at": "2025-11-06T00:00:00Z", "properties": {"gb": "0.5e-16384"}}]')$$);

------------------------------------------------------------------------------
-- A meter whose filter is stored out of line (TOAST): reading it opens the
-- TOAST table, which processes invalidations; the caches survive them.
------------------------------------------------------------------------------
SELECT metering.create_meter('big', 'sum', 'gb',
    (SELECT jsonb_object_agg('k' || i, md5(i::text)) FROM generate_series(1, 400) i) || '{"tier": "gold"}');
SELECT pg_column_size(filter) > 2000 AS filter_out_of_line FROM metering.meters WHERE code = 'big';
SELECT metering.ingest('s1', 'big', 1, '2025-11-07Z',
    properties => (SELECT filter FROM metering.meters WHERE code = 'big') || '{"gb": 4}') > 0 AS stored;
-- a change of meters' catalog entry invalidates it: the caches are dropped at
-- the next lookup (with a concurrent change, the invalidation can arrive in the
-- middle of the lookup: the entry being filled stays valid until it is done)
GRANT SELECT ON metering.meters TO PUBLIC;
REVOKE SELECT ON metering.meters FROM PUBLIC;
SELECT metering.ingest('s1', 'big', 1, '2025-11-08Z', properties => '{"gb": "x"}') > 0 AS outside_filter;
SELECT * FROM pg_temp.error_of($$SELECT metering.ingest('s1', 'big', 1, '2025-11-09Z',
    properties => (SELECT filter FROM metering.meters WHERE code = 'big') || '{"gb": "x"}')$$);
SELECT count(*) FROM metering.events WHERE meter = 'big';

DROP OWNED BY regress_sec_ingest_login, regress_sec_ingest_bulk, regress_sec_ingest_copy;
DROP ROLE regress_sec_ingest_login, regress_sec_ingest_bulk, regress_sec_ingest_copy;
