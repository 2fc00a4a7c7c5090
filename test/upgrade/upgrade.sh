#!/usr/bin/env bash
# Upgrade in place: 0.1.0 installed and used (invoices, late usage, counters, a void),
# then ALTER EXTENSION metering UPDATE. Checks that the catalog equals a fresh install of
# the current version (test/upgrade/catalog.sql says what it covers), that every row is
# kept, and that billing goes on correctly (test/upgrade/scenario_after.sql).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/cluster.sh
source "$ROOT/test/lib/cluster.sh"
started=$SECONDS
current=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$ROOT/metering.control")
cluster_start
OUT=$(mktemp -d /tmp/metering-upgrade.XXXXXX)
psql_do() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

"$PGBIN/createdb" fresh
"$PGBIN/createdb" upgraded
psql_do -d fresh -c "CREATE EXTENSION metering"
psql_do -d upgraded -c "CREATE EXTENSION metering VERSION '0.1.0'"
# Grants of the users' own on the events (the update makes the table anew, and gives them again).
psql_do -d postgres -c "CREATE ROLE upgrade_reporter" -c "CREATE ROLE upgrade_loader"
for db in fresh upgraded; do
    psql_do -d "$db" -c "GRANT SELECT ON metering.events TO upgrade_reporter" \
        -c "GRANT INSERT (customer_id, meter, value, occurred_at) ON metering.events TO upgrade_loader"
done
psql_do -d upgraded -f "$HERE/scenario_before.sql" >/dev/null
psql_do -d upgraded -f "$HERE/data.sql" -o "$OUT/data_before.txt"
psql_do -d upgraded -c "ALTER EXTENSION metering UPDATE"
version=$(psql_do -d upgraded -At -c "SELECT extversion FROM pg_extension WHERE extname = 'metering'")
[ "$version" = "$current" ] || { echo "upgrade: FAILED: version $version after UPDATE, expected $current"; exit 1; }

# The partitions of metering.events are made at run time and are not the extension's:
# the update made one per month of the old events, the same months are made in the
# fresh database (as ingest makes them), and catalog.sql compares them too.
months=$(psql_do -d upgraded -At -c "SELECT string_agg(quote_literal(from_ts), ',') FROM metering._event_partitions()
                                      WHERE partition::text ~ '^metering[.]events_[0-9]'")
psql_do -d fresh -c "SELECT metering.create_event_partitions(m, m + interval '1 day')
                     FROM unnest(ARRAY[$months]::timestamptz[]) m" >/dev/null
psql_do -d fresh -f "$HERE/catalog.sql" -o "$OUT/catalog_fresh.txt"
psql_do -d upgraded -f "$HERE/catalog.sql" -o "$OUT/catalog_upgraded.txt"
if ! diff -u "$OUT/catalog_fresh.txt" "$OUT/catalog_upgraded.txt" > "$OUT/catalog.diff"; then
    echo "upgrade: FAILED: the catalog after UPDATE differs from a fresh $current install (- fresh, + upgraded):"
    head -100 "$OUT/catalog.diff"
    exit 1
fi
# Every event kept its transaction (0.1.0's events have 1: the first rollup step of 0.2.0
# consumes them) and the identity goes on after the last id.
moved=$(psql_do -d upgraded -At -c "SELECT count(*) FILTER (WHERE txid <> 1) || ' ' ||
                                           (pg_sequence_last_value('metering.events_event_id_seq') >= max(event_id))
                                    FROM metering.events")
[ "$moved" = "0 true" ] || { echo "upgrade: FAILED: events moved with another txid, or the identity restarted ($moved)"; exit 1; }
psql_do -d upgraded -f "$HERE/data.sql" -o "$OUT/data_after.txt"
if ! diff -u "$OUT/data_before.txt" "$OUT/data_after.txt"; then
    echo "upgrade: FAILED: rows changed by the update"; exit 1
fi
psql_do -d upgraded -f "$HERE/scenario_after.sql" >/dev/null
echo "upgrade: 0.1.0 -> $version: catalog equal to a fresh install ($(grep -c . "$OUT/catalog_fresh.txt") lines compared)," \
     "$(grep -c . "$OUT/data_before.txt") rows kept, billing goes on; $((SECONDS - started)) s"
rm -rf "$OUT"
psql_do -d postgres -c "DROP ROLE upgrade_reporter" -c "DROP ROLE upgrade_loader" 2>/dev/null || true
cluster_stop
