#!/usr/bin/env bash
# make bench: the ingest paths of metering beside plain-table baselines, in the
# same run on the same throwaway cluster (docs/benchmarks.md explains the method).
#   Figure 1  metering.ingest, 8 clients      vs INSERT ... ON CONFLICT DO NOTHING
#   Figure 2  metering.ingest_batch, 1,000/call vs COPY of the same rows, and vs
#             INSERT ... SELECT FROM jsonb_to_recordset(...) ON CONFLICT DO NOTHING
#   Figure 2r rolling Figure 2's events up (refresh_usage) vs ingesting them
#   Figure 3  COPY into metering.events_import (the bulk path), and into
#             metering.events (row trigger), vs COPY into a plain table
#   Figure 4  invoice lines of one monthly period over 10 million events vs the
#             same lines written by hand over a plain table (invoice_lines.sh)
#   Figure 5  the month-end billing run over 10 million events (billing_run.sh, own cluster)
# Environment: BENCH_HUGE_PAGES (1: reserve huge pages as root; 0: not; every bench
# script), BENCH_DURATION (s per pgbench run, 15), BENCH_ROUNDS (3),
# BENCH_BATCHES (batches of 1,000 events in Figures 2 and 3, 100), BENCH_IL (0:
# skip Figure 4; its own knobs are in invoice_lines.sh), BENCH_CP (0: skip
# Figure 5), BENCH_DESTDIR (install
# the extension under this root and run that copy's server instead of installing
# into the system's Postgres).
set -euo pipefail
shopt -s inherit_errexit

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DURATION=${BENCH_DURATION:-15}
ROUNDS=${BENCH_ROUNDS:-3}
BATCHES=${BENCH_BATCHES:-100}
EVENTS=$((BATCHES * 1000))

# Measure the sources of this checkout: install them when we can (under
# BENCH_DESTDIR when given: a private copy of Postgres made with
# cp -a --parents /usr/lib/postgresql/15 /usr/share/postgresql/15 "$BENCH_DESTDIR").
if [ -n "${BENCH_DESTDIR:-}" ]; then
    make -s -j2 -C "$ROOT" >/dev/null && make -s -C "$ROOT" install DESTDIR="$BENCH_DESTDIR" >/dev/null
    PGBIN=${PGBIN:-$BENCH_DESTDIR$(pg_config --bindir)}
elif [ -w "$(pg_config --pkglibdir)" ]; then
    make -s -j2 -C "$ROOT" >/dev/null && make -s -C "$ROOT" install >/dev/null
fi
PGBIN=${PGBIN:-$(pg_config --bindir)}
export PGBIN
if [ ! -f "$("$PGBIN/pg_config" --sharedir)/extension/metering.control" ]; then
    echo "metering is not installed for $PGBIN: run 'make install' as root first" >&2
    exit 1
fi

# shellcheck source=lib.sh
source "$ROOT/test/bench/lib.sh"
# The rollup worker runs (every second, as by default): the ingest figures hold with it.
cluster_start 'shared_buffers = 1GB' 'max_wal_size = 4GB' 'min_wal_size = 1GB' \
    'checkpoint_timeout = 30min' 'max_connections = 40' "shared_preload_libraries = 'metering'" \
    "metering.rollup_databases = 'bench'"
WORK=$(mktemp -d /tmp/metering-bench.XXXXXX)
trap 'cluster_stop; rm -rf "$WORK"' EXIT

psql_bench() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d bench "$@"; }
sql() { psql_bench -At -c "$1"; }
now_ns() { date +%s%N; }
# Seconds since $1 (ns), 6 decimals.
since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.6f", (b - a) / 1e9 }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
# Empty tables between rounds. metering.events refuses TRUNCATE (its history is
# append-only): the bench, a superuser, sets its triggers aside, and empties what the
# rollup worker derived from it with it.
fresh() {
    local extra=
    [[ " $* " == *" metering.events "* ]] && extra=", metering.usage_rollups, metering.late_groups$KEYS_TABLE"
    sql "SET session_replication_role = replica; TRUNCATE $*$extra; RESET session_replication_role;
         CHECKPOINT;" >/dev/null
}
log() { printf '%s\n' "$*" >&2; }

