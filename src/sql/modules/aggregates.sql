-- metering: the rating aggregates and their state type
-- A module of the install script: the Makefile concatenates src/sql/modules/*.sql,
-- in the order of SQL_MODULES, into metering--<version>.sql.

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
