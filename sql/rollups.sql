-- Usage rollups (issue 10): refresh_usage consumes each committed event once; reads merge
-- the rolled-up state with the events not rolled up yet; close_periods bills from them;
-- late usage is priced at the margin without free units on every pricing model, worked
-- by hand below; a subscription that fails to bill is recorded in billing_errors.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
SET timezone = 'UTC';
SELECT metering.create_customer('acme');
SELECT metering.create_meter('calls', 'count'), metering.create_meter('gb', 'sum'),
       metering.create_meter('seats', 'sum'), metering.create_meter('jobs', 'count'),
       metering.create_meter('revenue', 'sum'), metering.create_meter('tokens', 'sum');
SELECT metering.create_plan('pro', 'USD', '1 month', 0);
SELECT metering.add_charge('pro', 'calls', '{"model": "per_unit", "unit_price": 2, "free_units": 10}'),
       metering.add_charge('pro', 'gb', '{"model": "graduated", "free_units": 5, "tiers": [{"up_to": 10, "unit_price": 1}, {"up_to": null, "unit_price": "0.5"}]}'),
       metering.add_charge('pro', 'seats', '{"model": "volume", "tiers": [{"up_to": 10, "unit_price": 1}, {"up_to": null, "unit_price": "0.8"}]}'),
       metering.add_charge('pro', 'jobs', '{"model": "package", "package_size": 10, "package_price": 5}'),
       metering.add_charge('pro', 'revenue', '{"model": "percentage", "rate": 10}'),
       metering.add_charge('pro', 'tokens', '{"model": "graduated", "tiers": [{"up_to": 100, "unit_price": 0}, {"up_to": null, "unit_price": "0.01"}]}');
SELECT metering.subscribe('acme', 'pro', '2025-01-01') AS sub \gset

-- January usage.
SELECT count(metering.ingest('acme', 'calls', 1, '2025-01-02'::timestamptz + i * interval '1 hour')) FROM generate_series(1, 12) i;
SELECT metering.ingest('acme', 'gb', 8, '2025-01-03') > 0, metering.ingest('acme', 'seats', 9, '2025-01-03') > 0,
       metering.ingest('acme', 'revenue', 200, '2025-01-03') > 0, metering.ingest('acme', 'tokens', 150, '2025-01-03') > 0;
SELECT count(metering.ingest('acme', 'jobs', 1, '2025-01-04'::timestamptz + i * interval '1 hour')) FROM generate_series(1, 12) i;

