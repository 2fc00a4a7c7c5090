-- Custom meters: an aggregate expression over metering.events, checked when the
-- meter is created and stored as Postgres's own deparse of the checked tree.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
SET timezone = 'UTC';
SELECT metering.create_customer('c1');
SELECT metering.create_meter('gold_gb', 'custom',
    expression => 'sum((properties->>''gb'')::numeric) FILTER (WHERE properties->>''tier'' = ''gold'')');
SELECT metering.create_meter('spread', 'custom', expression => 'max(value) - min(value)');
SELECT metering.create_meter('users', 'custom', expression => 'count(DISTINCT properties->>''user'')');
SELECT code, expression FROM metering.meters ORDER BY code;
SELECT count(*) FROM metering.ingest_batch('[
  {"customer_id": "c1", "meter": "gold_gb", "value": 1, "occurred_at": "2025-11-02T00:00:00Z", "properties": {"gb": 2.5, "tier": "gold"}},
  {"customer_id": "c1", "meter": "gold_gb", "value": 1, "occurred_at": "2025-11-03T00:00:00Z", "properties": {"gb": 4, "tier": "silver"}},
  {"customer_id": "c1", "meter": "gold_gb", "value": 1, "occurred_at": "2025-11-04T00:00:00Z", "properties": {"gb": "1.25", "tier": "gold"}},
  {"customer_id": "c1", "meter": "spread", "value": 7, "occurred_at": "2025-11-02T00:00:00Z"},
  {"customer_id": "c1", "meter": "spread", "value": 19, "occurred_at": "2025-11-03T00:00:00Z"},
  {"customer_id": "c1", "meter": "users", "occurred_at": "2025-11-02T00:00:00Z", "properties": {"user": "ann"}},
  {"customer_id": "c1", "meter": "users", "occurred_at": "2025-11-03T00:00:00Z", "properties": {"user": "bob"}},
  {"customer_id": "c1", "meter": "users", "occurred_at": "2025-11-04T00:00:00Z", "properties": {"user": "ann"}}]');
-- gold only: 2.5 + 1.25 = 3.75; spread 19 - 7 = 12; distinct users 2
SELECT metering.usage('c1', 'gold_gb', '2025-11-01', '2025-12-01') AS gold_gb,
       metering.usage('c1', 'spread', '2025-11-01', '2025-12-01') AS spread,
       metering.usage('c1', 'users', '2025-11-01', '2025-12-01') AS users;

-- Every form a meter may use, over one set of four events per meter (values 3, 5, 0, 10):
-- jsonb subscripting, CASE, coalesce, nullif, IS DISTINCT FROM, = ANY, a row comparison,
-- greatest and least, an ordered-set aggregate, containment, an integer result, names
-- qualified with pg_catalog. Worked out by hand:
--   f_subscript  distinct users ann, bob, cy                                  3
--   f_case       gold 3 x 2 + silver 5 + no tier nullif(0, 0) -> 100 + gold 10 x 2   131
--   f_any        3 and 10 are in {3,10} and not silver                        2
--   f_row        (5, bob) and (10, cy) are greater than (3, ann)              2
--   f_extremes   max(4, 5, 4, 10) - min(3, 4, 0, 4)                           10
--   f_median     percentile_disc(0.5) of 0, 3, 5, 10                          3
--   f_qualified  (3 + 5 + 0 + 10) * 2                                         36
--   f_gold       count of tier gold (bigint, rated as numeric)                2
--   f_cast       sum of the text property n as numeric, absent in three       2
SELECT metering.create_meter('f_subscript', 'custom', expression => 'count(DISTINCT properties[''user''])'),
       metering.create_meter('f_case', 'custom', expression =>
           'sum(CASE WHEN properties->>''tier'' = ''gold'' THEN value * 2 ELSE coalesce(nullif(value, 0), 100) END)'),
       metering.create_meter('f_any', 'custom', expression =>
           'count(*) FILTER (WHERE value = ANY (''{3,10}'') AND properties->>''tier'' IS DISTINCT FROM ''silver'')'),
       metering.create_meter('f_row', 'custom', expression =>
           'count(*) FILTER (WHERE (value, properties->>''user'') > (3, ''ann''))'),
       metering.create_meter('f_extremes', 'custom', expression => 'max(greatest(value, 4)) - min(least(value, 4))'),
       metering.create_meter('f_median', 'custom', expression => 'percentile_disc(0.5) WITHIN GROUP (ORDER BY value)'),
       metering.create_meter('f_qualified', 'custom', expression =>
           'pg_catalog.sum(value) OPERATOR(pg_catalog.*) 2::pg_catalog.numeric'),
       metering.create_meter('f_gold', 'custom', expression => 'count(*) FILTER (WHERE properties @> ''{"tier": "gold"}'')'),
       metering.create_meter('f_cast', 'custom', expression => 'sum((properties->>''n'')::numeric)');
