#!/usr/bin/env bash
# Crash test of the billing run: the server dies while the rollup worker steps and
# close_periods bills. Clients ingest back-dated events (January to March 2025, one per
# transaction, each with a key) while the worker rolls up every 20 ms and a session
# closes the periods as they end, again and again; after CRASH_RUN_SECONDS the
# postmaster gets kill -9, the cluster goes through crash recovery, and then:
#   - every acknowledged event is stored once;
#   - a last step and close (the subscriptions end on April 1) bill every event once:
#     the quantities billed per period add up to the events, so do the live invoices'
#     totals (1 per call, no base fee), and each period has one live regular invoice;
#   - the rollups hold every event once.
# Environment: CRASH_CLIENTS (3), CRASH_RUN_SECONDS (6).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CLIENTS=${CRASH_CLIENTS:-3}
RUN_SECONDS=${CRASH_RUN_SECONDS:-6}
CUSTOMERS=20

# shellcheck source=../lib/cluster.sh
source "$ROOT/test/lib/cluster.sh"
cluster_start 'fsync = on' 'synchronous_commit = on' "shared_preload_libraries = 'metering'" \
    "metering.rollup_databases = 'crash'" "metering.rollup_interval = '20ms'"
WORK=$(mktemp -d /tmp/metering-crash-billing.XXXXXX)
LOOP_PIDS=()
cleanup() {
    local pid
    for pid in "${LOOP_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    cluster_stop
    rm -rf "$WORK"
}
trap cleanup EXIT
export PGCONNECT_TIMEOUT=3
sql() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d crash -c "$1"; }

"$PGBIN/psql" -X -q -d postgres -c "CREATE DATABASE crash"
sql "CREATE EXTENSION metering"
sql "DO \$\$ BEGIN
        PERFORM metering.create_meter('calls', 'count');
        PERFORM metering.create_plan('pro', 'USD', '1 month', 0);
        PERFORM metering.add_charge('pro', 'calls', '{\"model\": \"per_unit\", \"unit_price\": 1}');
        FOR i IN 1..$CUSTOMERS LOOP
            PERFORM metering.create_customer('c' || i);
            PERFORM metering.end_subscription(metering.subscribe('c' || i, 'pro', '2025-01-01 00:00 UTC'),
                                              '2025-04-01 00:00 UTC');
        END LOOP;
     END \$\$"

# One client: an event per transaction, due at a random instant of January to March.
client() {
    local id=$1 n=0 c
    while [ ! -e "$WORK/stop" ]; do
        n=$((n + 1))
        c=c$((RANDOM % CUSTOMERS + 1))
        "$PGBIN/psql" -X -q -At -d crash -c \
            "SELECT metering.ingest('$c', 'calls', 1, '2025-01-01 00:00 UTC'::timestamptz + random() * interval '89 days', 'k-$id-$n'), '$c', 'k-$id-$n'" \
            >>"$WORK/acked.$id" 2>>"$WORK/client.$id.log" || sleep 0.05
    done
}
# The closer: the periods close one after the other, and again (late usage).
closer() {
    local as_of
    while [ ! -e "$WORK/stop" ]; do
        for as_of in '2025-02-01 02:00' '2025-03-01 02:00' '2025-04-01 02:00'; do
            "$PGBIN/psql" -X -q -At -d crash -c "SELECT metering.close_periods('$as_of UTC')" \
                >/dev/null 2>>"$WORK/closer.log" || sleep 0.05
        done
    done
}
for id in $(seq 1 "$CLIENTS"); do
    : >"$WORK/acked.$id"
    client "$id" &
    LOOP_PIDS+=($!)
done
closer &
LOOP_PIDS+=($!)

sleep "$RUN_SECONDS"
# What was running when the server died: the worker's step, a close, ingests.
running=$(sql "SELECT string_agg(DISTINCT CASE WHEN backend_type = 'metering rollup worker' THEN 'rollup step'
                                          WHEN query LIKE '%close_periods%' THEN 'close_periods'
                                          WHEN query LIKE '%ingest%' THEN 'ingest' END, ', ')
               FROM pg_stat_activity WHERE state = 'active' AND datname = 'crash'" 2>/dev/null || true)
PM_PID=$(head -n 1 "$CLUSTER_DIR/data/postmaster.pid")
kill -STOP "$PM_PID"
CHILDREN=$(ps -o pid= --ppid "$PM_PID" || true)
kill -9 "$PM_PID"
echo "crash billing test: killed postmaster $PM_PID after ${RUN_SECONDS}s while running: ${running:-?}"

touch "$WORK/stop"
for pid in "${LOOP_PIDS[@]}"; do wait "$pid" || true; done
LOOP_PIDS=()
for _ in $(seq 1 100); do
    alive=0
    for pid in $CHILDREN; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
done
for pid in $CHILDREN; do kill -9 "$pid" 2>/dev/null || true; done
while kill -0 "$PM_PID" 2>/dev/null; do sleep 0.1; done
cluster_restart 2>"$WORK/restart.log" || { cat "$WORK/restart.log" >&2; exit 1; }

cat "$WORK"/acked.* >"$WORK/acked.all"
ACKED=$(wc -l <"$WORK/acked.all")
[ "$ACKED" -ge 20 ] || { echo "crash billing test: only $ACKED events acknowledged" >&2; cat "$WORK"/client.*.log >&2; exit 1; }
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d crash <<EOF
CREATE TABLE public.acked (event_id bigint, customer_id text, idempotency_key text);
\copy public.acked FROM '$WORK/acked.all' WITH (DELIMITER '|')
EOF
sql "SELECT metering.refresh_usage()" >/dev/null
sql "SELECT metering.close_periods('2025-04-02 00:00 UTC')" >/dev/null
read -r missing events rolled billed amount extra regular <<<"$(sql "SELECT
    (SELECT count(*) FROM public.acked a WHERE NOT EXISTS (SELECT 1 FROM metering.events e
        WHERE e.event_id = a.event_id AND e.customer_id = a.customer_id AND e.idempotency_key = a.idempotency_key)),
    (SELECT count(*) FROM metering.events),
    (SELECT sum(events) FROM metering.usage_rollups),
    (SELECT sum(quantity) FROM metering.billed_lines),
    (SELECT sum(total) FROM metering.invoices WHERE status <> 'void'),
    (SELECT count(*) FROM (SELECT 1 FROM metering.invoices WHERE kind = 'regular' AND status <> 'void'
                           GROUP BY subscription_id, period_start HAVING count(*) > 1) d),
    (SELECT count(*) FROM metering.invoices WHERE kind = 'regular' AND status <> 'void')" | tr '|' ' ')"
echo "crash billing test: $ACKED acknowledged, $missing missing; $events events, $rolled rolled up, $billed billed," \
     "amount $amount, $regular regular invoices, $extra periods with two"
if [ "$missing" != 0 ] || [ "$rolled" != "$events" ] || [ "$billed" != "$events" ] || [ "$amount" != "$events.00" ] ||
   [ "$extra" != 0 ] || [ "$regular" != $((3 * CUSTOMERS)) ]; then
    echo "crash billing test: FAILED" >&2
    exit 1
fi
