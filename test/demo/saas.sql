-- A small SaaS: two customers, an API, an LLM, seats. Run by `make demo`.
\pset footer off
CREATE EXTENSION metering;

SELECT metering.create_customer('acme', 'Acme Corp', 'ap@acme.test', 'America/New_York');
SELECT metering.create_customer('globex', 'Globex', timezone => 'Europe/Berlin', auto_issue => false);
SELECT metering.create_meter('api_calls', 'count');
SELECT metering.create_meter('llm_tokens', 'sum', 'tokens');
SELECT metering.create_meter('active_users', 'unique_count', 'user');
SELECT metering.create_meter('seats', 'counter');
SELECT metering.create_plan('pro', 'USD', '1 month', 49);

\echo '== the application records usage inside its own transactions'
BEGIN;
-- ... the application's own work here ...
SELECT metering.ingest('acme', 'api_calls', 1, '2025-11-03 09:00-05', 'req-1001') AS event_id;
COMMIT;
\echo '== a retry of the same request (same key, same payload) stores nothing new'
SELECT metering.ingest('acme', 'api_calls', 1, '2025-11-03 09:00-05', 'req-1001') AS same_event_id;
\echo '== work that rolls back leaves no usage behind'
BEGIN;
SELECT metering.ingest('acme', 'api_calls', 1, '2025-11-03 09:01-05', 'req-1002') AS rolled_back_id;
ROLLBACK;

\echo '== a log shipper sends a batch; one element repeats an earlier key'
SELECT * FROM metering.ingest_batch('[
  {"customer_id": "acme",   "meter": "llm_tokens", "occurred_at": "2025-11-04T10:00:00Z", "idempotency_key": "llm-1", "properties": {"tokens": 1200, "user": "ann"}},
  {"customer_id": "acme",   "meter": "llm_tokens", "occurred_at": "2025-11-05T10:00:00Z", "idempotency_key": "llm-2", "properties": {"tokens": 800,  "user": "bob"}},
  {"customer_id": "acme",   "meter": "active_users", "occurred_at": "2025-11-04T10:00:00Z", "properties": {"user": "ann"}},
  {"customer_id": "acme",   "meter": "active_users", "occurred_at": "2025-11-05T10:00:00Z", "properties": {"user": "bob"}},
  {"customer_id": "acme",   "meter": "active_users", "occurred_at": "2025-11-06T10:00:00Z", "properties": {"user": "ann"}},
  {"customer_id": "globex", "meter": "api_calls",  "occurred_at": "2025-11-04T08:00:00Z", "idempotency_key": "g-1"},
  {"customer_id": "globex", "meter": "api_calls",  "occurred_at": "2025-11-04T08:00:01Z", "idempotency_key": "g-2"},
  {"customer_id": "acme",   "meter": "llm_tokens", "occurred_at": "2025-11-04T10:00:00Z", "idempotency_key": "llm-1", "properties": {"tokens": 1200, "user": "ann"}}
]');

\echo '== a bulk load through COPY keeps the same rules'
COPY metering.events (customer_id, meter, value, occurred_at, idempotency_key) FROM STDIN WITH (FORMAT csv);
globex,api_calls,1,2025-11-10 12:00:00+01,g-3
globex,api_calls,1,2025-11-10 12:00:01+01,g-4
globex,api_calls,1,2025-11-04 08:00:00+00,g-1
\.

\echo '== seats: a counter, changed out of order'
SELECT metering.counter_set('acme', 'seats', 10, '2025-11-01Z') AS seats_after_set;
SELECT metering.counter_increment('acme', 'seats', 3, '2025-11-15Z') AS seats_after_hiring;
SELECT metering.counter_increment('acme', 'seats', -2, '2025-11-10Z') AS late_decrement_at_nov_10;
SELECT metering.counter_value('acme', 'seats', '2025-11-30Z') AS seats_at_month_end;

\echo '== a bad request gets a clear error (and stores nothing)'
\set ON_ERROR_STOP 0
SELECT metering.ingest('acme', 'api_calls', 1, '2025-11-03 09:00-05', 'req-1001', '{"retry": true}');
SELECT metering.ingest('initech', 'api_calls');
\set ON_ERROR_STOP 1

\echo '== usage per customer for November 2025'
SELECT c.customer_id, m.code AS meter, m.aggregation,
       metering.usage(c.customer_id, m.code, '2025-11-01Z', '2025-12-01Z') AS november
FROM metering.customers c CROSS JOIN metering.meters m
ORDER BY 1, 2;