"$PGBIN/psql" -X -q -d postgres -c 'CREATE DATABASE bench' >/dev/null
log "setting up: 10,000 customers, 2 meters, baselines, $BATCHES batches of 1,000 events"
psql_bench -v nbatches="$BATCHES" -f "$HERE/setup.sql" >/dev/null

# 0.2.0's idempotency keys live in a table of their own (truncated with the events).
KEYS_TABLE=$(sql "SELECT coalesce(', ' || to_regclass('metering.idempotency_keys')::text, '')")
SERVER_VERSION=$(sql 'SHOW server_version')
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM=$(awk '/^MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo)
COLS='customer_id, meter, value, occurred_at, due_at, idempotency_key, properties'

# --- Figure 1: single-event ingest, 8 clients ------------------------------
pgbench_tps() {  # script run-tag -> tps
    local out
    out=$("$PGBIN/pgbench" -n -M prepared -c 8 -j 2 -T "$DURATION" -D run="$2" -f "$HERE/$1" bench 2>&1) ||
        { log "$out"; return 1; }
    awk '/^tps = / { printf "%.0f\n", $3 }' <<<"$out"
}
f1_ours=() f1_plain=() f1_1idx=()
for r in $(seq "$ROUNDS"); do
    fresh metering.events
    f1_ours+=("$(pgbench_tps ingest.pgbench "o$r")")
    fresh bench.plain_events
    f1_plain+=("$(pgbench_tps insert_plain.pgbench "p$r")")
    fresh bench.plain_events_1idx
    f1_1idx+=("$(pgbench_tps insert_1idx.pgbench "i$r")")
    log "figure 1 round $r: ingest ${f1_ours[-1]} tps, plain ${f1_plain[-1]} tps, 1idx ${f1_1idx[-1]} tps"
done
[ "$(sql 'SELECT count(*) > 0 FROM metering.events')" = t ] || { log "figure 1 stored nothing"; exit 1; }

# --- Figure 2: ingest_batch of 1,000 events vs COPY ------------------------
# One statement (one transaction) per batch, jsonb read from bench.batches.
for b in $(seq "$BATCHES"); do
    echo "SELECT count(*) FROM bench.batches b, metering.ingest_batch(b.doc) WHERE b.id = $b;"
done >"$WORK/batch_stored.sql"
# Baseline 2e: the same batches into the plain table by hand-written SQL, one statement each.
for b in $(seq "$BATCHES"); do
    echo "INSERT INTO bench.plain_events ($COLS)
          SELECT r.customer_id, r.meter, r.value, r.occurred_at, r.occurred_at, r.idempotency_key, r.properties
          FROM bench.batches b, jsonb_to_recordset(b.doc) AS r(customer_id text, meter text, value numeric,
               occurred_at timestamptz, idempotency_key text, properties jsonb)
          WHERE b.id = $b ON CONFLICT DO NOTHING;"
done >"$WORK/batch_sql.sql"
# The same batches sent by the client as JSON text (parsed by the server).
psql_bench -At -c "SELECT 'SELECT count(*) FROM metering.ingest_batch(' || quote_literal(doc::text) || ');'
                   FROM bench.batches ORDER BY id" >"$WORK/batch_text.sql"
# The same events as CSV rows for COPY.
psql_bench -c "\\copy (SELECT $COLS FROM bench.batch_rows) to '$WORK/fig2.csv' csv"
# Figure 3: the same kind of rows with fresh idempotency keys.
psql_bench -c "\\copy (SELECT customer_id, meter, value, occurred_at, due_at,
                              'f3-' || substr(idempotency_key, 4), properties FROM bench.batch_rows)
                      to '$WORK/fig3.csv' csv"

