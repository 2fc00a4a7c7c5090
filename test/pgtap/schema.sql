-- pgTAP: the shape of the metering install (SPEC section 3): schema,
-- tables, public functions with their exact signatures, return types,
-- volatility, SECURITY DEFINER, keys, indexes, triggers and comments.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS metering;
SELECT plan(66);

-- Schema and tables ----------------------------------------------------------
SELECT has_schema('metering', 'schema metering exists');
SELECT has_table('metering', 'customers', 'table metering.customers exists');
SELECT has_table('metering', 'meters', 'table metering.meters exists');
SELECT has_table('metering', 'plans', 'table metering.plans exists');
SELECT has_table('metering', 'events', 'table metering.events exists');

-- Public functions of SPEC section 3 present in 0.1.0, exact argument types ---
SELECT has_function('metering', 'create_customer', ARRAY['text', 'text', 'text', 'text', 'boolean'],
    'create_customer(customer_id, name, email, timezone, auto_issue)');
SELECT has_function('metering', 'create_meter', ARRAY['text', 'text', 'text', 'jsonb', 'boolean', 'text'],
    'create_meter(code, aggregation, value_property, filter, allow_negative, expression)');
SELECT has_function('metering', 'create_plan', ARRAY['text', 'text', 'interval', 'numeric'],
    'create_plan(code, currency, billing_interval, base_fee)');
SELECT has_function('metering', 'ingest',
    ARRAY['text', 'text', 'numeric', 'timestamp with time zone', 'text', 'jsonb', 'timestamp with time zone'],
    'ingest(customer_id, meter, value, occurred_at, idempotency_key, properties, due_at)');
SELECT has_function('metering', 'ingest_batch', ARRAY['jsonb'], 'ingest_batch(events jsonb)');
SELECT has_function('metering', 'counter_increment', ARRAY['text', 'text', 'numeric', 'timestamp with time zone', 'text'],
    'counter_increment(customer_id, counter, by, at, idempotency_key)');
SELECT has_function('metering', 'counter_set', ARRAY['text', 'text', 'numeric', 'timestamp with time zone', 'text'],
    'counter_set(customer_id, counter, value, at, idempotency_key)');
SELECT has_function('metering', 'counter_value', ARRAY['text', 'text', 'timestamp with time zone'],
    'counter_value(customer_id, counter, at)');
SELECT has_function('metering', 'usage', ARRAY['text', 'text', 'timestamp with time zone', 'timestamp with time zone'],
    'usage(customer_id, meter, from_ts, to_ts)');
SELECT has_function('metering', 'currency_exponent', ARRAY['text'], 'currency_exponent(currency)');

-- Argument names and defaults of the fixed signatures
SELECT is(pg_get_function_arguments('metering.ingest(text,text,numeric,timestamptz,text,jsonb,timestamptz)'::regprocedure),
    'customer_id text, meter text, value numeric DEFAULT 1, occurred_at timestamp with time zone DEFAULT now(), '
    'idempotency_key text DEFAULT NULL::text, properties jsonb DEFAULT ''{}''::jsonb, '
    'due_at timestamp with time zone DEFAULT NULL::timestamp with time zone',
    'ingest argument names and defaults follow the spec');
SELECT is(pg_get_function_arguments('metering.counter_increment(text,text,numeric,timestamptz,text)'::regprocedure),
    'customer_id text, counter text, by numeric DEFAULT 1, at timestamp with time zone DEFAULT now(), '
    'idempotency_key text DEFAULT NULL::text',
    'counter_increment argument names and defaults follow the spec');

-- Return types
SELECT function_returns('metering', 'create_customer', ARRAY['text', 'text', 'text', 'text', 'boolean'], 'text',
    'create_customer returns text');
SELECT function_returns('metering', 'create_meter', ARRAY['text', 'text', 'text', 'jsonb', 'boolean', 'text'], 'text',
    'create_meter returns text');
SELECT function_returns('metering', 'create_plan', ARRAY['text', 'text', 'interval', 'numeric'], 'text',
    'create_plan returns text');
SELECT function_returns('metering', 'ingest',
    ARRAY['text', 'text', 'numeric', 'timestamp with time zone', 'text', 'jsonb', 'timestamp with time zone'], 'bigint',
    'ingest returns bigint');
