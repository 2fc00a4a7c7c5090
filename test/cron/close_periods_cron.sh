#!/usr/bin/env bash
# close_periods scheduled with pg_cron (Debian package postgresql-15-cron, which
# make test installs): the job from the README runs, succeeds and issues the
# invoices of the periods that ended. pg_cron 1.4 schedules by the minute, so
# this waits up to about a minute.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
[ -f "$(pg_config --pkglibdir)/pg_cron.so" ] || { echo "pg_cron is not installed (test/lib/deps.sh installs it)"; exit 1; }

# shellcheck source=../lib/cluster.sh
source "$ROOT/test/lib/cluster.sh"
cluster_start "shared_preload_libraries = 'pg_cron'" "cron.database_name = 'postgres'" \
    "cron.use_background_workers = on" "max_worker_processes = 16"
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -At -d postgres)

"${PSQL[@]}" >/dev/null <<'SQL'
CREATE EXTENSION pg_cron;
CREATE EXTENSION metering;
SELECT metering.create_customer('c1');
SELECT metering.create_meter('calls', 'count');
SELECT metering.create_plan('pro', 'USD', '1 month', 5);
SELECT metering.add_charge('pro', 'calls', '{"model": "per_unit", "unit_price": 1}');
SELECT metering.subscribe('c1', 'pro', '2025-01-01 00:00 UTC');
SELECT metering.ingest('c1', 'calls', 1, '2025-01-10');
-- the line the README shows (every minute here, hourly in the README)
SELECT cron.schedule('metering-close-periods', '* * * * *', 'SELECT metering.close_periods()');
SQL

for _ in $(seq 75); do
    runs=$("${PSQL[@]}" -c "SELECT count(*) FROM cron.job_run_details WHERE status IN ('succeeded', 'failed')")
    [ "$runs" -gt 0 ] && break
    sleep 1
done
status=$("${PSQL[@]}" -c "SELECT status || ': ' || coalesce(return_message, '') FROM cron.job_run_details ORDER BY runid LIMIT 1")
invoices=$("${PSQL[@]}" -c "SELECT count(*) FROM metering.invoices WHERE kind = 'regular'")
january=$("${PSQL[@]}" -c "SELECT total FROM metering.invoices WHERE period_start = '2025-01-01 00:00 UTC'")
echo "pg_cron: first run ${status:-none}; $invoices regular invoices; January total $january"
case "$status" in succeeded*) ;; *) echo "pg_cron: FAILED: the job did not succeed"; exit 1 ;; esac
[ "$invoices" -gt 0 ] && [ "$january" = "6.00" ] || { echo "pg_cron: FAILED: invoices not issued as expected"; exit 1; }
echo "pg_cron: ok"
