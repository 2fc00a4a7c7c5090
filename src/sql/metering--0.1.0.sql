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
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE metering.meters IS
    'Billable metrics: how the events of a meter aggregate per billing period.';

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
            coalesce(allow_negative, negative_by_default), expression);
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

CREATE FUNCTION metering._refuse_change() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
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
    result numeric;
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
    IF m.aggregation IN ('time_weighted', 'custom') THEN
        RAISE EXCEPTION 'usage of % meters comes with rating (not in this version)', m.aggregation
            USING ERRCODE = '0A000';
    END IF;
    -- One query per kind over the meter's events in [from_ts, to_ts) by due_at.
    WITH e AS (
        SELECT ev.value, ev.occurred_at, ev.event_id, ev.op,
               CASE WHEN m.value_property IS NULL THEN ev.value
                    WHEN m.aggregation <> 'unique_count'
                    THEN (ev.properties ->> m.value_property)::numeric END AS v,
               CASE WHEN m.value_property IS NULL THEN ev.value::text
                    ELSE ev.properties ->> m.value_property END AS t
        FROM metering.events ev
        WHERE ev.customer_id = usage.customer_id AND ev.meter = usage.meter
          AND ev.due_at >= from_ts AND ev.due_at < to_ts
          AND (m.filter IS NULL OR ev.properties @> m.filter))
    SELECT CASE m.aggregation
             WHEN 'count' THEN (SELECT count(*) FROM e)
             WHEN 'sum' THEN (SELECT coalesce(sum(v), 0) FROM e)
             WHEN 'max' THEN (SELECT max(v) FROM e)
             WHEN 'min' THEN (SELECT min(v) FROM e)
             WHEN 'latest' THEN (SELECT v FROM e ORDER BY occurred_at DESC, event_id DESC LIMIT 1)
             WHEN 'unique_count' THEN (SELECT count(DISTINCT t) FROM e)
             WHEN 'counter' THEN
               -- the last set (or 0 at from_ts) plus the increments after it
               (SELECT coalesce(sum(o.value) FILTER (WHERE (o.occurred_at, o.event_id) >= (ls.at, ls.id)), 0)
                FROM e o, (SELECT s.occurred_at AS at, s.event_id AS id FROM e s WHERE s.op = 'set'
                           UNION ALL SELECT '-infinity', 0
                           ORDER BY 1 DESC, 2 DESC LIMIT 1) ls)
           END
    INTO result;
    RETURN result;
END
$$;
COMMENT ON FUNCTION metering.usage(text, text, timestamptz, timestamptz) IS
    'Quantity of a customer''s meter over [from_ts, to_ts) by due_at, aggregated per the meter''s kind '
    '(a counter starts at 0 at from_ts). NULL for max, min and latest when there are no events.';

------------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC but pure helpers; docs/privileges.md has the GRANT lines.
------------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA metering FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA metering FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA metering FROM PUBLIC;
GRANT EXECUTE ON FUNCTION metering.currency_exponent(text) TO PUBLIC;