SELECT function_returns('metering', 'ingest_batch', ARRAY['jsonb'], 'setof record',
    'ingest_batch returns a set (TABLE)');
SELECT is(pg_get_function_result('metering.ingest_batch(jsonb)'::regprocedure),
    'TABLE(ordinal integer, event_id bigint, status text)',
    'ingest_batch returns TABLE(ordinal int, event_id bigint, status text)');
SELECT function_returns('metering', 'counter_increment', ARRAY['text', 'text', 'numeric', 'timestamp with time zone', 'text'],
    'numeric', 'counter_increment returns numeric');
SELECT function_returns('metering', 'counter_set', ARRAY['text', 'text', 'numeric', 'timestamp with time zone', 'text'],
    'numeric', 'counter_set returns numeric');
SELECT function_returns('metering', 'counter_value', ARRAY['text', 'text', 'timestamp with time zone'], 'numeric',
    'counter_value returns numeric');
SELECT function_returns('metering', 'usage', ARRAY['text', 'text', 'timestamp with time zone', 'timestamp with time zone'], 'numeric',
    'usage returns numeric');
SELECT function_returns('metering', 'currency_exponent', ARRAY['text'], 'integer',
    'currency_exponent returns int');

-- Volatility
SELECT volatility_is('metering', 'ingest',
    ARRAY['text', 'text', 'numeric', 'timestamp with time zone', 'text', 'jsonb', 'timestamp with time zone'], 'volatile',
    'ingest is VOLATILE');
SELECT volatility_is('metering', 'ingest_batch', ARRAY['jsonb'], 'volatile', 'ingest_batch is VOLATILE');
SELECT volatility_is('metering', 'counter_increment', ARRAY['text', 'text', 'numeric', 'timestamp with time zone', 'text'],
    'volatile', 'counter_increment is VOLATILE');
SELECT volatility_is('metering', 'counter_set', ARRAY['text', 'text', 'numeric', 'timestamp with time zone', 'text'],
    'volatile', 'counter_set is VOLATILE');
SELECT volatility_is('metering', 'counter_value', ARRAY['text', 'text', 'timestamp with time zone'], 'stable',
    'counter_value is STABLE');
SELECT volatility_is('metering', 'usage', ARRAY['text', 'text', 'timestamp with time zone', 'timestamp with time zone'], 'stable',
    'usage is STABLE');
SELECT volatility_is('metering', 'currency_exponent', ARRAY['text'], 'immutable',
    'currency_exponent is IMMUTABLE');

-- SECURITY DEFINER on the ingest and counter entry points
SELECT is_definer('metering', 'ingest',
    ARRAY['text', 'text', 'numeric', 'timestamp with time zone', 'text', 'jsonb', 'timestamp with time zone'],
    'ingest is SECURITY DEFINER');
SELECT is_definer('metering', 'ingest_batch', ARRAY['jsonb'], 'ingest_batch is SECURITY DEFINER');
SELECT is_definer('metering', 'counter_increment', ARRAY['text', 'text', 'numeric', 'timestamp with time zone', 'text'],
    'counter_increment is SECURITY DEFINER');
SELECT is_definer('metering', 'counter_set', ARRAY['text', 'text', 'numeric', 'timestamp with time zone', 'text'],
    'counter_set is SECURITY DEFINER');
SELECT is_definer('metering', 'counter_value', ARRAY['text', 'text', 'timestamp with time zone'],
    'counter_value is SECURITY DEFINER');
SELECT isnt_definer('metering', 'currency_exponent', ARRAY['text'],
    'currency_exponent (a pure helper) is not SECURITY DEFINER');

-- Every SECURITY DEFINER function pins its search_path (no hijack by the caller)
SELECT is((SELECT count(*) FROM pg_proc p
           WHERE p.pronamespace = 'metering'::regnamespace AND p.prosecdef
             AND NOT coalesce(p.proconfig::text[] && ARRAY['search_path=pg_catalog, pg_temp'], false)),
    0::bigint, 'every SECURITY DEFINER function sets search_path = pg_catalog, pg_temp');

-- Keys and indexes
SELECT is(pg_get_partkeydef('metering.events'::regclass), 'RANGE (due_at)',
    'events is partitioned by due_at (one partition per month)');