timed() {  # command... -> events/s of $EVENTS events
    local t0
    t0=$(now_ns)
    "$@" >/dev/null || return 1
    rate "$EVENTS" "$(since "$t0")"
}
copy_into() { psql_bench -c "\\copy $1 ($COLS) from '$2' csv"; }
count_is() {  # table expected
    local n
    n=$(sql "SELECT count(*) FROM $1")
    [ "$n" = "$2" ] || { log "$1 holds $n rows, expected $2"; exit 1; }
}
f2_ours=() f2_text=() f2_plain=() f2_1idx=() f2_sql=()
for r in $(seq "$ROUNDS"); do
    fresh metering.events
    f2_ours+=("$(timed psql_bench -f "$WORK/batch_stored.sql")")
    count_is metering.events "$EVENTS"
    fresh bench.plain_events
    f2_sql+=("$(timed psql_bench -f "$WORK/batch_sql.sql")")
    count_is bench.plain_events "$EVENTS"
    fresh metering.events
    f2_text+=("$(timed psql_bench -f "$WORK/batch_text.sql")")
    count_is metering.events "$EVENTS"
    fresh bench.plain_events
    f2_plain+=("$(timed copy_into bench.plain_events "$WORK/fig2.csv")")
    count_is bench.plain_events "$EVENTS"
    fresh bench.plain_events_1idx
    f2_1idx+=("$(timed copy_into bench.plain_events_1idx "$WORK/fig2.csv")")
    count_is bench.plain_events_1idx "$EVENTS"
    log "figure 2 round $r: ingest_batch ${f2_ours[-1]} ev/s (JSON text ${f2_text[-1]}), INSERT jsonb_to_recordset ${f2_sql[-1]}, COPY plain ${f2_plain[-1]}, COPY 1idx ${f2_1idx[-1]}"
done

# --- Figure 2r: rolling up keeps pace with ingest_batch --------------------------
# The worker is paused (a long interval, reloaded), the batches are ingested, then one
# rollup step consumes them all: events a second of each. Both are timed on the server's
# clock, from the session's first statement to its last, as the worker runs its steps in
# a session it keeps: a new connection (about 0.1 s, a fifth of a step of 100,000
# events) is not part of either. The wall-clock rates, connection included, are shown too.
worker_interval() {
    sql "ALTER SYSTEM SET metering.rollup_interval = '$1'" >/dev/null
    sql "SELECT pg_reload_conf()" >/dev/null
    sql "SELECT metering.refresh_usage()" >/dev/null   # waits for a step in progress
}
clock='SELECT extract(epoch FROM clock_timestamp());'
{ echo "$clock"; cat "$WORK/batch_stored.sql"; echo "$clock"; } >"$WORK/batch_clocked.sql"
printf '%s\nSELECT metering.refresh_usage();\n%s\n' "$clock" "$clock" >"$WORK/step_clocked.sql"
session_rate() {  # file -> "events/s on the server's clock, wall-clock events/s, last result"
    local t0 out
    t0=$(now_ns)
    out=$(psql_bench -At -f "$1")
    awk -v n="$EVENTS" -v wall="$(since "$t0")" '{ v[NR] = $0 }
        END { printf "%.0f %.0f %s\n", n / (v[NR] - v[1]), n / wall, v[NR - 1] }' <<<"$out"
}
f2r_ingest=() f2r_rollup=() f2r_ingest_wall=() f2r_rollup_wall=()
for r in $(seq "$ROUNDS"); do
    worker_interval 1h
    fresh metering.events
    read -r rate_srv rate_wall _ < <(session_rate "$WORK/batch_clocked.sql")
    f2r_ingest+=("$rate_srv") f2r_ingest_wall+=("$rate_wall")
    read -r rate_srv rate_wall consumed < <(session_rate "$WORK/step_clocked.sql")
    f2r_rollup+=("$rate_srv") f2r_rollup_wall+=("$rate_wall")
    [ "$consumed" = "$EVENTS" ] || { log "the rollup step consumed $consumed events, expected $EVENTS"; exit 1; }
    log "figure 2r round $r: ingest_batch ${f2r_ingest[-1]} ev/s, rollup step ${f2r_rollup[-1]} ev/s (wall clock ${f2r_ingest_wall[-1]}, ${f2r_rollup_wall[-1]})"
