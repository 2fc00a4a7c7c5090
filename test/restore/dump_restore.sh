#!/usr/bin/env bash
# A dump and restore keeps the billing history as it was (issue 9): a database with
# invoices, late usage, counters, a void and a review (test/upgrade/scenario_before.sql)
# is dumped with pg_dump in custom format (-Fc, restored by pg_restore) and in plain
# format (restored by psql), each into a fresh database; every row of every table of
# the extension is compared, column by column (test/upgrade/data.sql and the internal
# tables), and then ingest and billing go on in the restored database with new ids only
# (test/upgrade/scenario_after.sql).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/cluster.sh
source "$ROOT/test/lib/cluster.sh"
started=$SECONDS
cluster_start
OUT=$(mktemp -d /tmp/metering-restore.XXXXXX)
chmod 777 "$OUT"
psql_do() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

# Every table of the schema, internal ones included, every column, in key order.
snapshot() {
    psql_do -d "$1" -f "$ROOT/test/upgrade/data.sql" -o "$2"
    psql_do -d "$1" -At >> "$2" <<'SQL'
-- (but what is derived from the events and rebuilt after a restore: the rollups, the
-- step's position, the late flags, the write log, and each event's inserting transaction; the months
-- of events, made at run time, are dumped as tables of their own and compared too)
SELECT format('SELECT %L, %s FROM %s t ORDER BY 2', c.oid::regclass,
              (SELECT string_agg(format('t.%I', a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                 AND NOT (a.attname = 'txid' AND (c.relname = 'events' OR c.relname ~ '^events_[0-9]'))),
              c.oid::regclass)
FROM pg_class c WHERE c.relnamespace = 'metering'::regnamespace AND c.relkind IN ('r', 'p')
  AND c.relname NOT IN ('usage_rollups', 'rollup_state', 'late_groups', 'event_writes')
ORDER BY 1 \gexec
SELECT format('SELECT %L, last_value, is_called FROM %s', c.oid::regclass, c.oid::regclass)
FROM pg_class c WHERE c.relnamespace = 'metering'::regnamespace AND c.relkind = 'S' ORDER BY 1 \gexec
SQL
}

"$PGBIN/createdb" source
psql_do -d source -c "CREATE EXTENSION metering"
psql_do -d source -f "$ROOT/test/upgrade/scenario_before.sql" >/dev/null
snapshot source "$OUT/source.txt"
rows=$(grep -c . "$OUT/source.txt")
max_event=$(psql_do -d source -At -c "SELECT max(event_id) FROM metering.events")

restore_and_compare() {
    local format=$1 db=restored_$1
    "$PGBIN/createdb" "$db"
    if [ "$format" = custom ]; then
        cluster_as_owner "$PGBIN/pg_dump" -h "$PGHOST" -p "$PGPORT" -U postgres -Fc -f "$OUT/dump.custom" source
        cluster_as_owner "$PGBIN/pg_restore" -h "$PGHOST" -p "$PGPORT" -U postgres --exit-on-error -d "$db" "$OUT/dump.custom"
    else
        cluster_as_owner "$PGBIN/pg_dump" -h "$PGHOST" -p "$PGPORT" -U postgres -Fp -f "$OUT/dump.sql" source
        psql_do -d "$db" -f "$OUT/dump.sql" >/dev/null
    fi
    snapshot "$db" "$OUT/$db.txt"
    if ! diff -u "$OUT/source.txt" "$OUT/$db.txt" > "$OUT/$db.diff"; then
        echo "dump/restore: FAILED: $format format: rows differ after restore (- source, + restored):"
        head -60 "$OUT/$db.diff"
        exit 1
    fi
    # Billing goes on; events made after the restore get ids the dump never had.
    psql_do -d "$db" -v interim=16.30 -f "$ROOT/test/upgrade/scenario_after.sql" >/dev/null
    local reused
    reused=$(psql_do -d "$db" -At -c "SELECT count(*) FROM metering.events WHERE ingested_at > now() - interval '1 hour'
                                            AND event_id <= $max_event AND idempotency_key LIKE 'mar-%'")
    [ "$reused" = 0 ] || { echo "dump/restore: FAILED: $format format: $reused event ids reused"; exit 1; }
}
restore_and_compare custom
restore_and_compare plain

# Retention survives a dump and restore: the months dropped stay dropped (events_retired
# comes back and refuses what was due then), the keys of the dropped events and the values
# kept of them (retained_values) come back, so a repeat is still a repeat.
"$PGBIN/createdb" retained
psql_do -d retained >/dev/null <<'SQL'
SET timezone = 'UTC';
CREATE EXTENSION metering;
SELECT metering.create_customer('r1'), metering.create_meter('calls', 'count'), metering.create_meter('seats', 'counter');
SELECT metering.create_plan('p', 'USD'), metering.add_charge('p', 'calls', '{"model": "per_unit", "unit_price": 1}');
SELECT metering.subscribe('r1', 'p', '2025-01-01');
SELECT metering.ingest('r1', 'calls', 1, '2025-01-05', 'jan-1'), metering.ingest('r1', 'calls', 1, '2025-03-05', 'mar-1'),
       metering.counter_increment('r1', 'seats', 7, '2025-01-06');
SELECT metering.close_periods('2025-04-02');
SELECT metering.drop_events_before('2025-03-01');
SQL
cluster_as_owner "$PGBIN/pg_dump" -h "$PGHOST" -p "$PGPORT" -U postgres -Fc -f "$OUT/retained.custom" retained
"$PGBIN/createdb" retained_restored
cluster_as_owner "$PGBIN/pg_restore" -h "$PGHOST" -p "$PGPORT" -U postgres --exit-on-error -d retained_restored "$OUT/retained.custom"
got=$(psql_do -d retained_restored -At <<'SQL'
SET timezone = 'UTC';
SELECT concat_ws(' ', metering._retention_horizon(),
       metering.ingest('r1', 'calls', 1, '2025-01-05', 'jan-1') = (SELECT event_id FROM metering.idempotency_keys
                                                                  WHERE idempotency_key = 'jan-1'),
       metering.counter_value('r1', 'seats', '2025-03-10'),
       (SELECT count(*) FROM metering.events));
DO $$ BEGIN
    PERFORM metering.ingest('r1', 'calls', 1, '2025-02-05');
    RAISE EXCEPTION 'an event due before the horizon was taken after the restore';
EXCEPTION WHEN SQLSTATE 'MT024' THEN NULL;
END $$;
SQL
)
[ "$got" = "2025-03-01 00:00:00+00 t 7 1" ] ||
    { echo "dump/restore: FAILED: retention after the restore: $got (want: horizon, repeat recognized, counter 7, 1 event)"; exit 1; }
echo "dump/restore: custom and plain format: $rows rows kept column by column, billing goes on with new ids;" \
     "retention kept (horizon, keys of dropped events, retained values); $((SECONDS - started)) s"
rm -rf "$OUT"
cluster_stop
