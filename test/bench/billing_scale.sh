#!/usr/bin/env bash
# Figure 6 of make bench: how the billing run grows. With the rollup worker on, as in
# production:
#   6a  13 monthly closes of the same 10,000 subscriptions (4 meters, BENCH_SC_EVENTS
#       events a month, 1 % of them late, due in an earlier month): the 13th close
#       against the first (target: at most 1.25x);
#   6b  one monthly close of 100,000 subscriptions (10x the events) against the first
#       close of 6a (target: at most 10x, linear).
# Each close runs on a database analyzed after its month's load, once the worker has
# rolled up the month (whatever is left is rolled up by the close). Settings of a
# production server: shared_buffers 1 GB, work_mem 256 MB. Environment:
#   BENCH_SC_EVENTS (events a month for 10,000 subscriptions, 200000), BENCH_SC_MONTHS (13),
#   BENCH_SC_BIG (subscriptions of 6b, 100000; 0 skips it), BENCH_OUT (build/bench),
#   BENCH_SC_EXPLAIN (1: keep the plans of the statements over 50 ms in figure6-plans.log),
#   BENCH_SC_REPLAYS (3; 0: none): rounds of replays, below.
# Replays: the machine's speed swings within a run (docs/benchmarks.md, Figure 6), and
# the 1st and 13th closes are half an hour apart. So the cluster is copied
# (pg_basebackup, the server up) right before the 1st, the last and 6b's close, and
# after the run each close is replayed on a fresh copy, the three alternating, in
# rounds: a restarted server, its shared buffers empty, the files in the OS's cache.
set -euo pipefail
shopt -s inherit_errexit
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
EPM=${BENCH_SC_EVENTS:-200000}
MONTHS=${BENCH_SC_MONTHS:-13}
BIG=${BENCH_SC_BIG:-100000}
OUT=${BENCH_OUT:-$ROOT/build/bench}
mkdir -p "$OUT"
log() { printf '%s\n' "$*" >&2; }
if [ -w "$(pg_config --pkglibdir)" ] && [ -z "${BENCH_DESTDIR:-}" ]; then
    make -s -j2 -C "$ROOT" >/dev/null && make -s -C "$ROOT" install >/dev/null
fi
export PGBIN=${PGBIN:-$(pg_config --bindir)}
# shellcheck source=lib.sh
source "$ROOT/test/bench/lib.sh"
cluster_start 'shared_buffers = 1GB' 'work_mem = 256MB' 'maintenance_work_mem = 1GB' 'max_wal_size = 8GB' \
    'checkpoint_timeout = 30min' "shared_preload_libraries = 'metering'" \
    "metering.rollup_databases = 'scale_small, scale_big'" "metering.rollup_interval = '1s'" \
    ${BENCH_SC_EXPLAIN:+"session_preload_libraries = 'auto_explain'" "auto_explain.log_min_duration = '50ms'" \
                        'auto_explain.log_analyze = on' 'auto_explain.log_buffers = on' \
                        'auto_explain.log_nested_statements = on'}
sql() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -At -d "$1" -c "$2"; }
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }

