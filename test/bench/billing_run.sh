#!/usr/bin/env bash
# Figure 5 of make bench: the month-end billing run. close_periods of one monthly period
# for 10,000 subscriptions (4 time zones), 4 metered charges and 10 million events
# (Figure 4's data, the subscriptions starting with the month), on a database analyzed
# after its load and with no invoice yet:
#   5a  with the rollup worker running during the load (events committed in chunks of
#       BENCH_BR_CHUNK); the close includes whatever is left to roll up; both parts;
#   5b  without the worker: the close rolls up all the events inline, beside the
#       hand-written GROUP BY + CASE query of the same lines over a plain table;
#   5c  invoice_lines of the period once rolled up, beside the same hand-written query;
#   5d  current_usage of one customer;
#   and the size of the rolled-up state. Settings of a production server: shared_buffers
# 1 GB, work_mem 256 MB (the hand-written query does not spill). Environment:
#   BENCH_BR_EVENTS (10000000), BENCH_BR_SIDE (events / 10), BENCH_BR_CHUNK (500000),
#   BENCH_OUT (build/bench), BENCH_DESTDIR (as invoice_lines.sh)
set -euo pipefail
shopt -s inherit_errexit
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
EVENTS=${BENCH_BR_EVENTS:-10000000}
SIDE=${BENCH_BR_SIDE:-$((EVENTS / 10))}
CHUNK=${BENCH_BR_CHUNK:-500000}
OUT=${BENCH_OUT:-$ROOT/build/bench}
mkdir -p "$OUT"
log() { printf '%s\n' "$*" >&2; }

if [ -n "${BENCH_DESTDIR:-}" ]; then
    make -s -j2 -C "$ROOT" >/dev/null && make -s -C "$ROOT" install DESTDIR="$BENCH_DESTDIR" >/dev/null
    PGBIN=${PGBIN:-$BENCH_DESTDIR$(pg_config --bindir)}
elif [ -w "$(pg_config --pkglibdir)" ]; then
    make -s -j2 -C "$ROOT" >/dev/null && make -s -C "$ROOT" install >/dev/null
fi
export PGBIN=${PGBIN:-$(pg_config --bindir)}
# shellcheck source=../lib/cluster.sh
source "$ROOT/test/lib/cluster.sh"
cluster_start 'shared_buffers = 1GB' 'work_mem = 256MB' 'maintenance_work_mem = 1GB' 'max_wal_size = 8GB' \
    'min_wal_size = 1GB' 'checkpoint_timeout = 30min' "shared_preload_libraries = 'metering, pg_stat_statements'" \
    "metering.rollup_databases = 'bench_worker'" "metering.rollup_interval = '1s'" 'pg_stat_statements.track = all'
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
sql() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -At -d "$1" -c "$2"; }
setup() {  # db [psql -v settings...]
    local db=$1; shift
    "$PGBIN/createdb" "$db"
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" -v nevents="$EVENTS" -v nside="$SIDE" -v start_at_month=1 "$@" \
        -f "$HERE/invoice_lines_setup.sql" >/dev/null
}
timed() {  # db sql -> seconds; the result in $RESULT
    local t0
    t0=$(now_ns)
    RESULT=$(sql "$1" "$2")
    secs "$t0" "$(now_ns)"
}

# --- 5a: the worker rolls up during the load ---------------------------------------
log "figure 5a set-up: $EVENTS events in the month + $SIDE around it, committed every $CHUNK, the worker on"
t0=$(now_ns)
setup bench_worker -v chunk="$CHUNK" -v no_plain=1
load_w=$(secs "$t0" "$(now_ns)")
worker_s=$(sql bench_worker "SELECT round(sum(total_exec_time)::numeric / 1000, 2) FROM pg_stat_statements
                             WHERE query = 'SELECT metering.refresh_usage()' AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())")
worker_n=$(sql bench_worker "SELECT events_consumed FROM metering.rollup_state")
AS_OF=$(sql bench_worker "SELECT (month + interval '1 month 1 day') AT TIME ZONE 'UTC' FROM bench_il.params")
AT=$(sql bench_worker "SELECT (month + interval '14 days') AT TIME ZONE 'UTC' FROM bench_il.params")
close_w=$(timed bench_worker "SELECT metering.close_periods('$AS_OF')")
made_w=$RESULT
left_w=$(( $(sql bench_worker "SELECT events_consumed FROM metering.rollup_state") - worker_n ))
total_w=$(sql bench_worker "SELECT count(*) || ' invoices, ' || sum(total) || ' USD' FROM metering.invoices")

# --- 5b: no worker: the close rolls up everything inline ---------------------------
log "figure 5b set-up: the same events in one statement, no worker, and the plain table of the baseline"
setup bench_inline
close_n=$(timed bench_inline "SELECT metering.close_periods('$AS_OF')")
total_n=$(sql bench_inline "SELECT count(*) || ' invoices, ' || sum(total) || ' USD' FROM metering.invoices")
base_sql=$(sed "s/:'at'/'$AT'/g" "$HERE/invoice_lines_baseline.sql")
sql bench_inline "$base_sql" >/dev/null   # warm, as the close read the events just before
base_s=$(timed bench_inline "SELECT count(*), sum(amount) FROM ($base_sql) l")
base_lines=$RESULT

# --- 5c, 5d: reads of the rolled-up usage -------------------------------------------
ours_sql="SELECT count(*), sum(amount) FROM metering.invoice_lines WHERE period_start <= '$AT' AND '$AT' < period_end"
sql bench_inline "$ours_sql" >/dev/null
ours_s=$(timed bench_inline "$ours_sql")
ours_lines=$RESULT
cu=()
for i in $(seq 20); do cu+=("$(timed bench_inline "SELECT count(*) FROM metering.current_usage WHERE customer_id = 'cust-1'")"); done
cu_ms=$(printf '%s\n' "${cu[@]}" | sort -g | awk '{ a[NR] = $1 } END { printf "%.1f", 1000 * a[int((NR + 1) / 2)] }')
size=$(sql bench_inline "SELECT count(*) || ' groups, ' || pg_total_relation_size('metering.usage_rollups') / count(*) || ' bytes a group, '
                         || round(pg_total_relation_size('metering.usage_rollups') / 1048576.0, 1) || ' MB'
                         FROM metering.usage_rollups")

ratio() { awk -v b="$1" -v o="$2" 'BEGIN { printf "%.2f", b / o }'; }
{
    echo "figure 5: the billing run of one monthly period, 10,000 subscriptions, 4 meters, $EVENTS events (+ $SIDE around)"
    echo "  settings: shared_buffers 1GB, work_mem 256MB; analyzed after the load; no invoice before"
    echo "  5a worker on during the load (load ${load_w} s): the worker rolled up $worker_n events in ${worker_s} s;"
    echo "     close_periods ${close_w} s (rolled up the $left_w events left, made $made_w; $total_w)   target < 5 s"
    echo "  5b no worker: close_periods ${close_n} s (rolls up all inline; $total_n);"
    echo "     hand-written GROUP BY + CASE over the plain table ${base_s} s: ratio $(ratio "$base_s" "$close_n")   target >= 1"
    echo "  5c invoice_lines of the period ${ours_s} s ($ours_lines) vs hand-written ${base_s} s ($base_lines): $(ratio "$base_s" "$ours_s")x   target >= 5"
    echo "  5d current_usage of one customer: ${cu_ms} ms (median of 20)   target < 5 ms"
    echo "  rolled-up state: $size"
} | tee "$OUT/figure5.txt"
