-- metering: usage of a meter over any range
-- A module of the install script: the Makefile concatenates src/sql/modules/*.sql,
-- in the order of SQL_MODULES, into metering--<version>.sql.

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