setup() {  # db subscriptions
    "$PGBIN/createdb" "$1"
    for _ in $(seq 30); do  # the worker connects once the database exists
        [ "$(sql postgres "SELECT count(*) FROM pg_stat_activity WHERE datname = '$1'
                           AND backend_type = 'metering rollup worker'")" = 1 ] && break
        sleep 1
    done
    sql "$1" "CREATE EXTENSION metering" >/dev/null
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$1" -v subs="$2" >/dev/null <<'SQL'
SET client_min_messages = warning;
SELECT count(metering.create_customer('cust-' || i)) FROM generate_series(1, :subs) i;
SELECT metering.create_meter('api_calls', 'count'), metering.create_meter('tokens', 'sum'),
       metering.create_meter('storage_gb', 'max'), metering.create_meter('active_users', 'unique_count', 'user');
SELECT metering.create_plan('pro', 'USD', '1 month', 49);
SELECT metering.add_charge('pro', 'api_calls', '{"model": "graduated", "free_units": 100, "tiers": [{"up_to": 5000, "unit_price": "0.002"}, {"up_to": null, "unit_price": "0.0015"}]}'),
       metering.add_charge('pro', 'tokens', '{"model": "volume", "tiers": [{"up_to": 1000000, "unit_price": "0.00001"}, {"up_to": null, "unit_price": "0.000008", "flat_price": 2}]}'),
       metering.add_charge('pro', 'storage_gb', '{"model": "per_unit", "unit_price": "0.125", "free_units": 5}'),
       metering.add_charge('pro', 'active_users', '{"model": "package", "package_size": 10, "package_price": 15}');
SELECT count(metering.subscribe('cust-' || i, 'pro', '2025-01-01 00:00 UTC')) FROM generate_series(1, :subs) i;
-- the load gives due_at: its months are made first (docs/design.md, "Event store")
SELECT metering.create_event_partitions('2025-01-01 00:00 UTC', '2026-02-01 00:00 UTC');
CREATE PROCEDURE public.load_month(subs int, n int, month int, late_share float8, chunk int)
LANGUAGE plpgsql AS $$
DECLARE
    lo int := 1;
BEGIN
    WHILE lo <= n LOOP
        INSERT INTO metering.events (customer_id, meter, value, occurred_at, due_at, properties)
        SELECT 'cust-' || (1 + floor(random() * subs)::int), (ARRAY['api_calls', 'tokens', 'storage_gb', 'active_users'])[1 + i % 4],
               CASE i % 4 WHEN 1 THEN 1 + floor(random() * 4000) WHEN 2 THEN 1 + floor(random() * 500) ELSE 1 END,
               t, t, CASE i % 4 WHEN 3 THEN jsonb_build_object('user', 'u' || floor(random() * 20)::int) ELSE '{}' END
        FROM generate_series(lo, least(lo + chunk - 1, n)) i,
             LATERAL (SELECT CASE WHEN month > 0 AND random() < late_share   -- late: an earlier month
                                  THEN '2025-01-01 00:00 UTC'::timestamptz + floor(random() * month) * interval '1 month' + random() * interval '27 days'
                                  ELSE '2025-01-01 00:00 UTC'::timestamptz + month * interval '1 month' + (i - 0.5) / n * interval '28 days'
                             END AS t) x;
        COMMIT;
        lo := lo + chunk;
    END LOOP;
END $$;
SQL
}
wait_rolled_up() {  # db: until the worker has nothing left (at most 120 s)
    for _ in $(seq 120); do
        [ "$(sql "$1" "SELECT events_waiting FROM metering.status")" = 0 ] && return
        sleep 1
    done
}
REPLAYS=${BENCH_SC_REPLAYS:-3}
SNAPS=$CLUSTER_DIR/snapshots
as_of_month() { sql postgres "SELECT '2025-01-01 02:00 UTC'::timestamptz + ($1 + 1) * interval '1 month'"; }
timed_close() {  # db as_of -> seconds of close_periods in a new session
    local t0
    t0=$(now_ns)
    sql "$1" "SELECT metering.close_periods('$2')" >/dev/null
    secs "$t0" "$(now_ns)"
}
close_month() {  # db month subscriptions [snapshot name] -> seconds of its close
    local db=$1 m=$2 n=$3
    sql "$db" "CALL public.load_month($n, $((EPM * n / 10000)), $m, 0.01, 50000)"
    wait_rolled_up "$db"
    sql "$db" "ANALYZE" >/dev/null
    if [ -n "${4:-}" ] && [ "$REPLAYS" != 0 ]; then
        cluster_as_owner "$PGBIN/pg_basebackup" -D "$SNAPS/$4" -X stream -c fast >/dev/null
        echo "$db $(as_of_month "$m")" >"$SNAPS/$4.close"
    fi
    timed_close "$db" "$(as_of_month "$m")"
}
replay() {  # snapshot name -> seconds of its close on a fresh copy of the cluster
    local db as_of
    read -r db as_of <"$SNAPS/$1.close"
    cluster_as_owner "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null
    rm -rf "$CLUSTER_DIR/data"
    cp -a "$SNAPS/$1" "$CLUSTER_DIR/data"
    cluster_restart
    sql "$db" "SELECT 1" >/dev/null  # the first session after a restart builds the catalog cache file
    timed_close "$db" "$as_of"
}