SELECT is(metering.create_event_partitions('2001-01-15Z', '2001-01-16Z'), 1, 'a month''s partition is made');
SELECT has_pk('metering', 'events_2001_01', 'a month''s partition has a primary key');
SELECT col_is_pk('metering', 'events_2001_01', ARRAY['customer_id', 'meter', 'due_at', 'event_id'],
    'a month''s primary key is (customer_id, meter, due_at, event_id)');
SELECT col_is_pk('metering', 'customers', ARRAY['customer_id'], 'customers primary key is customer_id');
SELECT col_is_pk('metering', 'meters', ARRAY['code'], 'meters primary key is code');
SELECT col_is_pk('metering', 'plans', ARRAY['code'], 'plans primary key is code');
SELECT col_is_pk('metering', 'idempotency_keys', ARRAY['customer_id', 'idempotency_key'],
    'idempotency_keys primary key is (customer_id, idempotency_key): dedup for all time');
SELECT col_type_is('metering', 'events', 'event_id', 'bigint', 'event ids made by the extension are bigint');
SELECT col_type_is('metering', 'events', 'customer_id', 'text', 'customer ids given by the application are text');
SELECT col_type_is('metering', 'events', 'occurred_at', 'timestamp with time zone', 'occurred_at is timestamptz');
SELECT col_type_is('metering', 'events', 'due_at', 'timestamp with time zone', 'due_at is timestamptz');
SELECT col_not_null('metering', 'events', 'due_at', 'due_at is NOT NULL (defaults to occurred_at)');

-- Triggers
SELECT has_trigger('metering', 'events', 'events_validate', 'events has trigger events_validate');
SELECT trigger_is('metering', 'events', 'events_validate', 'metering', '_event_before_insert',
    'events_validate runs metering._event_before_insert()');
SELECT ok((SELECT tgtype::int & 2 = 2 AND tgtype::int & 1 = 1 AND tgtype::int & 4 = 4
           FROM pg_trigger WHERE tgrelid = 'metering.events'::regclass AND tgname = 'events_validate'),
    'events_validate is BEFORE INSERT FOR EACH ROW (so COPY takes the same checks)');
SELECT has_trigger('metering', 'events', 'events_append_only', 'events has trigger events_append_only');
SELECT trigger_is('metering', 'events', 'events_append_only', 'metering', '_refuse_change',
    'events_append_only runs metering._refuse_change()');

-- Comments
SELECT is((SELECT count(*) FROM pg_proc p
           WHERE pronamespace = 'metering'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL),
    0::bigint, 'every function in schema metering has a COMMENT');
SELECT is((SELECT count(*) FROM pg_class c
           WHERE relnamespace = 'metering'::regnamespace AND relkind IN ('r', 'p', 'v', 'm')
             AND obj_description(c.oid, 'pg_class') IS NULL),
    0::bigint, 'every table in schema metering has a COMMENT');
SELECT set_eq($$SELECT relname::text FROM pg_class
                WHERE relnamespace = 'metering'::regnamespace AND relkind IN ('r', 'p')
                  AND NOT (relispartition AND relname ~ '^events_[0-9]')$$,
    ARRAY['customers', 'meters', 'plans', 'events', 'charges', 'subscriptions', 'invoices',
          'invoice_items', 'billed_lines', 'late_groups', 'billing_failures', 'usage_rollups',
          'rollup_state', 'events_import', 'events_undated', 'idempotency_keys', 'retained_values', 'event_writes'],
    'schema metering holds exactly its tables (and the months of events)');
SELECT is((SELECT a.amname::text FROM pg_class c JOIN pg_am a ON a.oid = c.relam
           WHERE c.oid = 'metering.events_import'::regclass),
    'metering_import', 'events_import is a load target with the access method metering_import');

-- Privileges: nothing for PUBLIC except the pure helper
SELECT ok(NOT has_function_privilege('public', 'metering.ingest(text,text,numeric,timestamptz,text,jsonb,timestamptz)', 'EXECUTE'),
    'PUBLIC cannot execute ingest');
SELECT ok(has_function_privilege('public', 'metering.currency_exponent(text)', 'EXECUTE'),
    'PUBLIC can execute currency_exponent');

SELECT * FROM finish();
ROLLBACK;
