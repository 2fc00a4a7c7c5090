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
SELECT metering.create_meter('m', 'custom');
SELECT metering.create_meter('m', 'sum', expression => 'sum(value)');
SELECT count(*) FROM metering.meters WHERE code = 'm';
