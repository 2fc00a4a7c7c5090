-- metering: the event store and the ingest paths (single, batch, COPY, bulk)
-- A module of the install script: the Makefile concatenates src/sql/modules/*.sql,
-- in the order of SQL_MODULES, into metering--<version>.sql.

------------------------------------------------------------------------------
-- Event store (docs/design.md explains the keys and indexes)
------------------------------------------------------------------------------

CREATE TABLE metering.events (
    event_id        bigint GENERATED ALWAYS AS IDENTITY,
    customer_id     text COLLATE "C" NOT NULL,
    meter           text COLLATE "C" NOT NULL,
    value           numeric NOT NULL,
    occurred_at     timestamptz NOT NULL,
    due_at          timestamptz NOT NULL,
    ingested_at     timestamptz NOT NULL DEFAULT now(),
    idempotency_key text COLLATE "C",
    properties      jsonb NOT NULL DEFAULT '{}',
    op              text CHECK (op IN ('increment', 'set')),
    -- Rating reads one customer's meter over a period: this key serves it.
    PRIMARY KEY (customer_id, meter, due_at, event_id),
    txid            bigint NOT NULL DEFAULT txid_current()
);
-- Dedup for all time, led by customer_id like every key (shardable by customer).
CREATE UNIQUE INDEX events_idempotency_key ON metering.events (customer_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
COMMENT ON TABLE metering.events IS
    'Usage events, append-only. Insert through metering.ingest, metering.ingest_batch or COPY '
    '(customer_id, meter, value, occurred_at, idempotency_key, properties, due_at); '
    'every path applies the same validation and dedup rules.';
COMMENT ON COLUMN metering.events.due_at IS
    'Decides the billing period of the event; defaults to occurred_at.';
-- The rollup step finds the events committed since its last snapshot by their
-- transaction ids, which grow with the table: a BRIN index costs ingest next to nothing.
CREATE INDEX events_txid ON metering.events USING brin (txid) WITH (pages_per_range = 16, autosummarize = on);
COMMENT ON COLUMN metering.events.txid IS
    'The inserting (top-level) transaction, as txid_current(): the rollup step consumes an event once its '
    'transaction is visible in the step''s snapshot (docs/design.md, "Rollups").';
COMMENT ON COLUMN metering.events.op IS
    'Counter operation (increment or set) for events of counter meters; NULL otherwise.';

SELECT pg_catalog.pg_extension_config_dump('metering.customers', '');
SELECT pg_catalog.pg_extension_config_dump('metering.meters', '');
SELECT pg_catalog.pg_extension_config_dump('metering.plans', '');
SELECT pg_catalog.pg_extension_config_dump('metering.events', '');
SELECT pg_catalog.pg_extension_config_dump('metering.events_event_id_seq', '');

------------------------------------------------------------------------------
-- Ingest
------------------------------------------------------------------------------

CREATE FUNCTION metering.ingest(customer_id text, meter text, value numeric DEFAULT 1,
        occurred_at timestamptz DEFAULT now(), idempotency_key text DEFAULT NULL,
        properties jsonb DEFAULT '{}', due_at timestamptz DEFAULT NULL)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'metering_ingest'
    LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION metering.ingest(text, text, numeric, timestamptz, text, jsonb, timestamptz) IS
    'Records one usage event in the caller''s transaction and returns its event_id; a repeat of '
    '(customer_id, idempotency_key) with the same payload returns the stored event''s id.';

CREATE FUNCTION metering.ingest_batch(events jsonb)
    RETURNS TABLE(ordinal int, event_id bigint, status text)
    AS 'MODULE_PATHNAME', 'metering_ingest_batch'
    LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION metering.ingest_batch(jsonb) IS
    'Records a JSON array of events (keys customer_id, meter, value, occurred_at, idempotency_key, '
    'properties, due_at), all or nothing; status is created or duplicate per ordinal (1-based).';

-- The COPY path: COPY metering.events (...) FROM STDIN runs this trigger on every row.
-- Not SECURITY DEFINER: it reads customers, meters and the dedup index through
-- their indexes directly (no SQL), so a loader role with INSERT on events alone
-- has its rows checked. ingest and ingest_batch write without the executor and
-- so never fire it.
CREATE FUNCTION metering._event_before_insert() RETURNS trigger
    AS 'MODULE_PATHNAME', 'metering_event_before_insert'
    LANGUAGE C;
COMMENT ON FUNCTION metering._event_before_insert() IS
    'Internal: validates and deduplicates rows inserted into metering.events directly or by COPY.';
CREATE TRIGGER events_validate BEFORE INSERT ON metering.events
    FOR EACH ROW EXECUTE FUNCTION metering._event_before_insert();

-- The bulk path: COPY metering.events_import (...) FROM STDIN. A table whose access
-- method stores nothing itself: COPY keeps its multi-insert buffering, the CHECK
-- constraint validates each row as it arrives (errors name the COPY line), and each
-- batch of up to 1,000 rows goes through the same store as ingest_batch
-- (src/ingest/import.cpp).
CREATE FUNCTION metering._import_am_handler(internal) RETURNS table_am_handler
    AS 'MODULE_PATHNAME', 'metering_import_am_handler'
    LANGUAGE C;
COMMENT ON FUNCTION metering._import_am_handler(internal) IS
    'Internal: handler of the table access method metering_import (metering.events_import).';
CREATE ACCESS METHOD metering_import TYPE TABLE HANDLER metering._import_am_handler;
COMMENT ON ACCESS METHOD metering_import IS
    'Table access method of metering.events_import: rows inserted are stored as events in '
    'metering.events (validated, deduplicated); the table itself holds none.';
CREATE FUNCTION metering._import_check(customer_id text, meter text, value numeric, occurred_at timestamptz,
        due_at timestamptz, idempotency_key text, properties jsonb) RETURNS boolean
    AS 'MODULE_PATHNAME', 'metering_import_check'
    LANGUAGE C STABLE;
COMMENT ON FUNCTION metering._import_check(text, text, numeric, timestamptz, timestamptz, text, jsonb) IS
    'Internal: CHECK constraint of metering.events_import; applies every rule of ingest to a row '
    '(raises the error, never returns false). Answers only roles with INSERT on events_import.';
CREATE TABLE metering.events_import (
    customer_id text,
    meter text,
    value numeric,
    occurred_at timestamptz,
    due_at timestamptz,
    idempotency_key text,
    properties jsonb,
    CONSTRAINT events_import_valid CHECK (metering._import_check(customer_id, meter, value, occurred_at,
                                                                 due_at, idempotency_key, properties))
) USING metering_import;
COMMENT ON TABLE metering.events_import IS
    'Bulk ingest target: COPY metering.events_import (customer_id, meter, value, occurred_at, due_at, '
    'idempotency_key, properties) FROM ...; every rule of ingest applies, duplicates with the same '
    'payload are skipped, and the statement is all or nothing. Reading it returns no rows.';
COMMENT ON CONSTRAINT events_import_valid ON metering.events_import IS
    'Validates each row as it arrives, so that an error names the COPY line.';
CREATE FUNCTION metering._import_flush() RETURNS trigger
    AS 'MODULE_PATHNAME', 'metering_import_flush'
    LANGUAGE C;
COMMENT ON FUNCTION metering._import_flush() IS
    'Internal: stores the rows an INSERT into events_import left buffered at the end of the statement.';
CREATE TRIGGER import_flush AFTER INSERT ON metering.events_import
    FOR EACH STATEMENT EXECUTE FUNCTION metering._import_flush();
-- Also under session_replication_role = replica: buffered rows must not be dropped.
ALTER TABLE metering.events_import ENABLE ALWAYS TRIGGER import_flush;

CREATE FUNCTION metering._refuse_change() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF metering._internal_change_active() THEN
        RETURN NULL;  -- one of metering's own functions (void_invoice, approve_invoice, ...)
    END IF;
    RAISE EXCEPTION '% of % is not allowed: %', TG_OP, TG_TABLE_NAME, TG_ARGV[0]
        USING ERRCODE = 'MT017', HINT = TG_ARGV[1];
END
$$;
COMMENT ON FUNCTION metering._refuse_change() IS
    'Internal: refuses changes to append-only or referenced rows.';
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON metering.events
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'events are append-only', 'Record a correction as a new event.');
CREATE TRIGGER customers_keep BEFORE DELETE OR TRUNCATE ON metering.customers
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'customers are referenced by their events', 'End the customer''s subscriptions instead.');
CREATE TRIGGER customers_keep_id BEFORE UPDATE OF customer_id ON metering.customers
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'customer_id is referenced by events', 'Create a new customer instead.');
CREATE TRIGGER meters_keep BEFORE UPDATE OR DELETE OR TRUNCATE ON metering.meters
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'meters are referenced by their events', 'Create a new meter instead.');
