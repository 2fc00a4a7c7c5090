-- Custom meters run no code of a user's choosing with the owner's rights (issue 9,
-- attack 2). A finance/ops role with exactly the grants of docs/privileges.md tries
-- every way to get its own code into a custom meter, or into the query that rates
-- one. Its code would raise a NOTICE, write a row to its table and make the role a
-- superuser: no NOTICE appears below, the table keeps only the control row, the
-- role stays what it was, and no meter is added.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
SET timezone = 'UTC';

-- Errors as one line each: SQLSTATE, message and detail.
CREATE FUNCTION pg_temp.error_of(statement text, OUT code text, OUT message text, OUT detail text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    code := 'none';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
END
$$;

-- finance/ops with the GRANT lines of docs/privileges.md, owning a schema of its own
CREATE ROLE regress_metering_finance;
GRANT USAGE ON SCHEMA metering TO regress_metering_finance;
GRANT EXECUTE ON FUNCTION
    metering.create_customer(text, text, text, text, boolean),
    metering.create_meter(text, text, text, jsonb, boolean, text),
    metering.create_plan(text, text, interval, numeric),
    metering.usage(text, text, timestamptz, timestamptz)
TO regress_metering_finance;
GRANT SELECT ON ALL TABLES IN SCHEMA metering TO regress_metering_finance;
CREATE SCHEMA regress_evil AUTHORIZATION regress_metering_finance;

-- two meters made by the owner, rated below after the role has shadowed their names
SELECT metering.create_customer('s1'),
       metering.create_meter('calls', 'custom', expression => 'sum(value)'),
       metering.create_meter('plus', 'custom', expression => 'sum(value + 1)');
SELECT count(*) FROM metering.ingest_batch('[
  {"customer_id": "s1", "meter": "calls", "value": 2, "occurred_at": "2025-11-02T00:00:00Z"},
  {"customer_id": "s1", "meter": "calls", "value": 3, "occurred_at": "2025-11-03T00:00:00Z"},
  {"customer_id": "s1", "meter": "plus", "value": 2, "occurred_at": "2025-11-02T00:00:00Z"},
  {"customer_id": "s1", "meter": "plus", "value": 3, "occurred_at": "2025-11-03T00:00:00Z"}]');

SET ROLE regress_metering_finance;
-- The role's code: every call says so, leaves a row, and tries ALTER ROLE ... SUPERUSER
-- (which succeeds only with the owner's rights). Its own search_path is pinned, so
-- that the operator below does not call itself.
CREATE TABLE regress_evil.ran (what text, as_role name);
CREATE FUNCTION regress_evil.payload(what text) RETURNS void LANGUAGE plpgsql
    SET search_path = pg_catalog AS $$
BEGIN
    RAISE NOTICE 'user code ran: % as %', what, current_user;
    INSERT INTO regress_evil.ran VALUES (what, current_user);
    BEGIN
        EXECUTE 'ALTER ROLE regress_metering_finance SUPERUSER';
    EXCEPTION WHEN insufficient_privilege THEN NULL;
    END;
END
$$;
CREATE FUNCTION regress_evil.step(state numeric, v numeric) RETURNS numeric LANGUAGE plpgsql
    SET search_path = pg_catalog AS $$
BEGIN
    PERFORM regress_evil.payload('aggregate step');
    RETURN coalesce(state, 0) + v;
END
$$;
CREATE FUNCTION regress_evil.double(v numeric) RETURNS numeric IMMUTABLE LANGUAGE plpgsql
    SET search_path = pg_catalog AS $$
BEGIN
    PERFORM regress_evil.payload('function');
    RETURN v * 2;
END
$$;
CREATE FUNCTION regress_evil.plus(a numeric, b numeric) RETURNS numeric IMMUTABLE LANGUAGE plpgsql
    SET search_path = pg_catalog AS $$
BEGIN
    PERFORM regress_evil.payload('operator');
    RETURN a + b;
END
$$;
CREATE FUNCTION regress_evil.positive(v numeric) RETURNS boolean IMMUTABLE LANGUAGE plpgsql
    SET search_path = pg_catalog AS $$
BEGIN
    PERFORM regress_evil.payload('domain check');
    RETURN v > 0;
END
$$;
-- the attack as reported: an aggregate in pg_temp whose transition function is the role's
CREATE AGGREGATE pg_temp.evil(numeric) (SFUNC = regress_evil.step, STYPE = numeric);
-- the same in its own schema, and built-in names shadowed there
CREATE AGGREGATE regress_evil.total(numeric) (SFUNC = regress_evil.step, STYPE = numeric);
CREATE AGGREGATE regress_evil.sum(numeric) (SFUNC = regress_evil.step, STYPE = numeric);
CREATE AGGREGATE pg_temp.sum(numeric) (SFUNC = regress_evil.step, STYPE = numeric);
CREATE OPERATOR regress_evil.+ (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = regress_evil.plus);
CREATE OPERATOR regress_evil.<< (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = regress_evil.plus);
CREATE DOMAIN regress_evil.checked AS numeric CHECK (regress_evil.positive(VALUE));
CREATE COLLATION regress_evil.c FROM "C";

-- Control: in plain SQL, with its schema before pg_catalog, the role's + and sum win.
SET search_path = regress_evil, pg_catalog;
SELECT sum(v + 1) AS control FROM (VALUES (1::numeric)) x(v);
SELECT what, as_role FROM regress_evil.ran;
RESET search_path;

-- 1. Functions, aggregates and operators that are not built into pg_catalog (42501)
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'pg_temp.evil(value)')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'regress_evil.total(value)')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'sum(regress_evil.double(value))')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'regress_evil.sum(value)')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'pg_temp.sum(value)')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'sum(value OPERATOR(regress_evil.+) 1)')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'sum(value ORDER BY value USING OPERATOR(regress_evil.<<))')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'count(*) FILTER (WHERE meter COLLATE regress_evil.c = ''a'')')$$);

