-- metering: privileges
-- A module of the install script: the Makefile concatenates src/sql/modules/*.sql,
-- in the order of SQL_MODULES, into metering--<version>.sql.

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
    metering._quantity(metering.meters, text, timestamptz, timestamptz),
    metering._custom_quantity(text, text, text, timestamptz, timestamptz, jsonb),
    metering._line_quantity(integer, numeric, text, timestamptz, bigint, text),
    metering._line_state(integer, numeric, text, timestamptz, bigint, text),
    metering._merged_quantity(bytea),
    metering._period_of(timestamptz, interval, text, timestamptz, timestamptz, timestamptz),
    metering._rolled_up(),
    metering._retention_horizon(),
    metering._billed_quantity(bigint, timestamptz, bigint)
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
