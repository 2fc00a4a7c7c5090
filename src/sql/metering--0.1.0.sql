-- metering 0.1.0: catalog (customers, meters, plans), the event store,
-- ingest (single, batch, COPY) and counters.
\echo Use "CREATE EXTENSION metering" to load this file. \quit

------------------------------------------------------------------------------
-- Catalog
------------------------------------------------------------------------------

-- Ids given by the application are opaque: COLLATE "C" compares bytes, which
-- is both the right meaning and the fastest btree comparison.
CREATE TABLE metering.customers (
    customer_id text COLLATE "C" PRIMARY KEY,
    name        text,
    email       text,
    timezone    text NOT NULL DEFAULT 'UTC',
    auto_issue  boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE metering.customers IS
    'Customers billed by metering; customer_id is the application''s own id.';

CREATE TABLE metering.meters (
    code            text COLLATE "C" PRIMARY KEY,
    aggregation     text NOT NULL CHECK (aggregation IN ('count', 'sum', 'max', 'min',
                        'latest', 'unique_count', 'time_weighted', 'counter', 'custom')),
    value_property  text,
    filter          jsonb CHECK (filter IS NULL OR jsonb_typeof(filter) = 'object'),
    allow_negative  boolean NOT NULL,
    expression      text CHECK ((aggregation = 'custom') = (expression IS NOT NULL)),
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- a number is cheaper than the text to test for every event in invoice_lines
    kind            integer NOT NULL GENERATED ALWAYS AS (
                        CASE aggregation WHEN 'count' THEN 1 WHEN 'sum' THEN 2 WHEN 'max' THEN 3
                                         WHEN 'min' THEN 4 WHEN 'unique_count' THEN 5 WHEN 'latest' THEN 6
                                         WHEN 'counter' THEN 7 ELSE 0 END) STORED
);
COMMENT ON TABLE metering.meters IS
    'Billable metrics: how the events of a meter aggregate per billing period.';
COMMENT ON COLUMN metering.meters.kind IS
    'The aggregation as a number for the set-based plan of invoice_lines: 1 count, 2 sum, 3 max, 4 min, '
    '5 unique_count, 6 latest, 7 counter; 0 (time_weighted, custom): one line at a time.';

CREATE TABLE metering.plans (
    code             text COLLATE "C" PRIMARY KEY,
    currency         text NOT NULL,
    billing_interval interval NOT NULL,
    base_fee         numeric NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE metering.plans IS
    'Price plans: a currency (ISO 4217), a billing interval and a base fee per period.';

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
    PRIMARY KEY (customer_id, meter, due_at, event_id)
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
COMMENT ON COLUMN metering.events.op IS
    'Counter operation (increment or set) for events of counter meters; NULL otherwise.';

SELECT pg_catalog.pg_extension_config_dump('metering.customers', '');
SELECT pg_catalog.pg_extension_config_dump('metering.meters', '');
SELECT pg_catalog.pg_extension_config_dump('metering.plans', '');
SELECT pg_catalog.pg_extension_config_dump('metering.events', '');
SELECT pg_catalog.pg_extension_config_dump('metering.events_event_id_seq', '');

------------------------------------------------------------------------------
-- C validators used by the catalog functions
------------------------------------------------------------------------------

CREATE FUNCTION metering.currency_exponent(currency text) RETURNS int
    AS 'MODULE_PATHNAME', 'metering_currency_exponent'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION metering.currency_exponent(text) IS
    'Minor-unit exponent of an ISO 4217 currency (USD 2, JPY 0, BHD 3); NULL when unknown.';

CREATE FUNCTION metering._check_identifier(field text, value text) RETURNS text
    AS 'MODULE_PATHNAME', 'metering_check_identifier'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION metering._check_timezone(timezone text) RETURNS text
    AS 'MODULE_PATHNAME', 'metering_check_timezone'
    LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION metering._check_aggregation(aggregation text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'metering_check_aggregation'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION metering._check_currency(currency text) RETURNS text
    AS 'MODULE_PATHNAME', 'metering_check_currency'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION metering._check_expression(expression text) RETURNS text
    AS 'MODULE_PATHNAME', 'metering_check_expression'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION metering._check_expression(text) IS
    'Internal: checks a custom meter''s aggregate expression over metering.events; returns its canonical text.';
CREATE FUNCTION metering._check_amount(field text, amount numeric) RETURNS numeric
    AS 'MODULE_PATHNAME', 'metering_check_amount'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION metering._check_identifier(text, text) IS 'Internal: validates an application id.';
COMMENT ON FUNCTION metering._check_timezone(text) IS 'Internal: validates an IANA time zone name.';
COMMENT ON FUNCTION metering._check_aggregation(text) IS 'Internal: validates an aggregation kind; returns its default allow_negative.';
COMMENT ON FUNCTION metering._check_currency(text) IS 'Internal: validates an ISO 4217 currency code.';
COMMENT ON FUNCTION metering._check_amount(text, numeric) IS 'Internal: validates a money amount (finite, not negative).';

------------------------------------------------------------------------------
-- Catalog functions
------------------------------------------------------------------------------

CREATE FUNCTION metering.create_customer(customer_id text, name text DEFAULT NULL,
        email text DEFAULT NULL, timezone text DEFAULT 'UTC', auto_issue boolean DEFAULT true)
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF auto_issue IS NULL THEN
        RAISE EXCEPTION 'auto_issue must not be NULL' USING ERRCODE = '22004';
    END IF;
    INSERT INTO metering.customers (customer_id, name, email, timezone, auto_issue)
    VALUES (metering._check_identifier('customer_id', customer_id), name, email,
            metering._check_timezone(timezone), auto_issue);
    RETURN customer_id;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'customer_id "%" already exists', customer_id
        USING ERRCODE = 'duplicate_object';
END
$$;
COMMENT ON FUNCTION metering.create_customer(text, text, text, text, boolean) IS
    'Creates a customer with an IANA time zone (billing periods follow its local calendar) '
    'and auto_issue (false: invoices wait in pending_review until approved).';

CREATE FUNCTION metering.create_meter(code text, aggregation text, value_property text DEFAULT NULL,
        filter jsonb DEFAULT NULL, allow_negative boolean DEFAULT NULL, expression text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    negative_by_default boolean := metering._check_aggregation(aggregation);
BEGIN
    PERFORM metering._check_identifier('code', code);
    IF value_property = '' THEN
        RAISE EXCEPTION 'value_property must not be empty' USING ERRCODE = '22023',
            HINT = 'Pass NULL to aggregate the event''s value.';
    END IF;
    IF filter IS NOT NULL AND jsonb_typeof(filter) <> 'object' THEN
        RAISE EXCEPTION 'filter % is not a JSON object', filter USING ERRCODE = 'MT008',
            HINT = 'A filter is an object the event properties must contain, e.g. {"region": "eu"}.';
    END IF;
    IF aggregation = 'custom' AND expression IS NULL THEN
        RAISE EXCEPTION 'a custom meter needs an expression' USING ERRCODE = '22004',
            HINT = 'Pass expression => ''sum(value) FILTER (WHERE ...)''.';
    ELSIF aggregation <> 'custom' AND expression IS NOT NULL THEN
        RAISE EXCEPTION 'expression is only for custom meters, not for aggregation "%"', aggregation
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO metering.meters (code, aggregation, value_property, filter, allow_negative, expression)
    VALUES (code, aggregation, value_property, filter,
            coalesce(allow_negative, negative_by_default),
            -- stored as Postgres's deparse of the checked expression, never as given
            CASE WHEN expression IS NOT NULL THEN metering._check_expression(expression) END);
    RETURN code;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'meter "%" already exists', code USING ERRCODE = 'duplicate_object';
END
$$;
COMMENT ON FUNCTION metering.create_meter(text, text, text, jsonb, boolean, text) IS
    'Creates a billable metric. aggregation: count, sum, max, min, latest, unique_count, '
    'time_weighted, counter or custom; value_property: the properties key aggregated instead of '
    'value; filter: an object the event properties must contain; allow_negative: whether events '
    'may carry negative values (default: true for sum and counter, false otherwise).';

CREATE FUNCTION metering.create_plan(code text, currency text, billing_interval interval DEFAULT '1 month',
        base_fee numeric DEFAULT 0)
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM metering._check_identifier('code', code);
    IF billing_interval IS NULL THEN
        RAISE EXCEPTION 'billing_interval must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF billing_interval <= interval '0' THEN
        RAISE EXCEPTION 'billing_interval "%" must be a positive interval', billing_interval
            USING ERRCODE = '22023', HINT = 'For example ''1 month'', ''1 year'' or ''7 days''.';
    END IF;
    INSERT INTO metering.plans (code, currency, billing_interval, base_fee)
    VALUES (code, metering._check_currency(currency), billing_interval,
            metering._check_amount('base_fee', base_fee));
    RETURN code;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'plan "%" already exists', code USING ERRCODE = 'duplicate_object';
END
$$;
COMMENT ON FUNCTION metering.create_plan(text, text, interval, numeric) IS
    'Creates a price plan in an ISO 4217 currency with a billing interval and a base fee per period.';

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
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON metering.events
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

------------------------------------------------------------------------------
-- Counters
------------------------------------------------------------------------------

CREATE FUNCTION metering.counter_increment(customer_id text, counter text, by numeric DEFAULT 1,
        at timestamptz DEFAULT now(), idempotency_key text DEFAULT NULL)
    RETURNS numeric
    AS 'MODULE_PATHNAME', 'metering_counter_increment'
    LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION metering.counter_increment(text, text, numeric, timestamptz, text) IS
    'Adds by (negative: subtracts) to a counter at instant at; returns the counter''s value at that instant.';

CREATE FUNCTION metering.counter_set(customer_id text, counter text, value numeric,
        at timestamptz DEFAULT now(), idempotency_key text DEFAULT NULL)
    RETURNS numeric
    AS 'MODULE_PATHNAME', 'metering_counter_set'
    LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION metering.counter_set(text, text, numeric, timestamptz, text) IS
    'Sets a counter to value at instant at (later increments add to it); returns the value at that instant.';

CREATE FUNCTION metering.counter_value(customer_id text, counter text, at timestamptz DEFAULT now())
    RETURNS numeric
    AS 'MODULE_PATHNAME', 'metering_counter_value'
    LANGUAGE C STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION metering.counter_value(text, text, timestamptz) IS
    'Value of a counter at instant at: its operations up to and including at, applied in at order.';

------------------------------------------------------------------------------
-- Usage
------------------------------------------------------------------------------

CREATE FUNCTION metering.usage(customer_id text, meter text, from_ts timestamptz, to_ts timestamptz)
    RETURNS numeric
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m metering.meters;
BEGIN
    IF customer_id IS NULL OR meter IS NULL OR from_ts IS NULL OR to_ts IS NULL THEN
        RAISE EXCEPTION 'usage: % must not be NULL',
            CASE WHEN customer_id IS NULL THEN 'customer_id' WHEN meter IS NULL THEN 'meter'
                 WHEN from_ts IS NULL THEN 'from_ts' ELSE 'to_ts' END
            USING ERRCODE = '22004';
    END IF;
    IF from_ts > to_ts THEN
        RAISE EXCEPTION 'usage: from_ts % is after to_ts %', from_ts, to_ts USING ERRCODE = '22023';
    END IF;
    PERFORM 1 FROM metering.customers c WHERE c.customer_id = usage.customer_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer_id "%" does not exist', customer_id USING ERRCODE = 'MT001',
            HINT = 'Create it first with metering.create_customer.';
    END IF;
    SELECT * INTO m FROM metering.meters WHERE code = meter;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'meter "%" does not exist', meter USING ERRCODE = 'MT002',
            HINT = 'Create it first with metering.create_meter.';
    END IF;
    RETURN metering._quantity(m, customer_id, from_ts, to_ts);
END
$$;
COMMENT ON FUNCTION metering.usage(text, text, timestamptz, timestamptz) IS
    'Quantity of a customer''s meter over [from_ts, to_ts) by due_at, aggregated per the meter''s kind '
    '(a counter starts at 0 at from_ts). NULL for max, min and latest when there are no events.';

------------------------------------------------------------------------------
-- Rating aggregates (SPEC 3 "Rating", 4 "Aggregations per billing period):
-- metering.latest, metering.unique_count, metering.counter_total and
-- metering.time_weighted, with combine functions (parallel aggregation) and
-- a concrete state type, metering.aggregate_state, with text and binary I/O
-- (partial aggregation split between shards). C code: src/rating/aggregates.cpp
-- (bridge) and src/core/aggregates.hpp (states, semantics, memory bounds).
--
-- Everything here is pure (IMMUTABLE, no table access): the privileges section
-- at the end grants it to PUBLIC.
------------------------------------------------------------------------------

CREATE TYPE metering.aggregate_state;

CREATE FUNCTION metering.aggregate_state_in(cstring) RETURNS metering.aggregate_state
    AS 'MODULE_PATHNAME', 'metering_aggregate_state_in'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION metering.aggregate_state_out(metering.aggregate_state) RETURNS cstring
    AS 'MODULE_PATHNAME', 'metering_aggregate_state_out'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION metering.aggregate_state_recv(internal) RETURNS metering.aggregate_state
    AS 'MODULE_PATHNAME', 'metering_aggregate_state_recv'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION metering.aggregate_state_send(metering.aggregate_state) RETURNS bytea
    AS 'MODULE_PATHNAME', 'metering_aggregate_state_send'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE metering.aggregate_state (
    INPUT = metering.aggregate_state_in,
    OUTPUT = metering.aggregate_state_out,
    RECEIVE = metering.aggregate_state_recv,
    SEND = metering.aggregate_state_send,
    INTERNALLENGTH = VARIABLE,
    STORAGE = extended
);

COMMENT ON TYPE metering.aggregate_state IS
    'Partial state of metering.latest, unique_count, counter_total or time_weighted. Text form: '
    '\x and hexadecimal digits; binary form: the same bytes. Every input is checked (22P02/22P03). '
    'Finish a state with the aggregate''s *_final function, merge two with its *_combine function.';
COMMENT ON FUNCTION metering.aggregate_state_in(cstring) IS
    'Text input of metering.aggregate_state: \x and hexadecimal digits; the state is checked.';
COMMENT ON FUNCTION metering.aggregate_state_out(metering.aggregate_state) IS
    'Text output of metering.aggregate_state: \x and hexadecimal digits.';
COMMENT ON FUNCTION metering.aggregate_state_recv(internal) IS
    'Binary input of metering.aggregate_state; the state is checked.';
COMMENT ON FUNCTION metering.aggregate_state_send(metering.aggregate_state) IS
    'Binary output of metering.aggregate_state: the serialized state.';

------------------------------------------------------------------------------
-- latest(value, at [, tiebreak])
------------------------------------------------------------------------------

CREATE FUNCTION metering.latest_trans(state metering.aggregate_state, value numeric, at timestamptz)
    RETURNS metering.aggregate_state
    AS 'MODULE_PATHNAME', 'metering_latest_trans'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION metering.latest_trans(state metering.aggregate_state, value numeric, at timestamptz,
        tiebreak bigint)
    RETURNS metering.aggregate_state
    AS 'MODULE_PATHNAME', 'metering_latest_trans'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION metering.latest_combine(a metering.aggregate_state, b metering.aggregate_state)
    RETURNS metering.aggregate_state
    AS 'MODULE_PATHNAME', 'metering_latest_combine'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION metering.latest_final(state metering.aggregate_state) RETURNS numeric
    AS 'MODULE_PATHNAME', 'metering_latest_final'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE metering.latest(value numeric, at timestamptz) (
    SFUNC = metering.latest_trans,
    STYPE = metering.aggregate_state,
    SSPACE = 48,
    COMBINEFUNC = metering.latest_combine,
    FINALFUNC = metering.latest_final,
    PARALLEL = SAFE
);
CREATE AGGREGATE metering.latest(value numeric, at timestamptz, tiebreak bigint) (
    SFUNC = metering.latest_trans,
    STYPE = metering.aggregate_state,
    SSPACE = 56,
    COMBINEFUNC = metering.latest_combine,
    FINALFUNC = metering.latest_final,
    PARALLEL = SAFE
);

COMMENT ON FUNCTION metering.latest_trans(metering.aggregate_state, numeric, timestamptz) IS
    'Transition function of metering.latest(value, at).';
COMMENT ON FUNCTION metering.latest_trans(metering.aggregate_state, numeric, timestamptz, bigint) IS
    'Transition function of metering.latest(value, at, tiebreak).';
COMMENT ON FUNCTION metering.latest_combine(metering.aggregate_state, metering.aggregate_state) IS
    'Combines two partial states of metering.latest (either form, not mixed).';
COMMENT ON FUNCTION metering.latest_final(metering.aggregate_state) IS
    'Final function of metering.latest: the value, or NULL for no row.';
COMMENT ON AGGREGATE metering.latest(numeric, timestamptz) IS
    'The value with the greatest at; at one instant the greater value wins (so the result does not '
    'depend on the order of rows or of parallel workers). Rows with a NULL value or at are ignored; '
    'NULL when there is none. Infinite at or a NaN/infinite value: error. O(1) memory.';
COMMENT ON AGGREGATE metering.latest(numeric, timestamptz, bigint) IS
    'The value with the greatest (at, tiebreak): pass event_id as tiebreak so that at one instant '
    'the later-ingested event wins (then the greater value, for equal tiebreaks). tiebreak must not '
    'be NULL. O(1) memory.';

------------------------------------------------------------------------------
-- unique_count(value)
------------------------------------------------------------------------------

CREATE FUNCTION metering.unique_count_trans(state metering.aggregate_state, value text)
    RETURNS metering.aggregate_state
    AS 'MODULE_PATHNAME', 'metering_unique_count_trans'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION metering.unique_count_combine(a metering.aggregate_state, b metering.aggregate_state)
    RETURNS metering.aggregate_state
    AS 'MODULE_PATHNAME', 'metering_unique_count_combine'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION metering.unique_count_final(state metering.aggregate_state) RETURNS bigint
    AS 'MODULE_PATHNAME', 'metering_unique_count_final'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE metering.unique_count(value text) (
    SFUNC = metering.unique_count_trans,
    STYPE = metering.aggregate_state,
    SSPACE = 2048,
    COMBINEFUNC = metering.unique_count_combine,
    FINALFUNC = metering.unique_count_final,
    PARALLEL = SAFE
);

COMMENT ON FUNCTION metering.unique_count_trans(metering.aggregate_state, text) IS
    'Transition function of metering.unique_count.';
COMMENT ON FUNCTION metering.unique_count_combine(metering.aggregate_state, metering.aggregate_state) IS
    'Combines two partial states of metering.unique_count.';
COMMENT ON FUNCTION metering.unique_count_final(metering.aggregate_state) IS
    'Final function of metering.unique_count: the number of distinct values, 0 for none.';
COMMENT ON AGGREGATE metering.unique_count(text) IS
    'Exact number of distinct non-NULL values, compared byte for byte (as COLLATE "C"); 0 when there '
    'is none. Memory: the value plus about 20 bytes per distinct value (at most 2 x (length + 1) + 23); '
    'at most 1000000 distinct values and 256 MiB of them per group, else error 54000.';

------------------------------------------------------------------------------
-- counter_total(op, value, at [, tiebreak])
------------------------------------------------------------------------------

CREATE FUNCTION metering.counter_total_trans(state metering.aggregate_state, op text, value numeric,
        at timestamptz)
    RETURNS metering.aggregate_state
    AS 'MODULE_PATHNAME', 'metering_counter_total_trans'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION metering.counter_total_trans(state metering.aggregate_state, op text, value numeric,
        at timestamptz, tiebreak bigint)
    RETURNS metering.aggregate_state
    AS 'MODULE_PATHNAME', 'metering_counter_total_trans'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION metering.counter_total_combine(a metering.aggregate_state, b metering.aggregate_state)
    RETURNS metering.aggregate_state
    AS 'MODULE_PATHNAME', 'metering_counter_total_combine'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION metering.counter_total_final(state metering.aggregate_state) RETURNS numeric
    AS 'MODULE_PATHNAME', 'metering_counter_total_final'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE metering.counter_total(op text, value numeric, at timestamptz) (
    SFUNC = metering.counter_total_trans,
    STYPE = metering.aggregate_state,
    SSPACE = 2048,
    COMBINEFUNC = metering.counter_total_combine,
    FINALFUNC = metering.counter_total_final,
    PARALLEL = SAFE
);
CREATE AGGREGATE metering.counter_total(op text, value numeric, at timestamptz, tiebreak bigint) (
    SFUNC = metering.counter_total_trans,
    STYPE = metering.aggregate_state,
    SSPACE = 2048,
    COMBINEFUNC = metering.counter_total_combine,
    FINALFUNC = metering.counter_total_final,
    PARALLEL = SAFE
);

COMMENT ON FUNCTION metering.counter_total_trans(metering.aggregate_state, text, numeric, timestamptz) IS
    'Transition function of metering.counter_total(op, value, at).';
COMMENT ON FUNCTION metering.counter_total_trans(metering.aggregate_state, text, numeric, timestamptz, bigint) IS
    'Transition function of metering.counter_total(op, value, at, tiebreak).';
COMMENT ON FUNCTION metering.counter_total_combine(metering.aggregate_state, metering.aggregate_state) IS
    'Combines two partial states of metering.counter_total (either form, not mixed).';
COMMENT ON FUNCTION metering.counter_total_final(metering.aggregate_state) IS
    'Final function of metering.counter_total: the counter''s value, 0 for no row.';
COMMENT ON AGGREGATE metering.counter_total(text, numeric, timestamptz) IS
    'Value of a counter after the rows, from 0: the last ''set'' (greatest at; at one instant the '
    'greater value) plus every ''increment'' at or after it (an increment at the instant of a set '
    'counts after it). op is ''increment'' or ''set'', NULL means increment, anything else: error '
    '22023. Rows with a NULL value or at are ignored. Memory: about 24 bytes plus the value per '
    'distinct instant of the increments after the last set; at most 1000000, else error 54000.';
COMMENT ON AGGREGATE metering.counter_total(text, numeric, timestamptz, bigint) IS
    'metering.counter_total ordered by (at, tiebreak): pass event_id as tiebreak so that operations '
    'at one instant apply in ingestion order (an increment with the same key as a set counts after '
    'it). tiebreak must not be NULL.';

------------------------------------------------------------------------------
-- time_weighted(value, at, period_start, period_end [, tiebreak])
------------------------------------------------------------------------------

CREATE FUNCTION metering.time_weighted_trans(state metering.aggregate_state, value numeric,
        at timestamptz, period_start timestamptz, period_end timestamptz)
    RETURNS metering.aggregate_state
    AS 'MODULE_PATHNAME', 'metering_time_weighted_trans'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION metering.time_weighted_trans(state metering.aggregate_state, value numeric,
        at timestamptz, period_start timestamptz, period_end timestamptz, tiebreak bigint)
    RETURNS metering.aggregate_state
    AS 'MODULE_PATHNAME', 'metering_time_weighted_trans'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION metering.time_weighted_combine(a metering.aggregate_state, b metering.aggregate_state)
    RETURNS metering.aggregate_state
    AS 'MODULE_PATHNAME', 'metering_time_weighted_combine'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION metering.time_weighted_final(state metering.aggregate_state) RETURNS numeric
    AS 'MODULE_PATHNAME', 'metering_time_weighted_final'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE metering.time_weighted(value numeric, at timestamptz, period_start timestamptz,
        period_end timestamptz) (
    SFUNC = metering.time_weighted_trans,
    STYPE = metering.aggregate_state,
    SSPACE = 2048,
    COMBINEFUNC = metering.time_weighted_combine,
    FINALFUNC = metering.time_weighted_final,
    PARALLEL = SAFE
);
CREATE AGGREGATE metering.time_weighted(value numeric, at timestamptz, period_start timestamptz,
        period_end timestamptz, tiebreak bigint) (
    SFUNC = metering.time_weighted_trans,
    STYPE = metering.aggregate_state,
    SSPACE = 2048,
    COMBINEFUNC = metering.time_weighted_combine,
    FINALFUNC = metering.time_weighted_final,
    PARALLEL = SAFE
);

COMMENT ON FUNCTION metering.time_weighted_trans(metering.aggregate_state, numeric, timestamptz, timestamptz, timestamptz) IS
    'Transition function of metering.time_weighted(value, at, period_start, period_end).';
COMMENT ON FUNCTION metering.time_weighted_trans(metering.aggregate_state, numeric, timestamptz, timestamptz, timestamptz, bigint) IS
    'Transition function of metering.time_weighted(value, at, period_start, period_end, tiebreak).';
COMMENT ON FUNCTION metering.time_weighted_combine(metering.aggregate_state, metering.aggregate_state) IS
    'Combines two partial states of metering.time_weighted (same period; either form, not mixed).';
COMMENT ON FUNCTION metering.time_weighted_final(metering.aggregate_state) IS
    'Final function of metering.time_weighted: the integral in value x hours, 0 for no row.';
COMMENT ON AGGREGATE metering.time_weighted(numeric, timestamptz, timestamptz, timestamptz) IS
    'Integral of a gauge over [period_start, period_end) in value x hours: each value holds until '
    'the next point; before the first point in the period the gauge holds the last value before '
    'period_start (pass those rows too; only the latest counts), else 0; rows at or after period_end '
    'do not count; at one instant the greater value wins. Exact when the result is a terminating '
    'decimal of at most (scale of the values + 16) fraction digits, shown with the fewest digits '
    '>= the values'' scale; otherwise rounded half away from zero to that many. Every row of a group '
    'must pass the same period (error 22023). Memory: about 24 bytes plus the value per distinct '
    'instant in the period; at most 1000000, else error 54000.';
COMMENT ON AGGREGATE metering.time_weighted(numeric, timestamptz, timestamptz, timestamptz, bigint) IS
    'metering.time_weighted where, at one instant, the greatest tiebreak (pass event_id: the '
    'later-ingested) wins, then the greater value. tiebreak must not be NULL.';

-- metering._line_quantity(kind, value, text_value, at, tiebreak, op): the
-- quantity of an invoice line of kind count (1), sum (2), max (3), min (4),
-- unique_count (5), latest (6) or counter (7) in one aggregate, with an `internal` state allocated in the aggregate's memory
-- (no memory context per group), so that a hash aggregation over every line of a
-- period stays small (docs/rating.md, "How the usage lines are computed").
CREATE FUNCTION metering._line_quantity_trans(internal, integer, numeric, text, timestamptz, bigint, text)
    RETURNS internal AS 'MODULE_PATHNAME', 'metering_line_quantity_trans'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION metering._line_quantity_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'metering_line_quantity_combine'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION metering._line_quantity_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'metering_line_quantity_serialize'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION metering._line_quantity_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'metering_line_quantity_deserialize'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION metering._line_quantity_final(internal) RETURNS numeric
    AS 'MODULE_PATHNAME', 'metering_line_quantity_final'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE metering._line_quantity(kind integer, value numeric, text_value text, at timestamptz,
                                         tiebreak bigint, op text) (
    SFUNC = metering._line_quantity_trans, STYPE = internal, SSPACE = 96,
    COMBINEFUNC = metering._line_quantity_combine,
    SERIALFUNC = metering._line_quantity_serialize, DESERIALFUNC = metering._line_quantity_deserialize,
    FINALFUNC = metering._line_quantity_final,
    PARALLEL = SAFE);
COMMENT ON FUNCTION metering._line_quantity_trans(internal, integer, numeric, text, timestamptz, bigint, text) IS
    'Internal: transition of metering._line_quantity.';
COMMENT ON FUNCTION metering._line_quantity_combine(internal, internal) IS
    'Internal: combine function of metering._line_quantity.';
COMMENT ON FUNCTION metering._line_quantity_serialize(internal) IS
    'Internal: serial function of metering._line_quantity.';
COMMENT ON FUNCTION metering._line_quantity_deserialize(bytea, internal) IS
    'Internal: deserial function of metering._line_quantity.';
COMMENT ON FUNCTION metering._line_quantity_final(internal) IS
    'Internal: final function of metering._line_quantity.';
COMMENT ON AGGREGATE metering._line_quantity(integer, numeric, text, timestamptz, bigint, text) IS
    'Internal: quantity of an invoice line of kind 1 (count of rows), 2, 3, 4 (sum, max, min of value), '
    '5 (unique_count of text_value), 6 (latest value by (at, tiebreak)) or 7 (counter total of op and '
    'value by (at, tiebreak)).';

------------------------------------------------------------------------------
-- Rating: pricing, charges, subscriptions, billing periods, invoice lines
-- (docs/rating.md explains the rules and the plan of the views)
------------------------------------------------------------------------------

CREATE FUNCTION metering.rate(quantity numeric, pricing jsonb) RETURNS numeric
    AS 'MODULE_PATHNAME', 'metering_rate'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION metering.rate(numeric, jsonb) IS
    'Exact, unrounded amount of quantity under a pricing rule (per_unit, graduated, volume, package, '
    'percentage; optional free_units).';

CREATE FUNCTION metering.rate_breakdown(quantity numeric, pricing jsonb)
    RETURNS TABLE(tier int, units numeric, unit_price numeric, flat_price numeric, amount numeric)
    AS 'MODULE_PATHNAME', 'metering_rate_breakdown'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 3;
COMMENT ON FUNCTION metering.rate_breakdown(numeric, jsonb) IS
    'The lines of rate(): one per tier reached (graduated), the tier used (volume), or one line; '
    'amount = units x unit_price + flat_price, and the amounts add up to rate().';

CREATE FUNCTION metering._billable_quantity(quantity numeric, pricing jsonb) RETURNS numeric
    AS 'MODULE_PATHNAME', 'metering_billable_quantity'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION metering._free_units(pricing jsonb) RETURNS numeric
    AS 'MODULE_PATHNAME', 'metering_free_units'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION metering._check_pricing(pricing jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'metering_check_pricing'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION metering._periods(anchor timestamptz, billing_interval interval, timezone text,
        from_ts timestamptz, to_ts timestamptz)
    RETURNS TABLE(period_index bigint, period_start timestamptz, period_end timestamptz)
    AS 'MODULE_PATHNAME', 'metering_periods'
    LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 2;
COMMENT ON FUNCTION metering._billable_quantity(numeric, jsonb) IS
    'Internal: the quantity a pricing prices (after free_units; never negative for tiers and packages).';
COMMENT ON FUNCTION metering._free_units(jsonb) IS 'Internal: free_units of a pricing (0 when absent).';
COMMENT ON FUNCTION metering._check_pricing(jsonb) IS 'Internal: validates a pricing rule (MT009).';
COMMENT ON FUNCTION metering._periods(timestamptz, interval, text, timestamptz, timestamptz) IS
    'Internal: whole billing periods [anchor + k x interval, anchor + (k+1) x interval) in a time zone '
    'that overlap [from_ts, to_ts).';

CREATE FUNCTION metering._cut_periods(anchor timestamptz, billing_interval interval, timezone text,
        starts_at timestamptz, ends_at timestamptz, to_ts timestamptz)
    RETURNS TABLE(period_start timestamptz, period_end timestamptz, full_start timestamptz, full_end timestamptz)
    AS 'MODULE_PATHNAME', 'metering_cut_periods'
    LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION metering._cut_periods(timestamptz, interval, text, timestamptz, timestamptz, timestamptz) IS
    'Internal: the periods of a subscription over [starts_at, ends_at) (''infinity'' when open) that overlap '
    '[starts_at, to_ts), cut to the subscription (full_start, full_end: the whole period).';
-- Planner support of _due_in: a join estimate from the statistics of due_at, and the
-- index conditions due_at >= from_ts AND due_at < to_ts (src/rating/due_in.cpp).
CREATE FUNCTION metering._due_in_support(internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'metering_due_in_support'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION metering._due_in(due_at timestamptz, from_ts timestamptz, to_ts timestamptz) RETURNS boolean
    AS 'MODULE_PATHNAME', 'metering_due_in'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    SUPPORT metering._due_in_support;
COMMENT ON FUNCTION metering._due_in(timestamptz, timestamptz, timestamptz) IS
    'Internal: from_ts <= due_at < to_ts (an event in a billing period), with a planner support function.';
COMMENT ON FUNCTION metering._due_in_support(internal) IS
    'Internal: planner support of _due_in (join selectivity from due_at''s statistics, index conditions).';

CREATE TABLE metering.charges (
    charge_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plan_code   text COLLATE "C" NOT NULL REFERENCES metering.plans (code),
    meter       text COLLATE "C" NOT NULL REFERENCES metering.meters (code),
    pricing     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (plan_code, meter)
);
COMMENT ON TABLE metering.charges IS
    'A meter priced on a plan (at most one charge per meter and plan); pricing is validated when added.';

CREATE TABLE metering.subscriptions (
    subscription_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id     text COLLATE "C" NOT NULL REFERENCES metering.customers (customer_id),
    plan_code       text COLLATE "C" NOT NULL REFERENCES metering.plans (code),
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz CHECK (ends_at > starts_at),
    billing_anchor  timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_customer ON metering.subscriptions (customer_id, starts_at);
COMMENT ON TABLE metering.subscriptions IS
    'A customer on a plan from starts_at until ends_at (NULL: open), billed in periods counted from '
    'billing_anchor in the customer''s time zone. A customer''s subscriptions never overlap.';

SELECT pg_catalog.pg_extension_config_dump('metering.charges', '');
SELECT pg_catalog.pg_extension_config_dump('metering.charges_charge_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('metering.subscriptions', '');
SELECT pg_catalog.pg_extension_config_dump('metering.subscriptions_subscription_id_seq', '');

CREATE TRIGGER charges_keep BEFORE UPDATE OR DELETE OR TRUNCATE ON metering.charges
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'charges price invoice lines', 'Create a new plan with the new pricing instead.');
CREATE TRIGGER subscriptions_keep BEFORE DELETE OR TRUNCATE ON metering.subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'subscriptions are billed', 'End the subscription with metering.end_subscription.');

CREATE FUNCTION metering.add_charge(plan_code text, meter_code text, pricing jsonb) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
BEGIN
    IF plan_code IS NULL OR meter_code IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', CASE WHEN plan_code IS NULL THEN 'plan_code' ELSE 'meter_code' END
            USING ERRCODE = '22004';
    END IF;
    PERFORM 1 FROM metering.plans p WHERE p.code = add_charge.plan_code;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'plan "%" does not exist', plan_code USING ERRCODE = 'MT018',
            HINT = 'Create it first with metering.create_plan.';
    END IF;
    PERFORM 1 FROM metering.meters m WHERE m.code = meter_code;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'meter "%" does not exist', meter_code USING ERRCODE = 'MT002',
            HINT = 'Create it first with metering.create_meter.';
    END IF;
    INSERT INTO metering.charges (plan_code, meter, pricing)
    VALUES (plan_code, meter_code, metering._check_pricing(pricing))
    RETURNING charge_id INTO id;
    RETURN id;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'plan "%" already has a charge for meter "%"', plan_code, meter_code
        USING ERRCODE = 'duplicate_object', HINT = 'A plan prices each meter once.';
END
$$;
COMMENT ON FUNCTION metering.add_charge(text, text, jsonb) IS
    'Prices a meter on a plan; pricing is jsonb ({"model": "per_unit" | "graduated" | "volume" | '
    '"package" | "percentage", ..., "free_units": N}) and is validated here. Returns the charge_id.';

CREATE FUNCTION metering.subscribe(customer_id text, plan_code text, starts_at timestamptz DEFAULT now(),
        billing_anchor timestamptz DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
    other metering.subscriptions;
BEGIN
    IF customer_id IS NULL OR plan_code IS NULL OR starts_at IS NULL THEN
        RAISE EXCEPTION '% must not be NULL',
            CASE WHEN customer_id IS NULL THEN 'customer_id' WHEN plan_code IS NULL THEN 'plan_code'
                 ELSE 'starts_at' END
            USING ERRCODE = '22004';
    END IF;
    IF NOT isfinite(starts_at) OR NOT isfinite(coalesce(billing_anchor, starts_at)) THEN
        RAISE EXCEPTION '% % is not a finite timestamp',
            CASE WHEN NOT isfinite(starts_at) THEN 'starts_at' ELSE 'billing_anchor' END,
            CASE WHEN NOT isfinite(starts_at) THEN starts_at ELSE billing_anchor END
            USING ERRCODE = 'MT006';
    END IF;
    -- Locks the customer: concurrent subscribes of one customer take turns.
    PERFORM 1 FROM metering.customers c WHERE c.customer_id = subscribe.customer_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer_id "%" does not exist', customer_id USING ERRCODE = 'MT001',
            HINT = 'Create it first with metering.create_customer.';
    END IF;
    PERFORM 1 FROM metering.plans p WHERE p.code = subscribe.plan_code;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'plan "%" does not exist', plan_code USING ERRCODE = 'MT018',
            HINT = 'Create it first with metering.create_plan.';
    END IF;
    SELECT * INTO other FROM metering.subscriptions s
    WHERE s.customer_id = subscribe.customer_id
      AND (s.ends_at IS NULL OR s.ends_at > subscribe.starts_at)
    ORDER BY s.starts_at LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'customer_id "%" already has subscription % from % %', customer_id,
            other.subscription_id, other.starts_at,
            CASE WHEN other.ends_at IS NULL THEN 'with no end' ELSE 'until ' || other.ends_at END
            USING ERRCODE = 'MT019',
            HINT = 'A customer''s subscriptions must not overlap (each event is billed once): end the other one first.';
    END IF;
    INSERT INTO metering.subscriptions (customer_id, plan_code, starts_at, billing_anchor)
    VALUES (customer_id, plan_code, starts_at, coalesce(billing_anchor, starts_at))
    RETURNING subscription_id INTO id;
    RETURN id;
END
$$;
COMMENT ON FUNCTION metering.subscribe(text, text, timestamptz, timestamptz) IS
    'Subscribes a customer to a plan from starts_at; periods count from billing_anchor (default '
    'starts_at) in the customer''s time zone. Returns the subscription_id.';

CREATE FUNCTION metering.end_subscription(subscription_id bigint, ends_at timestamptz DEFAULT now())
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s metering.subscriptions;
BEGIN
    IF subscription_id IS NULL OR ends_at IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', CASE WHEN subscription_id IS NULL THEN 'subscription_id' ELSE 'ends_at' END
            USING ERRCODE = '22004';
    END IF;
    SELECT * INTO s FROM metering.subscriptions x WHERE x.subscription_id = end_subscription.subscription_id
        FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'subscription % does not exist', subscription_id USING ERRCODE = 'MT020';
    END IF;
    IF s.ends_at IS NOT NULL THEN
        RAISE EXCEPTION 'subscription % already ended at %', subscription_id, s.ends_at
            USING ERRCODE = '55000';
    END IF;
    IF NOT isfinite(ends_at) OR ends_at <= s.starts_at THEN
        RAISE EXCEPTION 'ends_at % must be a finite timestamp after starts_at %', ends_at, s.starts_at
            USING ERRCODE = '22023';
    END IF;
    UPDATE metering.subscriptions x SET ends_at = end_subscription.ends_at
    WHERE x.subscription_id = end_subscription.subscription_id;
END
$$;
COMMENT ON FUNCTION metering.end_subscription(bigint, timestamptz) IS
    'Ends a subscription at ends_at: its last period is cut there (base fee prorated).';

-- Periods of a subscription: whole periods cut to [starts_at, ends_at).
CREATE FUNCTION metering._subscription_periods(s metering.subscriptions, timezone text, billing_interval interval,
        from_ts timestamptz, to_ts timestamptz)
    RETURNS TABLE(period_start timestamptz, period_end timestamptz, full_start timestamptz, full_end timestamptz)
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT greatest(p.period_start, s.starts_at), least(p.period_end, coalesce(s.ends_at, 'infinity')),
           p.period_start, p.period_end
    FROM metering._periods(s.billing_anchor, billing_interval, timezone,
                           greatest(from_ts, s.starts_at), least(to_ts, coalesce(s.ends_at, 'infinity'))) p
    WHERE greatest(from_ts, s.starts_at) < least(to_ts, coalesce(s.ends_at, 'infinity'))
$$;
COMMENT ON FUNCTION metering._subscription_periods(metering.subscriptions, text, interval, timestamptz, timestamptz) IS
    'Internal: the billing periods of a subscription overlapping [from_ts, to_ts), cut to the subscription.';

CREATE FUNCTION metering.billing_periods(subscription_id bigint, from_ts timestamptz, to_ts timestamptz)
    RETURNS TABLE(period_start timestamptz, period_end timestamptz)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s metering.subscriptions;
BEGIN
    IF subscription_id IS NULL OR from_ts IS NULL OR to_ts IS NULL THEN
        RAISE EXCEPTION '% must not be NULL',
            CASE WHEN subscription_id IS NULL THEN 'subscription_id' WHEN from_ts IS NULL THEN 'from_ts' ELSE 'to_ts' END
            USING ERRCODE = '22004';
    END IF;
    IF from_ts > to_ts THEN
        RAISE EXCEPTION 'from_ts % is after to_ts %', from_ts, to_ts USING ERRCODE = '22023';
    END IF;
    SELECT * INTO s FROM metering.subscriptions x WHERE x.subscription_id = billing_periods.subscription_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'subscription % does not exist', subscription_id USING ERRCODE = 'MT020';
    END IF;
    RETURN QUERY
        SELECT p.period_start, p.period_end
        FROM metering.customers c, metering.plans pl,
             metering._subscription_periods(s, c.timezone, pl.billing_interval, from_ts, to_ts) p
        WHERE c.customer_id = s.customer_id AND pl.code = s.plan_code
        ORDER BY 1;
END
$$;
COMMENT ON FUNCTION metering.billing_periods(bigint, timestamptz, timestamptz) IS
    'Billing periods of a subscription that overlap [from_ts, to_ts): [anchor + k x interval, '
    'anchor + (k+1) x interval) in the customer''s time zone, cut to the subscription''s start and end.';

-- Quantity of one meter of one customer over [from_ts, to_ts) by due_at, per
-- the meter's kind. No argument checks: usage() and the views call it.
-- billed_by: only the events one of these invoices billed (NULL: every event).
CREATE FUNCTION metering._quantity(m metering.meters, customer_id text, from_ts timestamptz, to_ts timestamptz,
        billed_by bigint[] DEFAULT NULL)
    RETURNS numeric
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result numeric;
BEGIN
    IF m.aggregation = 'custom' THEN
        -- The stored expression, never the one in the row passed: it is Postgres's
        -- deparse of a checked aggregate (create_meter), not text as an admin typed it.
        SELECT x.expression INTO STRICT m.expression FROM metering.meters x WHERE x.code = m.code;
        EXECUTE format('SELECT (%s)::numeric FROM metering.events ev '
                       'WHERE ev.customer_id = $1 AND ev.meter = $2 AND ev.due_at >= $3 AND ev.due_at < $4 '
                       'AND ($5::jsonb IS NULL OR ev.properties @> $5) '
                       'AND ($6::bigint[] IS NULL OR EXISTS (SELECT 1 FROM metering.billed_events b '
                       'WHERE b.customer_id = ev.customer_id AND b.event_id = ev.event_id '
                       'AND b.invoice_id = ANY ($6)))', m.expression)
            INTO result USING customer_id, m.code, from_ts, to_ts, m.filter, billed_by;
        RETURN result;
    END IF;
    -- One query per kind over the meter's events in [from_ts, to_ts) by due_at,
    -- read through the primary key (customer_id, meter, due_at, event_id).
    WITH e AS (
        SELECT ev.value, ev.occurred_at, ev.event_id, ev.op,
               CASE WHEN m.value_property IS NULL THEN ev.value
                    WHEN m.aggregation <> 'unique_count'
                    THEN (ev.properties ->> m.value_property)::numeric END AS v,
               CASE WHEN m.value_property IS NULL THEN ev.value::text
                    ELSE ev.properties ->> m.value_property END AS t
        FROM metering.events ev
        WHERE ev.customer_id = _quantity.customer_id AND ev.meter = m.code
          AND ev.due_at >= from_ts AND ev.due_at < to_ts
          AND (m.filter IS NULL OR ev.properties @> m.filter)
          AND (billed_by IS NULL
               OR EXISTS (SELECT 1 FROM metering.billed_events b
                          WHERE b.customer_id = ev.customer_id AND b.event_id = ev.event_id
                            AND b.invoice_id = ANY (billed_by))))
    SELECT CASE m.aggregation
             WHEN 'count' THEN (SELECT count(*) FROM e)
             WHEN 'sum' THEN (SELECT coalesce(sum(v), 0) FROM e)
             WHEN 'max' THEN (SELECT max(v) FROM e)
             WHEN 'min' THEN (SELECT min(v) FROM e)
             WHEN 'latest' THEN (SELECT metering.latest(v, occurred_at, event_id) FROM e)
             WHEN 'unique_count' THEN (SELECT metering.unique_count(t) FROM e)
             -- the last set in the range (or 0 at from_ts) plus the increments after it
             WHEN 'counter' THEN (SELECT metering.counter_total(op, value, occurred_at, event_id) FROM e)
             -- value x hours; before its first point in the range the gauge holds the last
             -- value due before from_ts, else 0
             WHEN 'time_weighted' THEN (
               SELECT metering.time_weighted(pts.v, pts.at, from_ts, to_ts, pts.event_id)
               FROM (SELECT e.v, e.occurred_at AS at, e.event_id FROM e
                     UNION ALL
                     (SELECT CASE WHEN m.value_property IS NULL THEN p.value
                                  ELSE (p.properties ->> m.value_property)::numeric END,
                             least(p.occurred_at, from_ts - interval '1 microsecond'), p.event_id
                      FROM metering.events p
                      WHERE p.customer_id = _quantity.customer_id AND p.meter = m.code AND p.due_at < from_ts
                        AND (m.filter IS NULL OR p.properties @> m.filter)
                      ORDER BY p.due_at DESC, p.event_id DESC LIMIT 1)) pts)
           END
    INTO result;
    RETURN result;
END
$$;
COMMENT ON FUNCTION metering._quantity(metering.meters, text, timestamptz, timestamptz, bigint[]) IS
    'Internal: quantity of a meter for a customer over [from_ts, to_ts) by due_at.';

-- Every started period of every subscription, with what its lines need.
CREATE VIEW metering._started_periods AS
SELECT s.subscription_id, s.customer_id, s.plan_code, pl.currency, pl.base_fee,
       metering.currency_exponent(pl.currency) AS exponent,
       p.period_start, p.period_end, p.full_start, p.full_end,
       extract(epoch FROM p.period_end - p.period_start) AS seconds,
       extract(epoch FROM p.full_end - p.full_start) AS full_seconds,
       -- shown as the base fee's quantity; the amount uses the exact seconds
       CASE WHEN p.period_start = p.full_start AND p.period_end = p.full_end THEN 1::numeric
            ELSE round(extract(epoch FROM p.period_end - p.period_start)
                       / extract(epoch FROM p.full_end - p.full_start), 6) END AS fraction
FROM metering.subscriptions s
JOIN metering.customers c ON c.customer_id = s.customer_id
JOIN metering.plans pl ON pl.code = s.plan_code
CROSS JOIN LATERAL metering._cut_periods(s.billing_anchor, pl.billing_interval, c.timezone, s.starts_at,
                                         coalesce(s.ends_at, 'infinity'), now()) p;
COMMENT ON VIEW metering._started_periods IS
    'Internal: every billing period of every subscription that has started (cut to the subscription).';

-- One row per started period x charge, with the meter's rule (and its row, for
-- _quantity); k (meters.kind) numbers the kinds that _usage_quantities aggregates in
-- one pass, 0: one line at a time.
CREATE VIEW metering._usage_lines AS
SELECT sp.subscription_id, sp.customer_id, sp.period_start, sp.period_end, ch.charge_id, ch.meter,
       ch.pricing, sp.currency, m.filter, m.kind AS k, m AS meter_row
FROM metering._started_periods sp
JOIN metering.charges ch ON ch.plan_code = sp.plan_code
JOIN metering.meters m ON m.code = ch.meter;
COMMENT ON VIEW metering._usage_lines IS
    'Internal: every started period x charge, with the meter''s aggregation rule.';

-- The quantity of every usage line, set-based (docs/rating.md, "How the usage lines are
-- computed"): the events of the periods asked for are joined to their subscription
-- period (by customer and due_at) and to their meter, aggregated per period and meter in
-- one pass by metering._line_quantity, whatever the meter's kind, and matched to the
-- plan's charges. A filter on the view's columns reaches the periods in every branch,
-- and _due_in gives the planner both a join estimate and the primary key's range when a
-- few periods are asked for.
CREATE VIEW metering._usage_quantities AS
SELECT u.subscription_id, u.customer_id, u.period_start, u.period_end, ch.charge_id, ch.meter,
       ch.pricing, pl.currency, u.quantity
FROM (
    SELECT sp.subscription_id, sp.customer_id, sp.plan_code, sp.period_start, sp.period_end, m.code AS meter,
           metering._line_quantity(
               m.kind,
               -- the value: none for count and unique_count; a counter's own value
               CASE WHEN m.kind IN (1, 5) THEN NULL
                    WHEN m.value_property IS NULL OR m.kind = 7 THEN ev.value
                    ELSE (ev.properties ->> m.value_property)::numeric END,
               -- the text counted by unique_count
               CASE WHEN m.kind = 5 THEN CASE WHEN m.value_property IS NULL THEN ev.value::text
                                              ELSE ev.properties ->> m.value_property END END,
               ev.occurred_at, ev.event_id, ev.op) AS quantity
    FROM metering._started_periods sp
    JOIN metering.events ev ON ev.customer_id = sp.customer_id
         AND metering._due_in(ev.due_at, sp.period_start, sp.period_end)
    JOIN metering.meters m ON m.code = ev.meter
    WHERE m.kind > 0
      AND (m.filter IS NULL OR ev.properties @> m.filter)
    GROUP BY sp.subscription_id, sp.customer_id, sp.plan_code, sp.period_start, sp.period_end, m.code
) u
JOIN metering.charges ch ON ch.plan_code = u.plan_code AND ch.meter = u.meter
JOIN metering.plans pl ON pl.code = u.plan_code
UNION ALL
-- lines of those kinds without events in the period (0; one index probe each), and
-- custom and time_weighted lines (one query each)
SELECT l.subscription_id, l.customer_id, l.period_start, l.period_end, l.charge_id, l.meter,
       l.pricing, l.currency,
       CASE WHEN l.k = 0 THEN metering._quantity(l.meter_row, l.customer_id, l.period_start, l.period_end)
            ELSE 0 END
FROM metering._usage_lines l
WHERE l.k = 0
   OR NOT EXISTS (SELECT FROM metering.events ev
                  WHERE ev.customer_id = l.customer_id AND ev.meter = l.meter
                    AND metering._due_in(ev.due_at, l.period_start, l.period_end)
                    AND (l.filter IS NULL OR ev.properties @> l.filter));
COMMENT ON VIEW metering._usage_quantities IS
    'Internal: the quantity of every usage line (subscription x started period x charge).';

CREATE VIEW metering.invoice_lines AS
SELECT sp.subscription_id, sp.customer_id, sp.period_start, sp.period_end,
       NULL::bigint AS charge_id, NULL::text AS meter,
       'Base fee, plan ' || sp.plan_code AS description,
       sp.fraction AS quantity,
       0::numeric AS free_units,
       sp.fraction AS billable_quantity,
       round(sp.base_fee * sp.seconds / sp.full_seconds, sp.exponent) AS amount,
       sp.currency, 'base_fee'::text AS kind
FROM metering._started_periods sp
UNION ALL
SELECT u.subscription_id, u.customer_id, u.period_start, u.period_end,
       u.charge_id, u.meter::text,
       'Usage of ' || u.meter AS description,
       q.quantity,
       metering._free_units(u.pricing),
       metering._billable_quantity(q.quantity, u.pricing),
       round(metering.rate(q.quantity, u.pricing), metering.currency_exponent(u.currency)),
       u.currency, 'usage'::text
FROM metering._usage_quantities u
CROSS JOIN LATERAL (SELECT coalesce(u.quantity, 0) AS quantity) q;
COMMENT ON VIEW metering.invoice_lines IS
    'One line per subscription x started period x charge, plus the base fee (in arrears, prorated by '
    'elapsed time for a partial first or last period); amount is rounded once, half away from zero, to '
    'the currency''s minor unit.';

CREATE VIEW metering.current_usage AS
SELECT l.* FROM metering.invoice_lines l
WHERE l.period_start <= now() AND now() < l.period_end;
COMMENT ON VIEW metering.current_usage IS
    'The lines of each subscription''s open period, so far.';

CREATE FUNCTION metering.billable_items(customer_id text)
    RETURNS TABLE(subscription_id bigint, plan_code text, charge_id bigint, meter text, aggregation text,
                  pricing jsonb)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.subscription_id, s.plan_code, ch.charge_id, ch.meter, m.aggregation, ch.pricing
    FROM metering.subscriptions s
    JOIN metering.charges ch ON ch.plan_code = s.plan_code
    JOIN metering.meters m ON m.code = ch.meter
    WHERE s.customer_id = billable_items.customer_id
      AND s.starts_at <= now() AND (s.ends_at IS NULL OR s.ends_at > now())
    ORDER BY ch.charge_id
$$;
COMMENT ON FUNCTION metering.billable_items(text) IS
    'The charges (meter and pricing) a customer is billed for now, by its current subscription.';

------------------------------------------------------------------------------
-- Invoices: closing periods, exactly-once billing, late usage, interim billing
-- (docs/invoicing.md explains the mechanism and why it is correct under MVCC)
------------------------------------------------------------------------------

CREATE FUNCTION metering._grace_period() RETURNS interval
    AS 'MODULE_PATHNAME', 'metering_grace_period'
    LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION metering._internal_change(allow boolean) RETURNS void
    AS 'MODULE_PATHNAME', 'metering_internal_change'
    LANGUAGE C VOLATILE;
CREATE FUNCTION metering._internal_change_active() RETURNS boolean
    AS 'MODULE_PATHNAME', 'metering_internal_change_active'
    LANGUAGE C STABLE;
COMMENT ON FUNCTION metering._grace_period() IS 'Internal: metering.close_grace_period as an interval.';
COMMENT ON FUNCTION metering._internal_change(boolean) IS
    'Internal: lets metering''s own functions make a change the refuse triggers forbid (cleared at transaction end).';
COMMENT ON FUNCTION metering._internal_change_active() IS 'Internal: whether _internal_change(true) is in effect.';

CREATE TABLE metering.invoices (
    invoice_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id bigint NOT NULL REFERENCES metering.subscriptions (subscription_id),
    customer_id     text COLLATE "C" NOT NULL,
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('regular', 'interim')),
    status          text NOT NULL CHECK (status IN ('pending_review', 'issued', 'void')),
    currency        text NOT NULL,
    total           numeric NOT NULL,
    issued_at       timestamptz,
    as_of           timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    voided_at       timestamptz,
    void_reason     text
);
-- At most one live regular invoice per subscription period: close_periods is idempotent.
CREATE UNIQUE INDEX invoices_one_regular ON metering.invoices (subscription_id, period_start)
    WHERE kind = 'regular' AND status <> 'void';
CREATE INDEX invoices_customer ON metering.invoices (customer_id, period_start);
COMMENT ON TABLE metering.invoices IS
    'Invoices: regular (a closed period) or interim (bill_now); status pending_review, issued or void. '
    'Immutable but for approve_invoice and void_invoice.';
COMMENT ON COLUMN metering.invoices.as_of IS
    'The instant billed up to: an interim invoice bills usage due at or before it.';

CREATE TABLE metering.invoice_items (
    invoice_id        bigint NOT NULL REFERENCES metering.invoices (invoice_id),
    item_no           int NOT NULL,
    charge_id         bigint,
    meter             text COLLATE "C",
    kind              text NOT NULL CHECK (kind IN ('base_fee', 'usage', 'late_usage')),
    description       text NOT NULL,
    period_start      timestamptz NOT NULL,
    period_end        timestamptz NOT NULL,
    quantity          numeric NOT NULL,
    free_units        numeric NOT NULL,
    billable_quantity numeric NOT NULL,
    amount            numeric NOT NULL,
    PRIMARY KEY (invoice_id, item_no)
);
COMMENT ON TABLE metering.invoice_items IS
    'Lines of an invoice. usage: the period''s billed quantity so far and the amount still due for it '
    '(rate of the whole minus what earlier invoices of the period billed); late_usage: events of an '
    'already invoiced period, rated on their own quantity without free units; base_fee.';
COMMENT ON COLUMN metering.invoice_items.period_start IS
    'The billing period the line''s usage belongs to (an earlier one for late_usage).';

-- One row per billed event: which invoice billed it. The primary key makes a second
-- billing impossible; voiding an invoice deletes its rows (the usage is unbilled again).
CREATE TABLE metering.billed_events (
    customer_id text COLLATE "C" NOT NULL,
    event_id    bigint NOT NULL,
    -- No foreign key: _issue_invoice writes the invoice and its marks together, and a
    -- per-row RI check was half of the time of marking 10 million events.
    invoice_id  bigint NOT NULL,
    meter       text COLLATE "C" NOT NULL,   -- copied from the event: an invoice's late
    due_at      timestamptz NOT NULL,        -- lines are found from its own marks
    PRIMARY KEY (customer_id, event_id)
);
CREATE INDEX billed_events_invoice ON metering.billed_events (invoice_id);
COMMENT ON TABLE metering.billed_events IS
    'Exactly-once bookkeeping: the invoice that billed each billed event.';

SELECT pg_catalog.pg_extension_config_dump('metering.invoices', '');
SELECT pg_catalog.pg_extension_config_dump('metering.invoices_invoice_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('metering.invoice_items', '');
SELECT pg_catalog.pg_extension_config_dump('metering.billed_events', '');

CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE OR TRUNCATE ON metering.invoices
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'issued invoices are immutable', 'Void the invoice with metering.void_invoice and bill again.');
CREATE TRIGGER invoice_items_immutable BEFORE UPDATE OR DELETE OR TRUNCATE ON metering.invoice_items
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'invoice items are immutable', 'Void the invoice with metering.void_invoice and bill again.');
CREATE TRIGGER billed_events_keep BEFORE UPDATE OR DELETE OR TRUNCATE ON metering.billed_events
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'billing marks change only with their invoice', 'Void the invoice with metering.void_invoice.');

-- Issues one invoice of subscription s: 'regular' for the period [p_start, p_end),
-- 'interim' for its usage due at or before as_of. The caller holds the customer lock.
CREATE FUNCTION metering._issue_invoice(s metering.subscriptions, p_start timestamptz, p_end timestamptz,
        full_start timestamptz, full_end timestamptz, inv_kind text, as_of timestamptz)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c metering.customers;
    pl metering.plans;
    exponent int;
    id bigint;
    item int := 0;
    inv_total numeric := 0;
    ch record;
    late record;
    q numeric;
    prev numeric;
    amount numeric;
    fraction numeric;
    period_closed boolean;
    live_ids bigint[];
    late_meter metering.meters;
BEGIN
    SELECT * INTO c FROM metering.customers x WHERE x.customer_id = s.customer_id;
    SELECT * INTO pl FROM metering.plans x WHERE x.code = s.plan_code;
    exponent := metering.currency_exponent(pl.currency);
    INSERT INTO metering.invoices (subscription_id, customer_id, period_start, period_end, kind, status,
                                   currency, total, issued_at, as_of)
    VALUES (s.subscription_id, s.customer_id, p_start, p_end, inv_kind,
            CASE WHEN c.auto_issue THEN 'issued' ELSE 'pending_review' END, pl.currency, 0,
            CASE WHEN c.auto_issue THEN now() END, as_of)
    RETURNING invoice_id INTO id;
    -- An interim invoice of a period that already has its regular invoice bills late usage only.
    period_closed := EXISTS (SELECT 1 FROM metering.invoices r
                             WHERE r.subscription_id = s.subscription_id AND r.kind = 'regular'
                               AND r.status <> 'void' AND r.invoice_id <> id AND r.period_start = p_start);

    -- Mark what this invoice bills: the unbilled events of the plan's meters due in this
    -- period (up to as_of for an interim invoice), and the unbilled events of earlier
    -- periods that already have their regular invoice (late usage). An event committed
    -- after this statement's snapshot is not seen: it stays unbilled for the next invoice.
    INSERT INTO metering.billed_events (customer_id, event_id, invoice_id, meter, due_at)
    SELECT e.customer_id, e.event_id, id, e.meter, e.due_at
    FROM metering.charges chg
    JOIN metering.events e ON e.customer_id = s.customer_id AND e.meter = chg.meter
    WHERE chg.plan_code = s.plan_code
      AND e.due_at >= s.starts_at AND e.due_at < p_end
      AND ((NOT period_closed AND e.due_at >= p_start AND (inv_kind = 'regular' OR e.due_at <= as_of))
           OR EXISTS (SELECT 1 FROM metering.invoices r
                      WHERE r.subscription_id = s.subscription_id AND r.kind = 'regular' AND r.status <> 'void'
                        AND r.invoice_id <> id AND r.period_start <= e.due_at AND e.due_at < r.period_end))
      AND NOT EXISTS (SELECT 1 FROM metering.billed_events b
                      WHERE b.customer_id = e.customer_id AND b.event_id = e.event_id);

    -- The live invoices of this period, this one included (not the ones billing it as late usage).
    SELECT array_agg(i.invoice_id) INTO live_ids FROM metering.invoices i
    WHERE i.subscription_id = s.subscription_id AND i.status <> 'void' AND i.period_start = p_start;

    -- usage: the period's quantity billed so far by live invoices (this one included),
    -- rated as a whole, minus what earlier invoices of the period billed for the charge.
    FOR ch IN SELECT chg.charge_id, chg.meter, chg.pricing, m AS meter_row
              FROM metering.charges chg JOIN metering.meters m ON m.code = chg.meter
              WHERE chg.plan_code = s.plan_code AND NOT period_closed ORDER BY chg.charge_id
    LOOP
        q := coalesce(metering._quantity(ch.meter_row, s.customer_id, p_start, p_end, live_ids), 0);
        SELECT coalesce(sum(it.amount), 0) INTO prev
        FROM metering.invoice_items it JOIN metering.invoices i ON i.invoice_id = it.invoice_id
        WHERE i.subscription_id = s.subscription_id AND i.status <> 'void' AND i.invoice_id <> id
          AND it.kind = 'usage' AND it.charge_id = ch.charge_id AND it.period_start = p_start;
        amount := round(metering.rate(q, ch.pricing), exponent) - prev;
        item := item + 1;
        INSERT INTO metering.invoice_items VALUES
            (id, item, ch.charge_id, ch.meter, 'usage', 'Usage of ' || ch.meter, p_start, p_end, q,
             metering._free_units(ch.pricing), metering._billable_quantity(q, ch.pricing), amount);
        inv_total := inv_total + amount;
    END LOOP;

    -- late_usage: per earlier period and charge with events this invoice marked (found
    -- from this invoice's own marks, not by reading the subscription's history).
    FOR late IN SELECT DISTINCT r.period_start, r.period_end, chg.charge_id, chg.meter, chg.pricing
                FROM metering.billed_events b
                JOIN metering.invoices r ON r.subscription_id = s.subscription_id AND r.kind = 'regular'
                     AND r.status <> 'void' AND r.invoice_id <> id
                     AND b.due_at >= r.period_start AND b.due_at < r.period_end
                JOIN metering.charges chg ON chg.plan_code = s.plan_code AND chg.meter = b.meter
                WHERE b.invoice_id = id
                ORDER BY r.period_start, chg.charge_id
    LOOP
        SELECT * INTO late_meter FROM metering.meters m WHERE m.code = late.meter;
        q := coalesce(metering._quantity(late_meter, s.customer_id, late.period_start, late.period_end, ARRAY[id]), 0);
        amount := round(metering.rate(q, late.pricing - 'free_units'), exponent);
        item := item + 1;
        INSERT INTO metering.invoice_items VALUES
            (id, item, late.charge_id, late.meter, 'late_usage', 'Late usage of ' || late.meter,
             late.period_start, late.period_end, q, 0, metering._billable_quantity(q, late.pricing - 'free_units'),
             amount);
        inv_total := inv_total + amount;
    END LOOP;

    -- base fee: in arrears on the regular invoice, prorated for a partial period.
    IF inv_kind = 'regular' THEN
        fraction := CASE WHEN p_start = full_start AND p_end = full_end THEN 1
                         ELSE round(extract(epoch FROM p_end - p_start) / extract(epoch FROM full_end - full_start), 6) END;
        amount := round(pl.base_fee * extract(epoch FROM p_end - p_start) / extract(epoch FROM full_end - full_start),
                        exponent);
        item := item + 1;
        INSERT INTO metering.invoice_items VALUES
            (id, item, NULL, NULL, 'base_fee', 'Base fee, plan ' || pl.code, p_start, p_end,
             fraction, 0, fraction, amount);
        inv_total := inv_total + amount;
    END IF;

    PERFORM metering._internal_change(true);
    UPDATE metering.invoices x SET total = inv_total WHERE x.invoice_id = id;
    PERFORM metering._internal_change(false);
    RETURN id;
END
$$;
COMMENT ON FUNCTION metering._issue_invoice(metering.subscriptions, timestamptz, timestamptz, timestamptz, timestamptz, text, timestamptz) IS
    'Internal: issues one invoice and marks the events it bills.';

CREATE FUNCTION metering.close_periods(as_of timestamptz DEFAULT now()) RETURNS int
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz;
    s metering.subscriptions;
    p record;
    made int := 0;
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite timestamp, not %', coalesce(as_of::text, 'NULL')
            USING ERRCODE = '22004';
    END IF;
    cutoff := as_of - metering._grace_period();
    FOR s IN SELECT * FROM metering.subscriptions x WHERE x.starts_at < cutoff ORDER BY x.subscription_id LOOP
        FOR p IN SELECT sp.* FROM metering.customers c, metering.plans pl,
                         metering._subscription_periods(s, c.timezone, pl.billing_interval, s.starts_at, cutoff) sp
                 WHERE c.customer_id = s.customer_id AND pl.code = s.plan_code AND sp.period_end <= cutoff
                   AND NOT EXISTS (SELECT 1 FROM metering.invoices i
                                   WHERE i.subscription_id = s.subscription_id AND i.kind = 'regular'
                                     AND i.status <> 'void' AND i.period_start = sp.period_start)
                 ORDER BY sp.period_start
        LOOP
            -- Everything that bills a customer takes this lock; ingest never does.
            PERFORM 1 FROM metering.customers c WHERE c.customer_id = s.customer_id FOR UPDATE;
            -- A concurrent close_periods may have issued it while we waited (new snapshot).
            CONTINUE WHEN EXISTS (SELECT 1 FROM metering.invoices i
                                  WHERE i.subscription_id = s.subscription_id AND i.kind = 'regular'
                                    AND i.status <> 'void' AND i.period_start = p.period_start);
            PERFORM metering._issue_invoice(s, p.period_start, p.period_end, p.full_start, p.full_end,
                                            'regular', as_of);
            made := made + 1;
        END LOOP;
        -- An ended subscription has no next invoice: its late usage gets an interim
        -- invoice of its last period (late usage lines only).
        IF s.ends_at IS NOT NULL AND s.ends_at <= cutoff THEN
            PERFORM 1 FROM metering.customers c WHERE c.customer_id = s.customer_id FOR UPDATE;
            SELECT sp.* INTO p FROM metering.customers c, metering.plans pl,
                   metering._subscription_periods(s, c.timezone, pl.billing_interval, s.ends_at - interval '1 microsecond', s.ends_at) sp
            WHERE c.customer_id = s.customer_id AND pl.code = s.plan_code;
            IF EXISTS (SELECT 1 FROM metering.charges chg
                       JOIN metering.events e ON e.customer_id = s.customer_id AND e.meter = chg.meter
                       WHERE chg.plan_code = s.plan_code AND e.due_at >= s.starts_at AND e.due_at < s.ends_at
                         AND NOT EXISTS (SELECT 1 FROM metering.billed_events b
                                         WHERE b.customer_id = e.customer_id AND b.event_id = e.event_id)
                         AND EXISTS (SELECT 1 FROM metering.invoices r
                                     WHERE r.subscription_id = s.subscription_id AND r.kind = 'regular'
                                       AND r.status <> 'void' AND r.period_start <= e.due_at AND e.due_at < r.period_end))
            THEN
                PERFORM metering._issue_invoice(s, p.period_start, p.period_end, p.full_start, p.full_end,
                                                'interim', as_of);
                made := made + 1;
            END IF;
        END IF;
    END LOOP;
    RETURN made;
END
$$;
COMMENT ON FUNCTION metering.close_periods(timestamptz) IS
    'Issues the regular invoice of every subscription period that ended at or before as_of minus '
    'metering.close_grace_period (default 1 hour); idempotent and safe to run concurrently with itself '
    'and with ingest (schedule it with pg_cron). Returns the number of invoices made.';

CREATE FUNCTION metering.bill_now(subscription_id bigint, as_of timestamptz DEFAULT now()) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s metering.subscriptions;
    p record;
BEGIN
    IF subscription_id IS NULL OR as_of IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', CASE WHEN subscription_id IS NULL THEN 'subscription_id' ELSE 'as_of' END
            USING ERRCODE = '22004';
    END IF;
    SELECT * INTO s FROM metering.subscriptions x WHERE x.subscription_id = bill_now.subscription_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'subscription % does not exist', subscription_id USING ERRCODE = 'MT020';
    END IF;
    IF NOT isfinite(as_of) OR as_of > now() THEN
        RAISE EXCEPTION 'as_of % must be a finite instant not in the future', as_of USING ERRCODE = '22023';
    END IF;
    PERFORM 1 FROM metering.customers c WHERE c.customer_id = s.customer_id FOR UPDATE;
    SELECT sp.* INTO p FROM metering.customers c, metering.plans pl,
           metering._subscription_periods(s, c.timezone, pl.billing_interval, as_of, as_of + interval '1 microsecond') sp
    WHERE c.customer_id = s.customer_id AND pl.code = s.plan_code;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'subscription % is not active at %', subscription_id, as_of USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM metering.invoices i WHERE i.subscription_id = s.subscription_id AND i.kind = 'regular'
               AND i.status <> 'void' AND i.period_start = p.period_start) THEN
        RAISE EXCEPTION 'the period of subscription % from % is already invoiced', subscription_id, p.period_start
            USING ERRCODE = '55000', HINT = 'Late usage of a closed period goes on the next invoice.';
    END IF;
    RETURN metering._issue_invoice(s, p.period_start, p.period_end, p.full_start, p.full_end, 'interim', as_of);
END
$$;
COMMENT ON FUNCTION metering.bill_now(bigint, timestamptz) IS
    'Interim invoice: bills the unbilled usage due at or before as_of in the open period (and late usage '
    'of closed periods); the period''s regular invoice later bills only the rest. Returns the invoice_id.';

CREATE FUNCTION metering.approve_invoice(invoice_id bigint) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inv metering.invoices;
BEGIN
    SELECT * INTO inv FROM metering.invoices i WHERE i.invoice_id = approve_invoice.invoice_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'invoice % does not exist', coalesce(invoice_id::text, 'NULL') USING ERRCODE = 'MT022';
    END IF;
    IF inv.status <> 'pending_review' THEN
        RAISE EXCEPTION 'invoice % is %, not pending_review', invoice_id, inv.status USING ERRCODE = '55000';
    END IF;
    PERFORM metering._internal_change(true);
    UPDATE metering.invoices i SET status = 'issued', issued_at = now() WHERE i.invoice_id = approve_invoice.invoice_id;
    PERFORM metering._internal_change(false);
END
$$;
COMMENT ON FUNCTION metering.approve_invoice(bigint) IS
    'Issues an invoice waiting in pending_review (customers created with auto_issue => false).';

CREATE FUNCTION metering.void_invoice(invoice_id bigint, reason text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    inv metering.invoices;
BEGIN
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'reason must not be empty' USING ERRCODE = '22004',
            HINT = 'Say why the invoice is voided; it is kept with the invoice.';
    END IF;
    SELECT * INTO inv FROM metering.invoices i WHERE i.invoice_id = void_invoice.invoice_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'invoice % does not exist', coalesce(invoice_id::text, 'NULL') USING ERRCODE = 'MT022';
    END IF;
    PERFORM 1 FROM metering.customers c WHERE c.customer_id = inv.customer_id FOR UPDATE;
    SELECT * INTO inv FROM metering.invoices i WHERE i.invoice_id = void_invoice.invoice_id;
    IF inv.status = 'void' THEN
        RAISE EXCEPTION 'invoice % is already void', invoice_id USING ERRCODE = '55000';
    END IF;
    PERFORM metering._internal_change(true);
    UPDATE metering.invoices i SET status = 'void', voided_at = now(), void_reason = reason
    WHERE i.invoice_id = void_invoice.invoice_id;
    DELETE FROM metering.billed_events b WHERE b.invoice_id = void_invoice.invoice_id;
    PERFORM metering._internal_change(false);
END
$$;
COMMENT ON FUNCTION metering.void_invoice(bigint, text) IS
    'Voids an invoice (final): its usage is unbilled again and goes on the next invoice '
    '(a voided regular invoice is issued anew by close_periods).';

CREATE FUNCTION metering.delete_unbilled_event(customer_id text, event_id bigint) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    billed_by bigint;
BEGIN
    IF customer_id IS NULL OR event_id IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', CASE WHEN customer_id IS NULL THEN 'customer_id' ELSE 'event_id' END
            USING ERRCODE = '22004';
    END IF;
    PERFORM 1 FROM metering.customers c WHERE c.customer_id = delete_unbilled_event.customer_id FOR UPDATE;
    PERFORM 1 FROM metering.events e
    WHERE e.customer_id = delete_unbilled_event.customer_id AND e.event_id = delete_unbilled_event.event_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event % of customer_id "%" does not exist', event_id, customer_id USING ERRCODE = 'MT023';
    END IF;
    SELECT b.invoice_id INTO billed_by FROM metering.billed_events b
    WHERE b.customer_id = delete_unbilled_event.customer_id AND b.event_id = delete_unbilled_event.event_id;
    IF FOUND THEN
        RAISE EXCEPTION 'event % is billed by invoice %', event_id, billed_by USING ERRCODE = 'MT017',
            HINT = 'A billed event is corrected by a new event (negative where the meter allows it).';
    END IF;
    PERFORM metering._internal_change(true);
    DELETE FROM metering.events e
    WHERE e.customer_id = delete_unbilled_event.customer_id AND e.event_id = delete_unbilled_event.event_id;
    PERFORM metering._internal_change(false);
END
$$;
COMMENT ON FUNCTION metering.delete_unbilled_event(text, bigint) IS
    'Admin correction: deletes an event no invoice has billed. A billed event is never deleted.';

------------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC but pure helpers; docs/privileges.md has the GRANT lines.
------------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA metering FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA metering FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA metering FROM PUBLIC;
GRANT EXECUTE ON FUNCTION metering.currency_exponent(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION metering.rate(numeric, jsonb), metering.rate_breakdown(numeric, jsonb) TO PUBLIC;
-- What the views call: a role that may SELECT a view may run them. They run as the
-- caller (reading events still needs SELECT on it); the pure ones do not read tables.
GRANT EXECUTE ON FUNCTION
    metering._cut_periods(timestamptz, interval, text, timestamptz, timestamptz, timestamptz),
    metering._due_in(timestamptz, timestamptz, timestamptz),
    metering._free_units(jsonb),
    metering._billable_quantity(numeric, jsonb),
    metering._quantity(metering.meters, text, timestamptz, timestamptz, bigint[]),
    metering._line_quantity(integer, numeric, text, timestamptz, bigint, text)
TO PUBLIC;
-- The CHECK constraint of events_import calls it with the inserting role's rights;
-- it refuses roles without INSERT on events_import.
GRANT EXECUTE ON FUNCTION metering._import_check(text, text, numeric, timestamptz, timestamptz, text, jsonb)
    TO PUBLIC;

------------------------------------------------------------------------------
-- The rating aggregates are pure: for everyone (USAGE on the schema still applies).
------------------------------------------------------------------------------

GRANT EXECUTE ON FUNCTION
    metering.aggregate_state_in(cstring),
    metering.aggregate_state_out(metering.aggregate_state),
    metering.aggregate_state_recv(internal),
    metering.aggregate_state_send(metering.aggregate_state),
    metering.latest_trans(metering.aggregate_state, numeric, timestamptz),
    metering.latest_trans(metering.aggregate_state, numeric, timestamptz, bigint),
    metering.latest_combine(metering.aggregate_state, metering.aggregate_state),
    metering.latest_final(metering.aggregate_state),
    metering.latest(numeric, timestamptz),
    metering.latest(numeric, timestamptz, bigint),
    metering.unique_count_trans(metering.aggregate_state, text),
    metering.unique_count_combine(metering.aggregate_state, metering.aggregate_state),
    metering.unique_count_final(metering.aggregate_state),
    metering.unique_count(text),
    metering.counter_total_trans(metering.aggregate_state, text, numeric, timestamptz),
    metering.counter_total_trans(metering.aggregate_state, text, numeric, timestamptz, bigint),
    metering.counter_total_combine(metering.aggregate_state, metering.aggregate_state),
    metering.counter_total_final(metering.aggregate_state),
    metering.counter_total(text, numeric, timestamptz),
    metering.counter_total(text, numeric, timestamptz, bigint),
    metering.time_weighted_trans(metering.aggregate_state, numeric, timestamptz, timestamptz, timestamptz),
    metering.time_weighted_trans(metering.aggregate_state, numeric, timestamptz, timestamptz, timestamptz, bigint),
    metering.time_weighted_combine(metering.aggregate_state, metering.aggregate_state),
    metering.time_weighted_final(metering.aggregate_state),
    metering.time_weighted(numeric, timestamptz, timestamptz, timestamptz),
    metering.time_weighted(numeric, timestamptz, timestamptz, timestamptz, bigint)
TO PUBLIC;
