#!/usr/bin/env bash
# Figure 4 of make bench: the invoice lines of one monthly period over 10 million
# events (10,000 customers in four time zones, 4 meters, one plan), ours
# (metering.invoice_lines) beside the same lines written by hand over a plain table
# of the same events, in the same run (docs/benchmarks.md explains the method).
#
# Runs alone (starts its own throwaway cluster, as run.sh does) or from run.sh with
# BENCH_IL_IN_CLUSTER=1 (uses the cluster of PGHOST/PGPORT). Environment:
#   BENCH_IL_EVENTS    events due inside the month (10000000)
#   BENCH_IL_SIDE      events due in the neighbouring months (BENCH_IL_EVENTS / 10)
#   BENCH_ROUNDS       alternating timed rounds (3)
#   BENCH_IL_PER_LINE  1: also time once the per-line formulation (about 30 s)
#   BENCH_OUT          where the plans and the summary go (build/bench)
#   BENCH_DESTDIR      install the extension under this root (make install
#                      DESTDIR=...) and run that copy's server, not the system one
# Prints the figure's rows on stdout; progress on stderr. Fails if the two sides
# disagree on any line.
set -euo pipefail
shopt -s inherit_errexit

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
EVENTS=${BENCH_IL_EVENTS:-10000000}
SIDE=${BENCH_IL_SIDE:-$((EVENTS / 10))}
ROUNDS=${BENCH_ROUNDS:-3}
OUT=${BENCH_OUT:-$ROOT/build/bench}
mkdir -p "$OUT"
log() { printf '%s\n' "$*" >&2; }

if [ "${BENCH_IL_IN_CLUSTER:-0}" != 1 ]; then
    if [ -n "${BENCH_DESTDIR:-}" ]; then
        make -s -j2 -C "$ROOT" >/dev/null && make -s -C "$ROOT" install DESTDIR="$BENCH_DESTDIR" >/dev/null
        PGBIN=${PGBIN:-$BENCH_DESTDIR$(pg_config --bindir)}
    elif [ -w "$(pg_config --pkglibdir)" ]; then
        make -s -j2 -C "$ROOT" >/dev/null && make -s -C "$ROOT" install >/dev/null
    fi
fi
export PGBIN=${PGBIN:-$(pg_config --bindir)}
# shellcheck source=lib.sh
source "$ROOT/test/bench/lib.sh"
if [ "${BENCH_IL_IN_CLUSTER:-0}" != 1 ]; then
    cluster_start 'shared_buffers = 1GB' 'max_wal_size = 4GB' 'min_wal_size = 1GB' \
        'checkpoint_timeout = 30min' 'max_connections = 40'
fi
[ -f "$("$PGBIN/pg_config" --sharedir)/extension/metering.control" ] ||
    { log "metering is not installed for $PGBIN"; exit 1; }
WORK=$(mktemp -d /tmp/metering-bench-il.XXXXXX)
trap 'rm -rf "$WORK"; [ "${BENCH_IL_IN_CLUSTER:-0}" = 1 ] || cluster_stop' EXIT

DB=bench_il
psql_il() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
sql() { psql_il -At -c "$1"; }
now_ns() { date +%s%N; }

"$PGBIN/psql" -X -q -d postgres -c 'SET client_min_messages = warning' -c "DROP DATABASE IF EXISTS $DB" \
    -c "CREATE DATABASE $DB" >/dev/null
