#!/usr/bin/env bash
# Bytes per event of the event store: the events' heap and indexes, and the idempotency
# keys, after loading EVENTS events (1,000,000) through the bulk path, once without
# idempotency keys and once with one per event (36 characters, as a UUID). The events
# are due over about a year (12 months), for 10,000 customers and 2 meters, with
# properties like Figure 2's ({"region": "eu"|"us"|"ap"}). Works with any version of
# metering (0.1.0's single table or 0.2.0's monthly partitions and keys table).
# Environment: EVENTS; BENCH_DESTDIR (install this checkout under that root and run its
# server, as run.sh) or PGBIN (a server with metering installed).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
EVENTS=${EVENTS:-1000000}
if [ -n "${BENCH_DESTDIR:-}" ]; then
    make -s -j2 -C "$ROOT" >/dev/null && make -s -C "$ROOT" install DESTDIR="$BENCH_DESTDIR" >/dev/null
    PGBIN=${PGBIN:-$BENCH_DESTDIR$(pg_config --bindir)}
fi
PGBIN=${PGBIN:-$(pg_config --bindir)}
export PGBIN
# shellcheck source=lib.sh
source "$ROOT/test/bench/lib.sh"
cluster_start 'shared_buffers = 1GB' 'max_wal_size = 4GB' 'checkpoint_timeout = 30min'
sql() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -At -d size "$@"; }

measure() {  # keyed: true|false
    "$PGBIN/psql" -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS size" -c "CREATE DATABASE size"
    sql <<'SQL' >/dev/null
SET client_min_messages = warning;
CREATE EXTENSION metering;
INSERT INTO metering.customers (customer_id, name)
SELECT 'cust-' || i, 'Customer ' || i FROM generate_series(1, 10000) i;
SELECT metering.create_meter('api_calls', 'count'), metering.create_meter('tokens', 'sum');
SQL
    local t0 t1
    t0=$(date +%s%N)
    sql -v keyed="$1" -v events="$EVENTS" <<'SQL'
INSERT INTO metering.events_import (customer_id, meter, value, occurred_at, idempotency_key, properties)
SELECT 'cust-' || (i % 10000 + 1), CASE WHEN i % 2 = 0 THEN 'api_calls' ELSE 'tokens' END,
       CASE WHEN i % 2 = 0 THEN 1 ELSE i % 4000 + 1 END,
       timestamptz '2025-01-01 00:00Z' + i * (interval '365 days' / :events),
       CASE WHEN :keyed THEN md5(i::text)::uuid::text END,
       jsonb_build_object('region', (ARRAY['eu', 'us', 'ap'])[i % 3 + 1])
FROM generate_series(1, :events) i;
SQL
    t1=$(date +%s%N)
    sql -c 'VACUUM ANALYZE' >/dev/null
    # Every relation of the store: events (or its months), their TOAST, FSM and VM
    # (pg_table_size), their indexes, and the keys table when there is one.
    sql -F ' ' -v keyed="$1" -v secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')" <<'SQL'
WITH store AS (
    SELECT relid AS rel, 'events' AS part FROM pg_partition_tree('metering.events') WHERE isleaf
    UNION ALL
    SELECT 'metering.events'::regclass, 'events' WHERE (SELECT c.relkind FROM pg_class c
                                                         WHERE c.oid = 'metering.events'::regclass) = 'r'
    UNION ALL
    SELECT to_regclass('metering.idempotency_keys'), 'keys' WHERE to_regclass('metering.idempotency_keys') IS NOT NULL
),
sizes AS (
    SELECT part, count(*) AS relations, sum(pg_table_size(rel)) AS heap, sum(pg_indexes_size(rel)) AS indexes
    FROM store GROUP BY part
),
n AS (SELECT count(*) AS events FROM metering.events)
SELECT format('metering %s keys=%s events=%s partitions=%s load=%ss | events heap %s B/event, indexes %s B/event | keys heap %s B/event, index %s B/event | total %s B/event (%s MB)',
              (SELECT extversion FROM pg_extension WHERE extname = 'metering'), :'keyed', n.events, (SELECT relations FROM sizes WHERE part = 'events'), :'secs',
              round(e.heap::numeric / n.events, 1), round(e.indexes::numeric / n.events, 1),
              round(coalesce(k.heap, 0)::numeric / n.events, 1), round(coalesce(k.indexes, 0)::numeric / n.events, 1),
              round((e.heap + e.indexes + coalesce(k.heap + k.indexes, 0))::numeric / n.events, 1),
              round((e.heap + e.indexes + coalesce(k.heap + k.indexes, 0)) / 1048576.0))
FROM n, (SELECT * FROM sizes WHERE part = 'events') e LEFT JOIN (SELECT * FROM sizes WHERE part = 'keys') k ON true;
SQL
}

echo "event store size, $EVENTS events through the bulk path"
measure false
measure true
cluster_stop
