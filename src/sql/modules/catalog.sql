-- metering: the catalog: customers, meters, plans and the functions that create them
-- A module of the install script: the Makefile concatenates src/sql/modules/*.sql,
-- in the order of SQL_MODULES, into metering--<version>.sql.

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
    'Internal: checks a custom meter''s aggregate expression over metering.events (built-in immutable '
    'objects of pg_catalog only); returns its canonical text.';
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