-- refresh_usage rolls up what committed since the last step, once (make test also runs
-- this file with the rollup worker on: the counts are the steps' total, whoever ran them).
SELECT metering.refresh_usage() >= 0 AS stepped, events_consumed FROM metering.rollup_state;
SELECT metering.refresh_usage() AS consumed_again;
SELECT meter, period_start, events, metering._state_quantity(state) AS quantity
FROM metering.usage_rollups ORDER BY meter;
-- Reads are the same before and after a step: a new event is read from the tail.
SELECT metering.ingest('acme', 'calls', 1, '2025-01-20') > 0;
SELECT meter, quantity FROM metering.invoice_lines WHERE period_start = '2025-01-01' AND kind = 'usage' ORDER BY meter;
SELECT metering.refresh_usage() >= 0 AS stepped, events_consumed FROM metering.rollup_state;
SELECT meter, quantity FROM metering.invoice_lines WHERE period_start = '2025-01-01' AND kind = 'usage' ORDER BY meter;
-- a rolled-up quantity equals the per-line rule over the events
SELECT count(*) AS lines, count(*) FILTER (WHERE l.quantity = coalesce(metering._quantity(m, 'acme', l.period_start, l.period_end), 0)) AS equal
FROM metering.invoice_lines l JOIN metering.meters m ON m.code = l.meter WHERE l.kind = 'usage';

-- January closes. calls 13: (13 - 10) x 2 = 6.00; gb 8: 5 free, 3 x 1 = 3.00; seats 9 in the
-- first volume tier: 9.00; jobs 12: 2 packages = 10.00; revenue 10 % of 200 = 20.00;
-- tokens 150: 100 free, 50 x 0.01 = 0.50. Total 48.50.
SELECT metering.close_periods('2025-02-01 01:00');
SELECT kind, meter, quantity, amount FROM metering.invoice_items ORDER BY item_no;

-- Late January usage arrives in February. Each late line is priced at the margin without
-- free units: rate'(billed + late) - rate'(billed).
--   calls +3:   per_unit, 3 x 2                                       =  6.00
--   gb +4:      graduated, 8 -> 12: 2 x 1 (to 10) + 2 x 0.5            =  3.00
--   seats +3:   volume, 9 -> 12 moves to the second tier: 9.60 - 9.00  =  0.60
--   jobs +3:    package, 12 -> 15 is still 2 packages: 10 - 10         =  0.00
--   revenue +50: 10 %                                                 =  5.00
--   tokens +10: graduated with a free first tier, 150 -> 160: 0.60 - 0.50 = 0.10
-- (until 0.1.0 the late jobs were a whole package, 5.00, and the late tokens were free.)
SELECT count(metering.ingest('acme', 'calls', 1, '2025-01-31 12:00'::timestamptz + i * interval '1 minute')) FROM generate_series(1, 3) i;
SELECT metering.ingest('acme', 'gb', 4, '2025-01-31') > 0, metering.ingest('acme', 'seats', 3, '2025-01-31') > 0,
       metering.ingest('acme', 'revenue', 50, '2025-01-31') > 0, metering.ingest('acme', 'tokens', 10, '2025-01-31') > 0;
SELECT count(metering.ingest('acme', 'jobs', 1, '2025-01-31 12:00'::timestamptz + i * interval '1 minute')) FROM generate_series(1, 3) i;
-- the step flags the groups of the invoiced period as late
SELECT metering.refresh_usage() >= 0 AS stepped, events_consumed FROM metering.rollup_state;
SELECT period_start, meter FROM metering.late_groups ORDER BY meter;
SELECT metering.close_periods('2025-03-01 01:00');
SELECT it.kind, it.meter, it.period_start::date AS usage_period, it.quantity, it.free_units, it.amount
FROM metering.invoice_items it JOIN metering.invoices i USING (invoice_id)
WHERE i.period_start = '2025-02-01' ORDER BY it.item_no;
SELECT count(*) AS late_flags_left FROM metering.late_groups;
-- Six more late jobs: 15 -> 21 is a third package, 15.00 - 10.00 = 5.00 (billed on March's).
SELECT count(metering.ingest('acme', 'jobs', 1, '2025-01-31 13:00'::timestamptz + i * interval '1 minute')) FROM generate_series(1, 6) i;
SELECT metering.close_periods('2025-04-01 01:00');
SELECT it.kind, it.meter, it.quantity, it.amount FROM metering.invoice_items it JOIN metering.invoices i USING (invoice_id)
WHERE i.period_start = '2025-03-01' AND it.kind = 'late_usage';
-- what January billed in all: its quantities and the sum of its lines
SELECT ch.meter, b.quantity, b.amount FROM metering.billed_lines b JOIN metering.charges ch USING (charge_id)
WHERE b.period_start = '2025-01-01' ORDER BY 1;

-- One subscription that fails does not stop the others: a custom meter divides by a value,
-- and one event of 'fragile' is 0. Its error is recorded; 'sturdy' is billed.
SELECT metering.create_customer('fragile'), metering.create_customer('sturdy');
SELECT metering.create_meter('ratio', 'custom', expression => 'sum(100 / value)');
SELECT metering.create_plan('custom', 'USD', '1 month', 1);
SELECT metering.add_charge('custom', 'ratio', '{"model": "per_unit", "unit_price": 1}');
SELECT metering.subscribe('fragile', 'custom', '2025-01-01') AS fragile, metering.subscribe('sturdy', 'custom', '2025-01-01') AS sturdy \gset
SELECT metering.ingest('fragile', 'ratio', 0, '2025-01-05') AS zero, metering.ingest('sturdy', 'ratio', 50, '2025-01-05') AS fifty \gset
SELECT metering.close_periods('2025-02-01 01:00') AS made;
SELECT customer_id, sqlstate, message, attempts FROM metering.billing_errors;
SELECT customer_id, total FROM metering.invoices WHERE subscription_id IN (:fragile, :sturdy) ORDER BY 1;
-- the next run retries it: still failing, one more attempt; corrected, it is billed
SELECT metering.close_periods('2025-02-01 01:00') AS made;
SELECT customer_id, attempts FROM metering.billing_errors;
SELECT metering.delete_unbilled_event('fragile', :zero);
SELECT metering.close_periods('2025-02-01 01:00') AS made;
SELECT count(*) AS errors FROM metering.billing_errors;
SELECT customer_id, total FROM metering.invoices WHERE subscription_id IN (:fragile, :sturdy) ORDER BY 1;

-- A close bills 2,500 subscriptions a statement. 5,001 are due (3 statements); one fails
-- in the second: only that chunk is billed one at a time (2 chunks + its 2,499 others
-- succeed: 2,501 calls), the rest in order (invoice numbers follow subscription ids).
SELECT count(metering.create_customer('bulk-' || i)) FROM generate_series(1, 5001) i;
SELECT count(metering.subscribe('bulk-' || i, 'custom', '2025-01-01')) FROM generate_series(1, 5001) i;
SELECT metering.ingest('bulk-3000', 'ratio', 0, '2025-01-05') AS bulk_zero \gset
BEGIN;
SET LOCAL track_functions = 'all';
SELECT metering.close_periods('2025-02-01 01:00') AS made;
SELECT pg_stat_get_xact_function_calls('metering._issue_invoices'::regproc) AS issue_calls;
COMMIT;
SELECT customer_id, sqlstate, message FROM metering.billing_errors;
SELECT count(*) AS out_of_order FROM (
    SELECT invoice_id < lag(invoice_id) OVER (ORDER BY subscription_id) AS before_previous
    FROM metering.invoices WHERE customer_id LIKE 'bulk-%') x
WHERE before_previous;
SELECT metering.delete_unbilled_event('bulk-3000', :bulk_zero);
SELECT metering.close_periods('2025-02-01 01:00') AS made;
SELECT count(*) AS errors FROM metering.billing_errors;

-- The operators' view: nothing waits once a step ran; the last close made one invoice;
-- no invoice waits for review; no billing error is left.
SELECT metering.refresh_usage() >= 0 AS stepped;
SELECT events_waiting, oldest_waiting_since, last_rollup_at IS NOT NULL AS rolled_up, events_rolled_up,
       last_close_at IS NOT NULL AS closed, last_close_invoices, invoices_pending_review, billing_errors,
       rollup_worker IN ('off', 'on for contrib_regression, tap') AS worker_shown
FROM metering.status;
-- an event waits until a step after its commit (here: read inside its own transaction)
BEGIN;
SELECT metering.ingest('sturdy', 'ratio', 1, '2025-03-01') > 0 AS ingested;
SELECT events_waiting, oldest_waiting_since IS NOT NULL AS since FROM metering.status;
COMMIT;

-- A step reads the events it consumes, not the history: a late event is appended to its
-- old month's last page, even when VACUUM left free space before it (here: a rolled-back
-- load), and the step reads that month from the first block the late event's transaction
-- wrote (metering.event_writes) without reading the month's other pages.
SELECT metering.create_customer('archive');
SELECT metering.subscribe('archive', 'pro', '2024-01-01') AS archive_sub \gset
SELECT count(metering.ingest('archive', 'calls', 1, '2024-02-01'::timestamptz + i * interval '1 minute'))
FROM generate_series(1, 3000) i;
BEGIN;
SELECT count(metering.ingest('archive', 'calls', 1, '2024-02-10'::timestamptz + i * interval '1 second'))
FROM generate_series(1, 1000) i;
ROLLBACK;
SELECT count(metering.ingest('archive', 'calls', 1, '2024-02-11'::timestamptz + i * interval '1 second'))
FROM generate_series(1, 10) i;
SELECT metering.refresh_usage() >= 0 AS stepped;
VACUUM ANALYZE metering.events_2024_02;
SELECT pg_relation_size('metering.events_2024_02') / current_setting('block_size')::int AS pages_before \gset
-- the rolled-back load's pages, emptied by VACUUM, lie before the last one
SELECT :pages_before - count(DISTINCT (ctid::text::point)[0]) > 5 AS empty_pages_before_the_last
FROM metering.events_2024_02;
SELECT metering.ingest('archive', 'calls', 1, '2024-02-20') > 0 AS late_event;
SELECT (e.ctid::text::point)[0] >= :pages_before - 1 AS appended_to_the_last_page,
       w.first_block = (e.ctid::text::point)[0] AS written_there
FROM metering.events_2024_02 e, metering.event_writes w
WHERE e.occurred_at = '2024-02-20' AND w.txid = e.txid;
SELECT count(*) AS events_on_that_page FROM metering.events_2024_02
WHERE (ctid::text::point)[0] = (SELECT max((ctid::text::point)[0]) FROM metering.events_2024_02) \gset
-- (a new session: a backend's table counters include its earlier transactions' until
-- they are flushed, at most once a second)
\c
BEGIN;
SELECT metering.refresh_usage() <= 1 AS stepped;
-- (twice: the step counts its new events, then reads them; each time the last page)
SELECT seq_tup_read + idx_tup_fetch <= 2 * :events_on_that_page AS read_only_the_last_page,
       :events_on_that_page < 100 AS one_page
FROM pg_stat_xact_user_tables WHERE relid = 'metering.events_2024_02'::regclass;
COMMIT;
SELECT quantity FROM metering.invoice_lines WHERE subscription_id = :archive_sub AND period_start = '2024-02-01 00:00 UTC'
  AND meter = 'calls';

-- The write log (metering.event_writes): each statement that stores events records its
-- transaction and the first block it wrote in each month; the step and the reads start
-- there. A partition rewritten since (CLUSTER, VACUUM FULL) moves events below that
-- block: its new file makes the month read whole. (In one transaction: the rollup
-- worker does not consume it before the end, and the tail includes it.)
BEGIN;
SELECT metering.ingest('archive', 'calls', 1, '2024-02-21') > 0 AS late_event;
SELECT first_block >= :pages_before - 1 AS from_the_last_page FROM metering.event_writes WHERE txid = txid_current();
SELECT events_waiting FROM metering.status;
CLUSTER metering.events_2024_02 USING events_2024_02_pkey;
SELECT (ctid::text::point)[0] < :pages_before - 1 AS moved_below FROM metering.events_2024_02
WHERE occurred_at = '2024-02-21';
SELECT events_waiting AS still_found FROM metering.status;
SELECT sum(events) AS still_rolled_up FROM metering._rollup_groups(metering._rolled_up(), NULL);
ROLLBACK;
-- Every path that inserts into a month is logged by the month's metering_writes index,
-- the row trigger path (COPY or INSERT into metering.events) too: the block the executor
-- put the first row in, once per subtransaction and month. A savepoint rolled back takes
-- its record along: the next row records again, and is found.
BEGIN;
INSERT INTO metering.events (customer_id, meter, value, occurred_at, due_at)
VALUES ('archive', 'calls', 1, '2024-02-22', '2024-02-22'), ('archive', 'calls', 1, '2024-02-23', '2024-02-23');
SELECT count(*) AS records,
       min(first_block) = (SELECT min((ctid::text::point)[0]) FROM metering.events_2024_02 WHERE txid = txid_current())
           AS from_its_block
FROM metering.event_writes WHERE txid = txid_current();
ROLLBACK;
BEGIN;
SAVEPOINT s;
INSERT INTO metering.events (customer_id, meter, value, occurred_at, due_at) VALUES ('archive', 'calls', 1, '2024-02-22', '2024-02-22');
ROLLBACK TO SAVEPOINT s;
INSERT INTO metering.events (customer_id, meter, value, occurred_at, due_at) VALUES ('archive', 'calls', 1, '2024-02-23', '2024-02-23');
SELECT count(*) AS records,
       min(first_block) = (SELECT min((ctid::text::point)[0]) FROM metering.events_2024_02 WHERE txid = txid_current())
           AS from_its_block
FROM metering.event_writes WHERE txid = txid_current();
SELECT events_waiting FROM metering.status;
ROLLBACK;

-- Many new events are read in one pass past the hashed subscriptions; the settings that
-- say so last the step's call, not the caller's transaction. (The step counts the events
-- through the txid indexes, its own transaction's included, which it then leaves.)
BEGIN;
SET LOCAL enable_nestloop = on;
SET LOCAL enable_sort = on;
SELECT count(*) AS ingested FROM metering.ingest_batch((
    SELECT jsonb_agg(jsonb_build_object('customer_id', 'archive', 'meter', 'calls', 'occurred_at', '2024-03-10T00:00:00Z'))
    FROM generate_series(1, 10000)));
SELECT metering.refresh_usage() >= 0 AS stepped;
SHOW enable_nestloop;
SHOW enable_sort;
-- The tail (these 10,000: read in one pass) groups as the same events of every customer
-- named (read as a few customers' events are, by the primary key): no group differs.
CREATE TEMP VIEW every_group AS
SELECT customer_id, meter, period_start, subscription_id, metering._state_quantity(state) AS quantity, events
FROM metering._rollup_groups(metering._rolled_up(), NULL);
CREATE TEMP VIEW every_customers_groups AS
SELECT customer_id, meter, period_start, subscription_id, metering._state_quantity(state) AS quantity, events
FROM metering._rollup_groups(metering._rolled_up(), NULL, ARRAY(SELECT customer_id FROM metering.customers));
SELECT count(*) AS groups, sum(events) AS events FROM every_group;
(TABLE every_group EXCEPT ALL TABLE every_customers_groups)
UNION ALL (TABLE every_customers_groups EXCEPT ALL TABLE every_group);
ROLLBACK;
