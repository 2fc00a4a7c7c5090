-- metering: counters
-- A module of the install script: the Makefile concatenates src/sql/modules/*.sql,
-- in the order of SQL_MODULES, into metering--<version>.sql.

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