-- 2. Casts through the role's domain (its CHECK is the role's code). The second would
-- run the CHECK while Postgres merely parses the text (array input checks each
-- element): the name is refused before parsing.
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'sum(value::regress_evil.checked)')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'count(*) FILTER (WHERE ''{1}''::regress_evil.checked[] IS NOT NULL)')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'sum(CAST(value AS regress_evil.checked))')$$);

-- 3. The caller's search_path does not reach the checker: names resolve in pg_catalog
-- alone. Unqualified, the role's objects are not found; the built-in ones are used.
SET search_path = regress_evil, pg_temp, pg_catalog;
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'sum(double(value))')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'total(value)')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'sum(value::checked)')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('shadowed', 'custom', expression => 'sum(value + 1)')$$);
RESET search_path;

-- 4. Built-in but not immutable: volatile, stable, or writing (MT021)
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'sum(random()::numeric)')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'count(pg_sleep(0))')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'count(nextval(''metering.events_event_id_seq''))')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'count(pg_catalog.set_config(''search_path'', ''regress_evil'', false))')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'sum(length(pg_read_file(''/etc/passwd'')))')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'count(lo_import(''/etc/passwd''))')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'count(txid_current())')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'count(current_setting(''is_superuser''))')$$);
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'count(CURRENT_USER)')$$);

-- 5. Rating: meters made before the role shadowed sum and + in pg_temp and in its
-- schema, and the one it made under that search_path, rated with its schema first in
-- search_path: the built-ins run (2 + 3 = 5, 3 + 4 = 7, 3 + 4 = 7), none of its code.
RESET ROLE;
SELECT count(*) FROM metering.ingest_batch('[
  {"customer_id": "s1", "meter": "shadowed", "value": 2, "occurred_at": "2025-11-02T00:00:00Z"},
  {"customer_id": "s1", "meter": "shadowed", "value": 3, "occurred_at": "2025-11-03T00:00:00Z"}]');
SET ROLE regress_metering_finance;
SET search_path = regress_evil, pg_temp, pg_catalog;
SELECT metering.usage('s1', 'calls', '2025-11-01', '2025-12-01') AS calls,
       metering.usage('s1', 'plus', '2025-11-01', '2025-12-01') AS plus,
       metering.usage('s1', 'shadowed', '2025-11-01', '2025-12-01') AS shadowed;
RESET search_path;

-- 6. _custom_quantity (PUBLIC: the views call it through _quantity) checks whatever
-- text it is given, and reads events with its caller's rights.
SELECT * FROM pg_temp.error_of($$SELECT metering._custom_quantity('calls', 'pg_temp.evil(value)', 's1', '2025-11-01', '2025-12-01', NULL)$$);
SELECT * FROM pg_temp.error_of($$SELECT metering._custom_quantity('calls', 'sum(value) FROM metering.events, pg_temp.evil(1) --', 's1', '2025-11-01', '2025-12-01', NULL)$$);
SELECT metering._custom_quantity('calls', 'sum(value)', 's1', '2025-11-01', '2025-12-01', NULL) AS calls_read_as_finance;
RESET ROLE;
CREATE ROLE regress_metering_outsider;
GRANT USAGE ON SCHEMA metering TO regress_metering_outsider;
SET ROLE regress_metering_outsider;
SELECT * FROM pg_temp.error_of($$SELECT metering._custom_quantity('calls', 'sum(value)', 's1', '2025-11-01', '2025-12-01', NULL)$$);
RESET ROLE;

-- 7. Only what initdb made: a function a superuser put into pg_catalog later is not built in
CREATE FUNCTION pg_catalog.regress_metering_twice(numeric) RETURNS numeric IMMUTABLE LANGUAGE sql
    AS 'SELECT $1 * 2';
SET ROLE regress_metering_finance;
SELECT * FROM pg_temp.error_of($$SELECT metering.create_meter('x', 'custom', expression => 'sum(regress_metering_twice(value))')$$);
RESET ROLE;
DROP FUNCTION pg_catalog.regress_metering_twice(numeric);

-- 8. An expression stored before 0.2.0 checked it (as 0.1.0 accepted it) is refused
-- when rated, with a hint; its code does not run.
INSERT INTO metering.meters (code, aggregation, allow_negative, expression)
VALUES ('old_temp', 'custom', false, 'pg_temp.evil(value)'),
       ('old_schema', 'custom', false, 'sum(regress_evil.double(value))');
SELECT count(*) FROM metering.ingest_batch('[
  {"customer_id": "s1", "meter": "old_temp", "value": 2, "occurred_at": "2025-11-02T00:00:00Z"},
  {"customer_id": "s1", "meter": "old_schema", "value": 2, "occurred_at": "2025-11-02T00:00:00Z"}]');
SET ROLE regress_metering_finance;
SELECT metering.usage('s1', 'old_temp', '2025-11-01', '2025-12-01');
SELECT * FROM pg_temp.error_of($$SELECT metering.usage('s1', 'old_schema', '2025-11-01', '2025-12-01')$$);

-- Nothing of the role's ran but the control; it is no superuser; no meter was added.
SELECT what, as_role FROM regress_evil.ran;
RESET ROLE;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_metering_finance';
SELECT code, expression FROM metering.meters ORDER BY code;
SELECT count(*) AS events FROM metering.events;

DROP OWNED BY regress_metering_finance, regress_metering_outsider;
DROP ROLE regress_metering_finance, regress_metering_outsider;
