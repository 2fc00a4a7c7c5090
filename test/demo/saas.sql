-- A small SaaS: two customers, an API, an LLM, seats. Run by `make demo`.
\pset footer off
SET timezone = 'UTC';
CREATE EXTENSION metering;

SELECT metering.create_customer('acme', 'Acme Corp', 'ap@acme.test', 'America/New_York');
SELECT metering.create_customer('globex', 'Globex', timezone => 'Europe/Berlin', auto_issue => false);
SELECT metering.create_meter('api_calls', 'count');
SELECT metering.create_meter('llm_tokens', 'sum', 'tokens');
SELECT metering.create_meter('active_users', 'unique_count', 'user');
SELECT metering.create_meter('seats', 'counter');
SELECT metering.create_plan('pro', 'USD', '1 month', 49);
SELECT metering.add_charge('pro', 'api_calls', '{"model": "per_unit", "unit_price": "0.02", "free_units": 1}');
SELECT metering.add_charge('pro', 'llm_tokens', '{"model": "graduated", "tiers": [{"up_to": 1000, "unit_price": "0.01"}, {"up_to": null, "unit_price": "0.005"}]}');
SELECT metering.add_charge('pro', 'seats', '{"model": "per_unit", "unit_price": 12}');
SELECT metering.subscribe('acme', 'pro', '2025-11-01 00:00 America/New_York');
SELECT metering.subscribe('globex', 'pro', '2025-11-10 00:00 Europe/Berlin', '2025-11-01 00:00 Europe/Berlin');

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
COPY metering.events_import (customer_id, meter, value, occurred_at, idempotency_key) FROM STDIN WITH (FORMAT csv);
globex,api_calls,1,2025-11-10 12:00:00+01,g-3
globex,api_calls,1,2025-11-10 12:00:01+01,g-4
globex,api_calls,1,2025-11-04 08:00:00+00,g-1
\.

\echo '== seats: a counter, changed out of order'
SELECT metering.counter_set('acme', 'seats', 10, '2025-11-01 09:00-05') AS seats_after_set;
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

\echo '== November invoice lines (globex started Nov 10: its base fee is prorated)'
SELECT customer_id, kind, meter, quantity, free_units, billable_quantity, amount, currency
FROM metering.invoice_lines WHERE period_start < '2025-11-15' ORDER BY customer_id, kind, meter NULLS FIRST;

\echo '== close November: acme is issued, globex waits for review'
SELECT metering.close_periods('2025-12-02') > 0 AS closed;
SELECT invoice_id, customer_id, period_start, kind, status, total, currency
FROM metering.invoices WHERE period_start < '2025-11-15' ORDER BY invoice_id;
\echo '== a late event for November goes on December as late usage; issued invoices never change'
SELECT metering.ingest('acme', 'api_calls', 1, '2025-11-29 12:00-05', 'req-late') > 0 AS late_event;
SELECT metering.close_periods('2026-01-02') > 0 AS closed;
SELECT i.period_start::date AS invoice, it.kind, it.meter, it.period_start::date AS usage_of, it.quantity, it.amount
FROM metering.invoices i JOIN metering.invoice_items it USING (invoice_id)
WHERE i.customer_id = 'acme' AND i.period_start >= '2025-12-01' AND i.period_start < '2026-01-01'
ORDER BY it.item_no;
