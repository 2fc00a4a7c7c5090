#!/usr/bin/env bash
# Instructions per event of the ingest paths (callgrind, in a single-user backend), which
# the load of a shared machine does not change, unlike the timings of run.sh:
#   ingest       2,000 metering.ingest calls with idempotency keys (inside metering_ingest)
#   batch        20 ingest_batch calls of 1,000 keyed events (inside metering_ingest_batch)
#   bulk         COPY of 20,000 keyed rows into metering.events_import (inside DoCopy)
#   copy plain   the same rows by COPY into bench.plain_events (inside DoCopy), the baseline
# The months the events are due in exist before (making one is not ingest's steady state).
# Works with any version of metering. Environment: PGBIN (a server with metering installed).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PGBIN=${PGBIN:-$(pg_config --bindir)}
WORK=$(mktemp -d /tmp/metering-instructions.XXXXXX)
chmod 777 "$WORK"
trap 'rm -rf "$WORK"' EXIT
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_postgres "$PGBIN/initdb" -D "$WORK/data" -U postgres -A trust --no-sync >/dev/null
# Set-up, not measured, by a server of its own: the extension, customers, meters, the
# baseline, the batches (setup.sql), the months, and the rows as CSV.
echo "port = 54399
unix_socket_directories = '$WORK'
listen_addresses = ''" >> "$WORK/data/postgresql.conf"
as_postgres "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
psql_do() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p 54399 -U postgres "$@"; }
psql_do -d postgres -c 'CREATE DATABASE bench'
psql_do -d bench -v nbatches=20 -f "$HERE/setup.sql" >/dev/null
psql_do -d bench -c "DO \$\$ BEGIN
                         IF to_regprocedure('metering.create_event_partitions(timestamptz,timestamptz)') IS NOT NULL THEN
                             PERFORM metering.create_event_partitions(now() - interval '40 days', now() + interval '1 day');
                         END IF;
                     END \$\$" \
        -c "COPY (SELECT customer_id, meter, value, occurred_at, due_at, 'c-' || idempotency_key, properties
                  FROM bench.batch_rows) TO '$WORK/rows.csv' (FORMAT csv)"
as_postgres "$PGBIN/pg_ctl" -D "$WORK/data" -w stop >/dev/null

measure() {  # name, function to count inside, statements
    local name=$1 fn=$2 out
    echo "$3" | as_postgres valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.%p" \
        --toggle-collect="$fn" --dump-instr=no "$PGBIN/postgres" --single -D "$WORK/data" bench \
        >"$WORK/$name.log" 2>&1
    out=$(ls -t "$WORK"/cg.* | head -1)
    awk -v name="$name" '/^summary:/ { printf "%-12s %14.0f instructions\n", name, $2 }' "$out"
    [ -n "${KEEP_CALLGRIND:-}" ] && cp "$out" "$KEEP_CALLGRIND.$name" ; rm -f "$WORK"/cg.*
}
ingest=$(for i in $(seq 2000); do
    echo "SELECT metering.ingest('cust-' || ($i % 10000 + 1), 'api_calls', 1, now() - interval '1 hour', 'i-$i');"
done)
batch=$(for b in $(seq 20); do
    echo "SELECT count(*) FROM bench.batches b, metering.ingest_batch(b.doc) WHERE b.id = $b;"
done)
cols='customer_id, meter, value, occurred_at, due_at, idempotency_key, properties'
measure ingest metering_ingest "$ingest"
measure batch metering_ingest_batch "$batch"
measure bulk DoCopy "COPY metering.events_import ($cols) FROM '$WORK/rows.csv' (FORMAT csv);"
measure "copy plain" DoCopy "COPY bench.plain_events ($cols) FROM '$WORK/rows.csv' (FORMAT csv);"