log "figure 6a: $MONTHS monthly closes of 10,000 subscriptions, $EPM events a month (1 % late)"
setup scale_small 10000
[ "$REPLAYS" = 0 ] || cluster_as_owner mkdir "$SNAPS"
times=()
for m in $(seq 0 $((MONTHS - 1))); do
    snap=
    [ "$m" = 0 ] && snap=first
    [ "$m" = $((MONTHS - 1)) ] && [ "$MONTHS" -gt 1 ] && snap=last
    times+=("$(close_month scale_small "$m" 10000 ${snap:+"$snap"})")
    log "  close of month $((m + 1)): ${times[-1]} s"
done
late=$(sql scale_small "SELECT count(*) FROM metering.invoice_items WHERE kind = 'late_usage'")
invoices=$(sql scale_small "SELECT count(*) FROM metering.invoices")
events=$(sql scale_small "SELECT count(*) FROM metering.events")
big=
if [ "$BIG" != 0 ]; then
    log "figure 6b: one monthly close of $BIG subscriptions, $((EPM * BIG / 10000)) events"
    setup scale_big "$BIG"
    big=$(close_month scale_big 0 "$BIG" big)
fi
r_first=() r_last=() r_big=() r_last_ratio=() r_big_ratio=()
for r in $(seq "$REPLAYS"); do
    r_first+=("$(replay first)")
    [ ! -d "$SNAPS/last" ] || { r_last+=("$(replay last)"); r_last_ratio+=("$(ratio "${r_last[-1]}" "${r_first[-1]}")"); }
    [ ! -d "$SNAPS/big" ] || { r_big+=("$(replay big)"); r_big_ratio+=("$(ratio "${r_big[-1]}" "${r_first[-1]}")"); }
    log "  replay round $r: first ${r_first[-1]} s${r_last[*]:+, last ${r_last[-1]} s}${r_big[*]:+, 6b ${r_big[-1]} s}"
done
{
    echo "figure 6: how the billing run grows (rollup worker on; shared_buffers 1GB, work_mem 256MB, huge pages $(cluster_huge_pages))"
    echo "  6a 10,000 subscriptions, 4 meters, $EPM events a month (1 % late into earlier months), $MONTHS months:"
    echo "     closes (s): ${times[*]}"
    echo "     close $MONTHS / close 1: $(ratio "${times[-1]}" "${times[0]}")   target <= 1.25 (for close 13)"
    echo "     at the end: $events events, $invoices invoices, $late late-usage lines"
    if [ -n "$big" ]; then
        echo "  6b $BIG subscriptions, one month: ${big} s = $(ratio "$big" "${times[0]}") x the 10,000 close   target <= 10"
    fi
    if [ "$REPLAYS" != 0 ]; then
        echo "  replays ($REPLAYS alternating rounds on fresh copies, restarted server; medians of the rounds' ratios):"
        echo "     first close (s): ${r_first[*]}"
        if [ ${#r_last[@]} != 0 ]; then
            echo "     last close (s): ${r_last[*]}"
            echo "     last / first: $(median "${r_last_ratio[@]}") (rounds ${r_last_ratio[*]})   target <= 1.25"
        fi
        if [ ${#r_big[@]} != 0 ]; then
            echo "     6b close (s): ${r_big[*]}"
            echo "     6b / first: $(median "${r_big_ratio[@]}") (rounds ${r_big_ratio[*]})   target <= 10"
        fi
    fi
} | tee "$OUT/figure6.txt"
# BENCH_SC_EXPLAIN=1: the plans of every statement over 50 ms (auto_explain), for reading
if [ -n "${BENCH_SC_EXPLAIN:-}" ]; then cp "$CLUSTER_DIR/server.log" "$OUT/figure6-plans.log"; fi