done
# The plans of one more step (untimed; auto_explain with ANALYZE): the memory of its
# aggregation and of its sorts, kept in $OUT/step_plans.txt for reading.
fresh metering.events
psql_bench -f "$WORK/batch_stored.sql" >/dev/null
mkdir -p "${BENCH_OUT:-$ROOT/build/bench}"
psql_bench -At -c "LOAD 'auto_explain'" -c "SET auto_explain.log_min_duration = 0" \
    -c "SET auto_explain.log_analyze = on" -c "SET auto_explain.log_nested_statements = on" \
    -c "SET auto_explain.log_level = notice" -c "SET auto_explain.log_timing = off" \
    -c "SELECT metering.refresh_usage()" >"${BENCH_OUT:-$ROOT/build/bench}/step_plans.txt" 2>&1
f2r_groups=$(sql "SELECT count(*) FROM metering.usage_rollups")
worker_interval 1s

# --- Figure 3: COPY into metering.events (trigger) vs COPY into a plain table
f3_ours=() f3_plain=() f3_1idx=()
f3_trigger=()
for r in $(seq "$ROUNDS"); do
    fresh metering.events
    f3_ours+=("$(timed copy_into metering.events_import "$WORK/fig3.csv")")
    count_is metering.events "$EVENTS"
    fresh metering.events
    f3_trigger+=("$(timed copy_into metering.events "$WORK/fig3.csv")")
    count_is metering.events "$EVENTS"
    fresh bench.plain_events
    f3_plain+=("$(timed copy_into bench.plain_events "$WORK/fig3.csv")")
    count_is bench.plain_events "$EVENTS"
    fresh bench.plain_events_1idx
    f3_1idx+=("$(timed copy_into bench.plain_events_1idx "$WORK/fig3.csv")")
    count_is bench.plain_events_1idx "$EVENTS"
    log "figure 3 round $r: COPY metering.events_import ${f3_ours[-1]} rows/s (into metering.events ${f3_trigger[-1]}), COPY plain ${f3_plain[-1]}, COPY 1idx ${f3_1idx[-1]}"
done

# --- Figure 4: invoice lines of one period over 10M events vs hand-written SQL --
if [ "${BENCH_IL:-1}" != 0 ]; then
    BENCH_IL_IN_CLUSTER=1 bash "$HERE/invoice_lines.sh" >"$WORK/figure4.txt"
fi

