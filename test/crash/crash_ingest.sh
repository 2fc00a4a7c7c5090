#!/usr/bin/env bash
# Crash test: no acknowledged event is lost when the server dies.
#
# CLIENTS loops ingest events, one per transaction (psql -c in autocommit), and
# append each event_id|customer_id|idempotency_key that psql prints to a file
# per client: psql prints a row only once the server reported the command
# complete, which happens after the commit record was flushed (fsync on,
# synchronous_commit on). After RUN_SECONDS the postmaster gets kill -9; the
# cluster is restarted (crash recovery) and every acknowledged event must be in
# metering.events with its customer and key, with no duplicate idempotency key.
# Environment: CRASH_CLIENTS (4), CRASH_RUN_SECONDS (6).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CLIENTS=${CRASH_CLIENTS:-4}
RUN_SECONDS=${CRASH_RUN_SECONDS:-6}
CUSTOMERS=50

# shellcheck source=../lib/cluster.sh
source "$ROOT/test/lib/cluster.sh"
cluster_start 'fsync = on' 'synchronous_commit = on'
WORK=$(mktemp -d /tmp/metering-crash.XXXXXX)
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
sql "CREATE EXTENSION amcheck" 2>/dev/null && HAVE_AMCHECK=1 || HAVE_AMCHECK=0
sql "DO \$\$ BEGIN
        FOR i IN 1..$CUSTOMERS LOOP PERFORM metering.create_customer('c' || i); END LOOP;
        PERFORM metering.create_meter('calls', 'count');
     END \$\$"

# One client: a new connection and transaction per event until the stop file
# appears. A failed psql (the server is gone) prints nothing to stdout.
client() {
    local id=$1 n=0 c
    while [ ! -e "$WORK/stop" ]; do
        n=$((n + 1))
        c=c$((RANDOM % CUSTOMERS + 1))
        "$PGBIN/psql" -X -q -At -d crash -c \
            "SELECT metering.ingest('$c', 'calls', 1, now(), 'k-$id-$n'), '$c', 'k-$id-$n'" \
            >>"$WORK/acked.$id" 2>>"$WORK/client.$id.log" || sleep 0.05
    done
}
for id in $(seq 1 "$CLIENTS"); do
    : >"$WORK/acked.$id"
    client "$id" &
    LOOP_PIDS+=($!)
done

sleep "$RUN_SECONDS"

# Crash: stop the postmaster first so that it forks no more children, list
# them, then kill -9 it. Its children exit when they notice it is gone.
PM_PID=$(head -n 1 "$CLUSTER_DIR/data/postmaster.pid")
kill -STOP "$PM_PID"
CHILDREN=$(ps -o pid= --ppid "$PM_PID" || true)
kill -9 "$PM_PID"
before_kill=$(cat "$WORK"/acked.* | wc -l)
echo "crash test: killed postmaster $PM_PID after ${RUN_SECONDS}s (${before_kill} events acknowledged so far)"

touch "$WORK/stop"
for pid in "${LOOP_PIDS[@]}"; do wait "$pid" || true; done
LOOP_PIDS=()
for _ in $(seq 1 100); do
    alive=0
    for pid in $CHILDREN; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
done
for pid in $CHILDREN; do
    if kill -0 "$pid" 2>/dev/null; then
        echo "crash test: server process $pid outlived the postmaster by 10 s; killing it" >&2
        kill -9 "$pid" 2>/dev/null || true
    fi
done
while kill -0 "$PM_PID" 2>/dev/null; do sleep 0.1; done

# pg_ctl warns about the stale postmaster.pid: show its output only on failure.
cluster_restart 2>"$WORK/restart.log" || { cat "$WORK/restart.log" >&2; exit 1; }
grep -q "database system was interrupted\|not properly shut down" "$CLUSTER_DIR/server.log" ||
    { echo "crash test: the restart did not go through crash recovery" >&2; exit 1; }

cat "$WORK"/acked.* >"$WORK/acked.all"
ACKED=$(wc -l <"$WORK/acked.all")
if [ "$ACKED" -lt 50 ]; then
    echo "crash test: only $ACKED events acknowledged; the clients did not run" >&2
    cat "$WORK"/client.*.log >&2
    exit 1
fi

"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d crash <<EOF
CREATE TABLE public.acked (event_id bigint, customer_id text, idempotency_key text);
\copy public.acked FROM '$WORK/acked.all' WITH (DELIMITER '|')
EOF
MISSING=$(sql "SELECT count(*) FROM public.acked a WHERE NOT EXISTS (
                 SELECT 1 FROM metering.events e
                 WHERE e.event_id = a.event_id AND e.customer_id = a.customer_id
                   AND e.idempotency_key = a.idempotency_key)")
DUPLICATE_KEYS=$(sql "SELECT count(*) FROM (SELECT 1 FROM metering.events
                        WHERE idempotency_key IS NOT NULL
                        GROUP BY customer_id, idempotency_key HAVING count(*) > 1) d")
STORED=$(sql "SELECT count(*) FROM metering.events")
# The keys and the events agree: each keyed event has its key row, each key row its event.
UNMATCHED_KEYS=$(sql "SELECT count(*) FROM metering.events e FULL JOIN metering.idempotency_keys k
                        ON k.customer_id = e.customer_id AND k.idempotency_key = e.idempotency_key
                       AND k.event_id = e.event_id
                      WHERE (e.idempotency_key IS NOT NULL OR k.event_id IS NOT NULL)
                        AND (e.event_id IS NULL OR k.event_id IS NULL)")
# Every index of the keys and of the months of events (made during the run) is valid.
INDEXES="SELECT i.indexrelid, i.indisvalid, a.amname FROM pg_index i
         JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
         WHERE i.indrelid = 'metering.idempotency_keys'::regclass
            OR i.indrelid IN (SELECT p.partition FROM metering._event_partitions() p)"
INDEX_VALID=$(sql "SELECT bool_and(x.indisvalid) FROM ($INDEXES) x")
# amcheck, when installed: the btrees are consistent and hold every heap row.
AMCHECK=skipped
if [ "$HAVE_AMCHECK" = 1 ]; then
    if sql "SELECT count(bt_index_check(x.indexrelid, true)) FROM ($INDEXES) x WHERE x.amname = 'btree'" >/dev/null; then
        AMCHECK=ok
    else
        AMCHECK=failed
    fi
fi

echo "crash test: $ACKED acknowledged, $MISSING missing ($STORED stored, $DUPLICATE_KEYS duplicate keys, $UNMATCHED_KEYS keys without their event or events without their key, indexes valid: $INDEX_VALID, amcheck: $AMCHECK)"
if [ "$MISSING" != 0 ] || [ "$DUPLICATE_KEYS" != 0 ] || [ "$UNMATCHED_KEYS" != 0 ] || [ "$INDEX_VALID" != t ] \
   || [ "$AMCHECK" = failed ]; then
    echo "crash test: FAILED" >&2
    exit 1
fi
