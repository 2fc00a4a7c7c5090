-- Benchmark set-up (not timed): the extension, 10,000 customers, two meters,
-- the baseline tables and the pre-generated batches of Figure 2.
-- psql variables: nbatches (batches of 1,000 events).
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE EXTENSION metering;

INSERT INTO metering.customers (customer_id, name)
SELECT 'cust-' || i, 'Customer ' || i FROM generate_series(1, 10000) i;
SELECT metering.create_meter('api_calls', 'count');
SELECT metering.create_meter('tokens', 'sum');

CREATE SCHEMA bench;

-- Baseline: exactly the columns of metering.events (types, COLLATE "C",
-- identity, defaults, NOT NULL, CHECK) and its two unique keys, the primary key and
-- the idempotency key (metering keeps the second in metering.idempotency_keys); one
-- table, no partitions, no trigger.
CREATE TABLE bench.plain_events (
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
    txid            bigint NOT NULL DEFAULT txid_current(),
    PRIMARY KEY (customer_id, meter, due_at, event_id)
);
CREATE UNIQUE INDEX plain_events_idempotency_key ON bench.plain_events (customer_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Stricter baseline: the same columns, only the idempotency unique index.
CREATE TABLE bench.plain_events_1idx (
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
    txid            bigint NOT NULL DEFAULT txid_current()
);
CREATE UNIQUE INDEX plain_events_1idx_idempotency_key ON bench.plain_events_1idx (customer_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- due_at's default is 0.2.0's 'infinity' (a row without it lands in events_undated),
-- none before: the baselines take the version's.
DO $$
DECLARE
    due_default text := (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a
                         ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                         WHERE d.adrelid = 'metering.events'::regclass AND a.attname = 'due_at');
BEGIN
    IF due_default IS NOT NULL THEN
        EXECUTE format('ALTER TABLE bench.plain_events ALTER COLUMN due_at SET DEFAULT %s', due_default);
        EXECUTE format('ALTER TABLE bench.plain_events_1idx ALTER COLUMN due_at SET DEFAULT %s', due_default);
    END IF;
END
$$;

-- Guard: the baselines' columns must match metering.events exactly.
CREATE FUNCTION bench.columns(rel regclass) RETURNS TABLE(attnum int2, def text)
LANGUAGE sql STABLE AS $$
    SELECT a.attnum, concat_ws(' ', a.attname, format_type(a.atttypid, a.atttypmod),
                               'collate ' || co.collname, CASE WHEN a.attnotnull THEN 'not null' END,
                               'identity ' || nullif(a.attidentity::text, ''),
                               'default ' || pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute a
    LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 0
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
$$;
DO $$
BEGIN
    IF EXISTS (SELECT * FROM bench.columns('metering.events')
               EXCEPT SELECT * FROM bench.columns('bench.plain_events'))
       OR EXISTS (SELECT * FROM bench.columns('bench.plain_events')
                  EXCEPT SELECT * FROM bench.columns('metering.events'))
       OR EXISTS (SELECT * FROM bench.columns('metering.events')
                  EXCEPT SELECT * FROM bench.columns('bench.plain_events_1idx'))
       OR EXISTS (SELECT * FROM bench.columns('bench.plain_events_1idx')
                  EXCEPT SELECT * FROM bench.columns('metering.events')) THEN
        RAISE EXCEPTION 'baseline tables differ from metering.events';
    END IF;
    -- metering's unique keys: each month's primary key and (customer_id, idempotency_key)
    -- in metering.idempotency_keys; the baseline has both on its one table.
    IF (SELECT count(*) FROM pg_index WHERE indrelid = 'bench.plain_events'::regclass AND indisunique) <> 2
       OR coalesce(to_regclass('metering.idempotency_keys_pkey'), to_regclass('metering.events_idempotency_key')) IS NULL THEN
        RAISE EXCEPTION 'bench.plain_events must have the unique keys of metering''s event store';
    END IF;
END
$$;

-- Figure 2 input: :nbatches arrays of 1,000 events with unique idempotency
-- keys, half api_calls (value 1) and half tokens (value 1..4000), occurred in
-- the last 20 days, properties {"region": ...}.
CREATE TABLE bench.batches (id int PRIMARY KEY, doc jsonb NOT NULL);
SELECT setseed(0.42);
INSERT INTO bench.batches (id, doc)
SELECT b, jsonb_agg(jsonb_build_object(
           'customer_id', 'cust-' || (1 + floor(random() * 10000))::int,
           'meter', CASE WHEN i % 2 = 0 THEN 'api_calls' ELSE 'tokens' END,
           'value', CASE WHEN i % 2 = 0 THEN 1 ELSE 1 + floor(random() * 4000)::int END,
           'occurred_at', to_char((now() - random() * interval '20 days') AT TIME ZONE 'UTC',
                                  'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           'idempotency_key', 'f2-' || b || '-' || i,
           'properties', jsonb_build_object('region', (ARRAY['eu', 'us', 'ap'])[1 + i % 3]))
       ORDER BY i)
FROM generate_series(1, :nbatches) b, generate_series(1, 1000) i
GROUP BY b;

-- The same events as rows, in the column order of the CSV files.
CREATE VIEW bench.batch_rows AS
SELECT e ->> 'customer_id' AS customer_id, e ->> 'meter' AS meter, (e ->> 'value')::numeric AS value,
       (e ->> 'occurred_at')::timestamptz AS occurred_at, (e ->> 'occurred_at')::timestamptz AS due_at,
       e ->> 'idempotency_key' AS idempotency_key, e -> 'properties' AS properties
FROM bench.batches b, jsonb_array_elements(b.doc) WITH ORDINALITY AS t(e, n)
ORDER BY b.id, t.n;
-- Not metering.events: every figure truncates it first, which leaves it "never
-- analyzed" as on a fresh install.
-- Every customer subscribed (a monthly plan charging both meters, from two months
-- ago): the rollup worker then rolls every event up into its customer's period, as in
-- production, while the ingest figures run; Figure 2r times it.
SELECT metering.create_plan('pro', 'USD', '1 month', 49);
SELECT metering.add_charge('pro', 'api_calls', '{"model": "per_unit", "unit_price": "0.001"}'),
       metering.add_charge('pro', 'tokens', '{"model": "per_unit", "unit_price": "0.00001"}');
SELECT count(metering.subscribe('cust-' || i, 'pro', date_trunc('month', now()) - interval '2 months'))
FROM generate_series(1, 10000) i;
ANALYZE metering.customers, metering.meters, metering.subscriptions, metering.plans, bench.batches;