log "figure 4 set-up: 10,000 customers, 4 meters, $EVENTS events in the month + $SIDE around it (a few minutes)"
t0=$(now_ns)
psql_il -v nevents="$EVENTS" -v nside="$SIDE" -f "$HERE/invoice_lines_setup.sql" >/dev/null
log "figure 4 set-up took $(( ($(now_ns) - t0) / 1000000000 )) s"
# The usage rolled up, as the rollup worker leaves it (timed apart: Figure 5 has the
# billing run with and without the worker).
t0=$(now_ns)
ROLLED=$(sql 'SELECT metering.refresh_usage()')
ROLLUP_S=$(awk -v a="$t0" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
log "figure 4: one rollup step consumed $ROLLED events in $ROLLUP_S s"
sql 'VACUUM ANALYZE metering.usage_rollups' >/dev/null
sql 'CHECKPOINT' >/dev/null
# The instant whose period is asked for: the 15th of the month, 00:00 UTC, inside
# every customer's local month.
AT=$(sql "SELECT (month + interval '14 days') AT TIME ZONE 'UTC' FROM bench_il.params")
MONTH=$(sql "SELECT to_char(month, 'YYYY-MM') FROM bench_il.params")

# Variants: name, query file, settings. "noidx" plans as if the plain table had no
# index (index scans off); the (customer_id, meter, due_at) index exists otherwise.
NOIDX='SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off;'
# The *_nojit variants run with jit = off (JIT compiling is on by default and costs
# more for a larger plan).
declare -A FILE=([ours]=invoice_lines_ours.sql [base]=invoice_lines_baseline.sql
                 [base_noidx]=invoice_lines_baseline.sql [base2]=invoice_lines_baseline_2level.sql
                 [ours_nojit]=invoice_lines_ours.sql [base_nojit]=invoice_lines_baseline.sql
                 [per_line]=invoice_lines_per_line.sql)
declare -A SETTINGS=([ours]='' [base]='' [base_noidx]="$NOIDX" [base2]='' [per_line]=''
                     [ours_nojit]='SET jit = off;' [base_nojit]='SET jit = off;')
script() {  # variant [prefix] -> SQL text running the variant's query
    printf '%s\n%s\n' "${SETTINGS[$1]}" "${2:-}"
    cat "$HERE/${FILE[$1]}"
    echo ';'
}
timed() {  # variant -> seconds (query output discarded, as a client that fetches and drops it)
    local t0
    script "$1" >"$WORK/q.sql"
    t0=$(now_ns)
    psql_il -v at="$AT" -o /dev/null -f "$WORK/q.sql"
    awk -v a="$t0" -v b="$(now_ns)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}

# --- Same lines on both sides? (not timed; the first run of each also warms the cache)
for v in ours base base2 ${BENCH_IL_PER_LINE:+per_line}; do
    [ "$v" = per_line ] && [ "${BENCH_IL_PER_LINE:-0}" != 1 ] && continue
    { echo "SET client_min_messages = warning; DROP TABLE IF EXISTS bench_il.r_$v;"
      script "$v" "CREATE TABLE bench_il.r_$v AS"; } >"$WORK/c.sql"
    psql_il -v at="$AT" -f "$WORK/c.sql" >/dev/null
done
check() {  # a b -> fails unless both hold the same lines
    local r
    r=$(sql "SELECT (SELECT count(*) FROM bench_il.r_$1) || ' ' || (SELECT count(*) FROM bench_il.r_$2) || ' ' ||
                    (SELECT sum(amount) FROM bench_il.r_$1) || ' ' || (SELECT sum(amount) FROM bench_il.r_$2) || ' ' ||
                    (SELECT count(*) FROM (SELECT * FROM bench_il.r_$1 EXCEPT ALL SELECT * FROM bench_il.r_$2) d) || ' ' ||
                    (SELECT count(*) FROM (SELECT * FROM bench_il.r_$2 EXCEPT ALL SELECT * FROM bench_il.r_$1) d)")
    read -r n1 n2 a1 a2 d1 d2 <<<"$r"
    if [ "$n1" != "$n2" ] || [ "$a1" != "$a2" ] || [ "$d1" != 0 ] || [ "$d2" != 0 ]; then
        log "FIGURE 4 CHECK FAILED: $1 has $n1 lines totalling $a1, $2 has $n2 lines totalling $a2;" \
            "$d1 lines only in $1, $d2 only in $2; first differences:"
        sql "(SELECT '$1' AS side, * FROM (SELECT * FROM bench_il.r_$1 EXCEPT ALL SELECT * FROM bench_il.r_$2) d LIMIT 5)
             UNION ALL (SELECT '$2', * FROM (SELECT * FROM bench_il.r_$2 EXCEPT ALL SELECT * FROM bench_il.r_$1) d LIMIT 5)" >&2
        exit 1
    fi
    echo "$n1 $a1"
}
r=$(check ours base)
read -r LINES TOTAL <<<"$r"
r=$(check ours base2)
if [ "${BENCH_IL_PER_LINE:-0}" = 1 ]; then r=$(check ours per_line); fi
log "figure 4 check: ours and the hand-written SQL give the same $LINES lines, total $TOTAL USD"

# --- Plans and peak memory (one EXPLAIN ANALYZE run each, not timed) ---------------
# Peak private memory: the largest sum of RssAnon (kB) over the backend and its
# parallel workers, sampled every 10 ms (shared buffers are not counted).
sample_memory() {  # pid stopfile -> peak kB on stdout
    local pid=$1 stop=$2 peak=0 sum p i=0 workers=
    while [ ! -e "$stop" ]; do
        # look for the workers every 0.1 s ([p]: not this grep's own command line)
        if [ $((i++ % 10)) = 0 ]; then
            workers=$(grep -l "[p]arallel worker for PID $pid\b" /proc/[0-9]*/cmdline 2>/dev/null |
                      cut -d/ -f3 | tr '\n' ' ' || true)
        fi
        sum=0
        for p in $pid $workers; do
            sum=$((sum + $(awk '/^RssAnon/ { print $2 }' "/proc/$p/status" 2>/dev/null || true) + 0))
        done
        if [ "$sum" -gt "$peak" ]; then peak=$sum; fi
        sleep 0.01
    done
    echo "$peak"
}
declare -A MEM
explain() {  # variant -> plan in $OUT/figure4-<variant>.plan, peak memory in MEM[variant]
    local v=$1
    rm -f "$WORK/pid" "$WORK/stop"
    {
        echo 'SELECT pg_backend_pid() AS pid \gset'
        echo "\\o $WORK/pid"
        echo 'SELECT :pid;'
        echo '\o /dev/null'
        echo 'SELECT pg_sleep(0.2);'
        echo '\o'
        script "$v" 'EXPLAIN (ANALYZE, BUFFERS)'
    } >"$WORK/e.sql"
    psql_il -v at="$AT" -At -f "$WORK/e.sql" >"$OUT/figure4-$v.plan" &
    local psql_pid=$!
    while [ ! -s "$WORK/pid" ]; do sleep 0.01; done
    sample_memory "$(tr -dc 0-9 <"$WORK/pid")" "$WORK/stop" >"$WORK/mem" &
    local sampler=$!
    wait "$psql_pid"
    touch "$WORK/stop"
    wait "$sampler"
    MEM[$v]=$(awk '{ printf "%.0f", $1 / 1024 }' "$WORK/mem")
}
for v in ours base base_noidx base2; do explain "$v"; done

# --- Timed rounds, alternating ------------------------------------------------------
declare -A T
for r in $(seq "$ROUNDS"); do
    for v in ours base base_noidx base2 ours_nojit base_nojit; do T[$v]+="$(timed "$v") "; done
    log "figure 4 round $r: ours $(echo ${T[ours]} | awk '{ print $NF }') s, hand-written $(echo ${T[base]} | awk '{ print $NF }') s" \
        "(no index $(echo ${T[base_noidx]} | awk '{ print $NF }') s, two-level $(echo ${T[base2]} | awk '{ print $NF }') s)"
done
if [ "${BENCH_IL_PER_LINE:-0}" = 1 ]; then
    explain per_line
    T[per_line]=$(timed per_line)
fi

# --- Summary (stdout) ----------------------------------------------------------------
m() { median ${T[$1]}; }
mo=$(m ours)
row() {  # label variant
    local mb
    mb=$(m "$2")
    printf '%-50s %9.2f s %9.2f s %6s  > 1.00  %s\n' "$1" "$mo" "$mb" "$(ratio "$mb" "$mo")" \
        "$(awk -v x="$(ratio "$mb" "$mo")" 'BEGIN { print (x > 1) ? "met" : "MISSED" }')"
}
{
    echo "figure 4: invoice lines of one monthly period ($MONTH, the period containing $AT), $LINES lines, total $TOTAL USD"
    printf '%-50s %11s %11s %6s  %-6s\n' "" ours baseline "ratio" target
    row "4  invoice_lines vs hand-written SQL" base
    row "4b same, hand-written without index" base_noidx
    row "4c same, hand-written two-level GROUP BY" base2
    printf '%-50s %9.2f s %9.2f s %6s  (jit = off on both sides)\n' "4d invoice_lines vs hand-written, jit = off" \
        "$(m ours_nojit)" "$(m base_nojit)" "$(ratio "$(m base_nojit)" "$(m ours_nojit)")"
    echo "   ours reads the rolled-up usage (one rollup step after the load: $ROLLED events in $ROLLUP_S s)"
    echo "   ratio = baseline time / our time (above 1: ours is faster); medians of $ROUNDS alternating rounds"
    echo "   rounds (s): ours ${T[ours]}| hand-written ${T[base]}| no index ${T[base_noidx]}| two-level ${T[base2]}"
    echo "               jit off: ours ${T[ours_nojit]}| hand-written ${T[base_nojit]}"
    echo "   peak private memory (RssAnon, backend + parallel workers): ours ${MEM[ours]} MB," \
         "hand-written ${MEM[base]} MB, no index ${MEM[base_noidx]} MB, two-level ${MEM[base2]} MB"
    [ -n "${T[per_line]:-}" ] &&
        echo "   per-line formulation (before this figure's plan): ${T[per_line]} s, ${MEM[per_line]} MB"
    echo "   plans: $OUT/figure4-*.plan"
} | tee "$OUT/figure4.txt"
