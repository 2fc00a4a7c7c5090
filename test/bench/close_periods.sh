#!/usr/bin/env bash
# Figure 5: close_periods for CP_SUBS subscriptions (10,000) over CP_EVENTS events
# (10,000,000) of one monthly period, 4 meters, on its own throwaway cluster.
# Reports the time of close_periods and the share spent marking billed usage
# (the INSERT INTO metering.billed_events statements, from pg_stat_statements),
# beside the time of the same period's invoice_lines. Run by make bench, or alone.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SUBS=${CP_SUBS:-10000}
EVENTS=${CP_EVENTS:-10000000}
PGBIN=${PGBIN:-$(pg_config --bindir)}

# shellcheck source=../lib/cluster.sh
source "$ROOT/test/lib/cluster.sh"
cluster_start 'shared_buffers = 2GB' 'max_wal_size = 8GB' 'min_wal_size = 1GB' 'checkpoint_timeout = 30min' \
    "shared_preload_libraries = 'pg_stat_statements'" 'pg_stat_statements.track = all' \
    'work_mem = 64MB' 'maintenance_work_mem = 1GB'
trap cluster_stop EXIT
sql() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -At -d postgres "$@"; }
now_ms() { date +%s%3N; }

t0=$(now_ms)
sql -v subs="$SUBS" -v nevents="$EVENTS" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION pg_stat_statements;
CREATE EXTENSION metering;
SELECT count(metering.create_customer('cust-' || i)) FROM generate_series(1, :subs) i;
SELECT metering.create_meter('api_calls', 'count'), metering.create_meter('tokens', 'sum'),
       metering.create_meter('storage_gb', 'max'), metering.create_meter('active_users', 'unique_count', 'user');
SELECT metering.create_plan('pro', 'USD', '1 month', 49);
SELECT metering.add_charge('pro', 'api_calls', '{"model": "graduated", "free_units": 100, "tiers": [{"up_to": 5000, "unit_price": "0.002"}, {"up_to": null, "unit_price": "0.0015"}]}'),
       metering.add_charge('pro', 'tokens', '{"model": "volume", "tiers": [{"up_to": 1000000, "unit_price": "0.00001"}, {"up_to": null, "unit_price": "0.000008", "flat_price": 2}]}'),
       metering.add_charge('pro', 'storage_gb', '{"model": "per_unit", "unit_price": "0.125", "free_units": 5}'),
       metering.add_charge('pro', 'active_users', '{"model": "package", "package_size": 10, "package_price": 15}');
SELECT count(metering.subscribe('cust-' || i, 'pro', '2025-10-01 00:00 UTC')) FROM generate_series(1, :subs) i;
-- October 2025, in arrival order, through the COPY trigger (every rule applies).
INSERT INTO metering.events (customer_id, meter, value, occurred_at, due_at, properties)
SELECT 'cust-' || (1 + (i::bigint * 7919) % :subs), (ARRAY['api_calls', 'tokens', 'storage_gb', 'active_users'])[1 + i % 4],
       CASE i % 4 WHEN 1 THEN 1 + i % 4000 WHEN 2 THEN 1 + i % 500 ELSE 1 END,
       t, t,
       CASE i % 4 WHEN 3 THEN jsonb_build_object('user', 'u' || i % 17) ELSE '{}' END
FROM generate_series(1, :nevents) i,
     LATERAL (SELECT '2025-10-01 00:00 UTC'::timestamptz + (i - 0.5) / :nevents * interval '31 days' AS t) x;
VACUUM ANALYZE metering.events;
SQL
log_load=$(( $(now_ms) - t0 ))

t0=$(now_ms)
lines=$(sql -c "SELECT count(*), sum(amount) FROM metering.invoice_lines WHERE period_start = '2025-10-01 00:00 UTC'")
il_ms=$(( $(now_ms) - t0 ))
sql -c "SELECT pg_stat_statements_reset()" >/dev/null
t0=$(now_ms)
made=$(sql -c "SELECT metering.close_periods('2025-11-01 02:00 UTC')")
cp_ms=$(( $(now_ms) - t0 ))
mark_ms=$(sql -c "SELECT round(sum(total_exec_time)) FROM pg_stat_statements WHERE query LIKE 'INSERT INTO metering.billed_events%'")
totals=$(sql -c "SELECT count(*), sum(total) FROM metering.invoices")
billed=$(sql -c "SELECT count(*) FROM metering.billed_events")
echo "figure 5: close_periods, $SUBS subscriptions, $EVENTS events (load ${log_load} ms)"
echo "  invoice_lines of the period: ${il_ms} ms (lines, amount: $lines)"
echo "  close_periods: ${cp_ms} ms, $made invoices (count, total: $totals), $billed events marked"
echo "  marking (INSERT INTO billed_events): ${mark_ms} ms = $(awk -v a="$mark_ms" -v b="$cp_ms" 'BEGIN { printf "%.0f", 100 * a / b }') % of close_periods"
