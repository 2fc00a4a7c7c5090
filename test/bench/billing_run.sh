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
# shellcheck source=lib.sh
source "$ROOT/test/bench/lib.sh"
cluster_start 'shared_buffers = 1GB' 'work_mem = 256MB' 'maintenance_work_mem = 1GB' 'max_wal_size = 8GB' \
    'min_wal_size = 1GB' 'checkpoint_timeout = 30min' "shared_preload_libraries = 'metering, pg_stat_statements'" \
    "metering.rollup_databases = 'bench_worker'" "metering.rollup_interval = '1s'" 'pg_stat_statements.track = all'
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
sql() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -At -d "$1" -c "$2"; }
createdb() {  # db: created, with pg_stat_statements
    "$PGBIN/createdb" "$1"
    "$PGBIN/psql" -X -q -d "$1" -c 'CREATE EXTENSION pg_stat_statements'
}
setup() {  # db [psql -v settings...]
    local db=$1; shift
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" -v nevents="$EVENTS" -v nside="$SIDE" -v start_at_month=1 "$@" \
        -f "$HERE/invoice_lines_setup.sql" >/dev/null
}
WORK=$(mktemp -d /tmp/metering-bench-br.XXXXXX)
timed() {  # db sql -> seconds on stdout; the query's result in $WORK/result (see result)
    local t0
    t0=$(now_ns)
    sql "$1" "$2" >"$WORK/result"
    secs "$t0" "$(now_ns)"
}
result() { tr '\n' ' ' <"$WORK/result" | sed 's/ $//'; }

# --- 5a: the worker rolls up during the load ---------------------------------------
log "figure 5a set-up: $EVENTS events in the month + $SIDE around it, committed every $CHUNK, the worker on"
createdb bench_worker
# The worker connects once the database exists (it retries every 10 s).
for _ in $(seq 30); do
    [ "$(sql postgres "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'metering rollup worker'
                      AND datname = 'bench_worker'")" = 1 ] && break
    sleep 1
done
t0=$(now_ns)
setup bench_worker -v chunk="$CHUNK" -v no_plain=1
load_w=$(secs "$t0" "$(now_ns)")
worker_s=$(sql bench_worker "SELECT round(sum(total_exec_time)::numeric / 1000, 2) FROM pg_stat_statements
                             WHERE query = 'SELECT metering.refresh_usage()' AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())")
worker_n=$(sql bench_worker "SELECT events_consumed FROM metering.rollup_state")
AS_OF=$(sql bench_worker "SELECT (month + interval '1 month 1 day') AT TIME ZONE 'UTC' FROM bench_il.params")
AT=$(sql bench_worker "SELECT (month + interval '14 days') AT TIME ZONE 'UTC' FROM bench_il.params")
# what the close finds to roll up (the worker may still be in a step: the close then
# waits for it, and the wait is part of the close's time)
left_w=$(sql bench_worker "SELECT events_waiting FROM metering.status")
close_w=$(timed bench_worker "SELECT metering.close_periods('$AS_OF')")
made_w=$(result)
total_w=$(sql bench_worker "SELECT count(*) || ' invoices, ' || sum(total) || ' USD' FROM metering.invoices")

# --- 5b: no worker: the close rolls up everything inline ---------------------------
log "figure 5b set-up: the same events in one statement, no worker, and the plain table of the baseline"
createdb bench_inline
setup bench_inline
close_n=$(timed bench_inline "SELECT metering.close_periods('$AS_OF')")
total_n=$(sql bench_inline "SELECT count(*) || ' invoices, ' || sum(total) || ' USD' FROM metering.invoices")
base_sql=$(sed "s/:'at'/'$AT'/g" "$HERE/invoice_lines_baseline.sql")
sql bench_inline "$base_sql" >/dev/null   # warm, as the close read the events just before
base_s=$(timed bench_inline "SELECT count(*), sum(amount) FROM ($base_sql) l")
base_lines=$(result)

# --- 5c, 5d: reads of the rolled-up usage -------------------------------------------
ours_sql="SELECT count(*), sum(amount) FROM metering.invoice_lines WHERE period_start <= '$AT' AND '$AT' < period_end"
sql bench_inline "$ours_sql" >/dev/null
ours_s=$(timed bench_inline "$ours_sql")
ours_lines=$(result)
# one session, the statement prepared as a driver does: 20 executions, their server times
# (EXPLAIN ANALYZE: planning and execution) after one to warm the session's caches
{
    echo "PREPARE cu(text) AS SELECT sum(quantity), sum(amount) FROM metering.current_usage WHERE customer_id = \$1;"
    for _ in $(seq 21); do echo "EXPLAIN (ANALYZE, SUMMARY ON, COSTS OFF) EXECUTE cu('cust-1');"; done
} >"$WORK/cu.sql"
"$PGBIN/psql" -X -q -At -d bench_inline -f "$WORK/cu.sql" >"$WORK/cu.out"
med() { grep "$1" "$WORK/cu.out" | tail -20 | awk '{ print $(NF-1) }' | sort -g | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR + 1) / 2)] }'; }
cu_ms="$(med 'Execution Time') ms execution + $(med 'Planning Time') ms planning"
size=$(sql bench_inline "SELECT count(*) || ' groups, ' || pg_total_relation_size('metering.usage_rollups') / count(*) || ' bytes a group, '
                         || round(pg_total_relation_size('metering.usage_rollups') / 1048576.0, 1) || ' MB'
                         FROM metering.usage_rollups")

{
    echo "figure 5: the billing run of one monthly period, 10,000 subscriptions, 4 meters, $EVENTS events (+ $SIDE around)"
    echo "  settings: shared_buffers 1GB, work_mem 256MB, huge pages $(cluster_huge_pages); analyzed after the load; no invoice before"
    echo "  5a worker on during the load (load ${load_w} s): by its end the worker had rolled up $worker_n events in ${worker_s} s;"
    echo "     close_periods ${close_w} s ($left_w events waiting when it started; made $made_w; $total_w)   target < 5 s"
    echo "  5b no worker: close_periods ${close_n} s (rolls up all inline; $total_n);"
    echo "     hand-written GROUP BY + CASE over the plain table ${base_s} s: ratio $(ratio "$base_s" "$close_n")   target >= 1"
    echo "  5c invoice_lines of the period ${ours_s} s ($ours_lines) vs hand-written ${base_s} s ($base_lines): $(ratio "$base_s" "$ours_s")x   target >= 5"
    echo "  5d current_usage of one customer (prepared, medians of 20): ${cu_ms}   target < 5 ms"
    echo "  rolled-up state: $size"
} | tee "$OUT/figure5.txt"