# --- Results -----------------------------------------------------------------
m1o=$(median "${f1_ours[@]}") m1p=$(median "${f1_plain[@]}") m1i=$(median "${f1_1idx[@]}")
m2o=$(median "${f2_ours[@]}") m2t=$(median "${f2_text[@]}")
m2p=$(median "${f2_plain[@]}") m2i=$(median "${f2_1idx[@]}") m2s=$(median "${f2_sql[@]}")
m2ri=$(median "${f2r_ingest[@]}") m2rr=$(median "${f2r_rollup[@]}")
m3o=$(median "${f3_ours[@]}") m3p=$(median "${f3_plain[@]}") m3i=$(median "${f3_1idx[@]}")
m3t=$(median "${f3_trigger[@]}")
verdict() { awk -v x="$1" -v t="$2" 'BEGIN { print (x + 0 >= t + 0) ? "met" : "MISSED" }'; }
row() {  # label ours baseline unit target
    local q
    q=$(ratio "$2" "$3")
    printf '%-44s %12.0f %12.0f %-7s %6s  >= %-5s %s\n' "$1" "$2" "$3" "$4" "$q" "$5" "$(verdict "$q" "$5")"
}
echo
echo "metering benchmarks: $(nproc) CPUs ($CPU), $MEM RAM, PostgreSQL $SERVER_VERSION"
echo "medians of $ROUNDS alternating rounds; fsync and synchronous_commit on; huge pages $(cluster_huge_pages)"
printf '%-44s %12s %12s %-7s %6s  %-8s\n' figure ours baseline unit ratio target
row "1  ingest() vs INSERT ON CONFLICT (8 clients)" "$m1o" "$m1p" tps 0.85
row "1b ingest() vs INSERT, 1-index table" "$m1o" "$m1i" tps 0.85
row "2  ingest_batch(1000) vs COPY" "$m2o" "$m2p" ev/s 0.80
row "2b ingest_batch(1000) vs COPY, 1-index table" "$m2o" "$m2i" ev/s 0.80
row "2c ingest_batch(JSON text) vs COPY" "$m2t" "$m2p" ev/s 0.80
row "2e ingest_batch(1000) vs INSERT jsonb_to_recordset" "$m2o" "$m2s" ev/s 0.90
row "2r rollup step vs ingest_batch (worker paused)" "$m2rr" "$m2ri" ev/s 2
row "3  COPY events_import vs COPY plain" "$m3o" "$m3p" rows/s 0.90
row "3b COPY events_import vs COPY 1-index table" "$m3o" "$m3i" rows/s 0.90
row "3c COPY metering.events (row trigger) vs plain" "$m3t" "$m3p" rows/s 0.90
printf '%-44s %12.0f %12s %-7s %6s  >= %-5s %s\n' "2d ingest_batch, absolute" "$m2o" - ev/s - 100000 \
    "$(verdict "$m2o" 100000)"
echo
pair_ratios() {  # name of ours array, name of baseline array -> median of per-round ratios
    local -n a=$1 b=$2
    local i out=()
    for i in "${!a[@]}"; do out+=("$(ratio "${a[i]}" "${b[i]}")"); done
    printf "%.2f (rounds %s)" "$(median "${out[@]}")" "${out[*]}"
}
echo "per round (each round runs ours, then the baselines, on freshly truncated tables):"
echo "  1  ingest ${f1_ours[*]} | plain ${f1_plain[*]} | 1idx ${f1_1idx[*]} tps"
echo "  2  ingest_batch ${f2_ours[*]} | JSON text ${f2_text[*]} | COPY plain ${f2_plain[*]} | COPY 1idx ${f2_1idx[*]} ev/s"
echo "  2e INSERT ... SELECT FROM jsonb_to_recordset ${f2_sql[*]} ev/s"
echo "  2r ingest_batch ${f2r_ingest[*]} | rollup step ${f2r_rollup[*]} ev/s on the server's clock (wall clock, connection included: ${f2r_ingest_wall[*]} | ${f2r_rollup_wall[*]});"
echo "     a step of $EVENTS events makes $f2r_groups customer x meter x period groups (plans: ${BENCH_OUT:-build/bench}/step_plans.txt)"
echo "  3  COPY events_import ${f3_ours[*]} | COPY metering.events ${f3_trigger[*]} | plain ${f3_plain[*]} | 1idx ${f3_1idx[*]} rows/s"
echo "median of per-round ratios: 1 $(pair_ratios f1_ours f1_plain), 1b $(pair_ratios f1_ours f1_1idx)"
echo "                            2 $(pair_ratios f2_ours f2_plain), 2e $(pair_ratios f2_ours f2_sql), 2r $(pair_ratios f2r_rollup f2r_ingest)"
echo "                            3 $(pair_ratios f3_ours f3_plain)"
if [ -s "$WORK/figure4.txt" ]; then
    echo
    cat "$WORK/figure4.txt"
fi

# --- Figure 5: the billing run over 10 million events (its own cluster) ----------
if [ "${BENCH_CP:-1}" != 0 ]; then
    cluster_stop
    bash "$HERE/billing_run.sh"
fi
