#!/usr/bin/env bash
# Reads of the event store over many months: 2,000 customers on a monthly plan with three
# charges (count, sum, time_weighted), 480,000 events over 23 months, a rollup step, then
# 2,000 events not rolled up in the open month (partitioned_reads/setup.sql). The queries
# of partitioned_reads/queries.sql (the rollup step's tail scan, one customer's meter over
# a month, current_usage of one customer planned and prepared, invoice_lines of a period,
# a rollup step and close_periods) run as loaded, then again after VACUUM; psql's \timing
# and EXPLAIN ANALYZE go to OUT (a directory, default a temporary one, printed).
# Environment: PGBIN (a server with metering installed; any version). The dates assume
# a clock in December 2026 or later (the events must not be in the future).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PGBIN=${PGBIN:-$(pg_config --bindir)}
export PGBIN
OUT=${OUT:-$(mktemp -d /tmp/metering-reads.XXXXXX)}
# shellcheck source=lib.sh
source "$ROOT/test/bench/lib.sh"
cluster_start 'shared_buffers = 1GB' 'max_wal_size = 4GB'
"$PGBIN/psql" -X -q -d postgres -c "CREATE DATABASE reads"
"$PGBIN/psql" -X -q -d reads -f "$HERE/partitioned_reads/setup.sql" >"$OUT/setup.log" 2>&1
"$PGBIN/psql" -X -d reads -f "$HERE/partitioned_reads/queries.sql" >"$OUT/as_loaded.log" 2>&1
"$PGBIN/psql" -X -q -d reads -c "VACUUM"
"$PGBIN/psql" -X -d reads -f "$HERE/partitioned_reads/queries.sql" >"$OUT/vacuumed.log" 2>&1
cluster_stop
for f in as_loaded vacuumed; do
    printf '%s:' "$f"
    grep -E '^Time:' "$OUT/$f.log" | awk '{ printf " %s", $2 }'
    echo
done
echo "plans and times in $OUT"
