-- The reads of test/bench/partitioned_reads.sh, timed by psql.
\timing on
-- 1. the rollup step's read of new events (what _rollup_groups scans: txid, BRIN)
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON)
SELECT count(*) FROM metering.events ev
WHERE ev.txid >= txid_snapshot_xmin(metering._rolled_up()) AND NOT txid_visible_in_snapshot(ev.txid, metering._rolled_up());
-- 2. one customer's meter over a period (_quantity's read: the primary key)
PREPARE q(text, text, timestamptz, timestamptz) AS
SELECT count(*), sum(value) FROM metering.events ev WHERE ev.customer_id = $1 AND ev.meter = $2 AND ev.due_at >= $3 AND ev.due_at < $4;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) EXECUTE q('c7', 'calls', '2026-11-01', '2026-12-01');
-- 3. current_usage of one customer (every column: count(*) would let the planner drop the usage join)
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT * FROM metering.current_usage WHERE customer_id = 'c7';
SELECT * FROM metering.current_usage WHERE customer_id = 'c7';
SELECT * FROM metering.current_usage WHERE customer_id = 'c7';
PREPARE cu(text) AS SELECT * FROM metering.current_usage WHERE customer_id = $1;
EXECUTE cu('c7');
EXECUTE cu('c8');
EXECUTE cu('c9');
EXECUTE cu('c10');
EXECUTE cu('c11');
EXECUTE cu('c12');
EXECUTE cu('c13');
-- 4. invoice lines of one period, every customer
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) SELECT count(*), sum(amount) FROM metering.invoice_lines WHERE period_start = '2026-11-01';
SELECT count(*), sum(amount) FROM metering.invoice_lines WHERE period_start = '2026-11-01';
-- 5. the rollup step of the tail, then the close of 23 months for 2,000 subscriptions
SELECT metering.refresh_usage();
SELECT metering.close_periods('2026-12-02');