SELECT count(*) FROM metering.ingest_batch((
    SELECT jsonb_agg(e || jsonb_build_object('customer_id', 'c1', 'meter', m.code, 'occurred_at', '2025-11-05T00:00:00Z'))
    FROM metering.meters m, jsonb_array_elements('[
        {"value": 3, "properties": {"user": "ann", "tier": "gold"}},
        {"value": 5, "properties": {"user": "bob", "tier": "silver"}},
        {"value": 0, "properties": {"user": "ann"}},
        {"value": 10, "properties": {"user": "cy", "tier": "gold", "n": "2"}}]') e
    WHERE m.code LIKE 'f\_%'));
SELECT code, expression, metering.usage('c1', code, '2025-11-01', '2025-12-01') AS quantity
FROM metering.meters WHERE code LIKE 'f\_%' ORDER BY code;

-- Invoicing a custom meter: an interim invoice on Nov 3 bills the gold GB so far (2.5 at
-- 10 a GB: 25.00); the period's regular invoice shows the period's 3.75 and bills the
-- difference, 37.50 - 25.00 = 12.50 (the interim's share rated through its billing marks).
SELECT metering.create_plan('cm', 'USD', '1 month', 0),
       metering.add_charge('cm', 'gold_gb', '{"model": "per_unit", "unit_price": 10}') > 0 AS charged,
       metering.subscribe('c1', 'cm', '2025-11-01') > 0 AS subscribed;
SELECT metering.bill_now(subscription_id, '2025-11-03 12:00Z') > 0 AS interim FROM metering.subscriptions;
SELECT metering.close_periods('2025-12-02Z');
SELECT i.kind, it.kind AS item, it.meter, it.quantity, it.amount
FROM metering.invoices i JOIN metering.invoice_items it USING (invoice_id)
WHERE it.meter IS NOT NULL ORDER BY i.invoice_id, it.item_no;

-- A run-time error (a property that is not a number) names the meter
SELECT metering.ingest('c1', 'f_cast', 1, '2025-11-06Z', properties => '{"n": "two"}') > 0 AS ingested;
SELECT metering.usage('c1', 'f_cast', '2025-11-01', '2025-12-01');

-- Rejected expressions (MT021), and nothing reaches the stored text but the checked tree
SELECT metering.create_meter('m', 'custom', expression => 'sum(value');
SELECT metering.create_meter('m', 'custom', expression => 'value * 2');
SELECT metering.create_meter('m', 'custom', expression => 'sum(nothing)');
SELECT metering.create_meter('m', 'custom', expression => 'sum(value), count(*)');
SELECT metering.create_meter('m', 'custom', expression => 'sum(value) FROM metering.customers --');
SELECT metering.create_meter('m', 'custom', expression => 'sum(value) FROM metering.events WHERE true --');
SELECT metering.create_meter('m', 'custom', expression => 'sum(value); DROP TABLE metering.events; --');
SELECT metering.create_meter('m', 'custom', expression => '(SELECT count(*) FROM metering.customers)');
SELECT metering.create_meter('m', 'custom', expression => 'sum(extract(epoch FROM now() - occurred_at))');
SELECT metering.create_meter('m', 'custom', expression => 'avg(value)::float8');
SELECT metering.create_meter('m', 'custom', expression => 'string_agg(meter, '','')');
SELECT metering.create_meter('m', 'custom', expression => 'sum(length(pg_read_file(''/etc/passwd'')))');
SELECT metering.create_meter('m', 'custom', expression => 'count(*) OVER ()');
-- Inside an aggregate too: its transition function is not immutable
SELECT metering.create_meter('m', 'custom', expression => '(jsonb_object_agg(meter, value)->>''calls'')::numeric');
-- A stable cast and a stable operator (they depend on the session's time zone)
SELECT metering.create_meter('m', 'custom', expression => 'count(*) FILTER (WHERE (properties->>''at'')::timestamptz IS NULL)');
SELECT metering.create_meter('m', 'custom', expression => 'count(*) FILTER (WHERE occurred_at + interval ''1 day'' > due_at)');
-- Only the columns: no whole row, no system column; no XML
SELECT metering.create_meter('m', 'custom', expression => 'count(events)');
SELECT metering.create_meter('m', 'custom', expression => 'count(ctid)');
SELECT metering.create_meter('m', 'custom', expression => 'count(xmlparse(content ''<a/>''))');
SELECT metering.create_meter('m', 'custom');
SELECT metering.create_meter('m', 'sum', expression => 'sum(value)');
SELECT count(*) FROM metering.meters WHERE code = 'm';
