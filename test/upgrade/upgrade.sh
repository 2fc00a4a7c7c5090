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
psql_do -d upgraded -f "$HERE/scenario_before.sql" >/dev/null
psql_do -d upgraded -f "$HERE/data.sql" -o "$OUT/data_before.txt"
psql_do -d upgraded -c "ALTER EXTENSION metering UPDATE"
version=$(psql_do -d upgraded -At -c "SELECT extversion FROM pg_extension WHERE extname = 'metering'")
[ "$version" = "$current" ] || { echo "upgrade: FAILED: version $version after UPDATE, expected $current"; exit 1; }

psql_do -d fresh -f "$HERE/catalog.sql" -o "$OUT/catalog_fresh.txt"
psql_do -d upgraded -f "$HERE/catalog.sql" -o "$OUT/catalog_upgraded.txt"
if ! diff -u "$OUT/catalog_fresh.txt" "$OUT/catalog_upgraded.txt" > "$OUT/catalog.diff"; then
    echo "upgrade: FAILED: the catalog after UPDATE differs from a fresh $current install (- fresh, + upgraded):"
    head -100 "$OUT/catalog.diff"
    exit 1
fi
psql_do -d upgraded -f "$HERE/data.sql" -o "$OUT/data_after.txt"
if ! diff -u "$OUT/data_before.txt" "$OUT/data_after.txt"; then
    echo "upgrade: FAILED: rows changed by the update"; exit 1
fi
psql_do -d upgraded -f "$HERE/scenario_after.sql" >/dev/null
echo "upgrade: 0.1.0 -> $version: catalog equal to a fresh install ($(grep -c . "$OUT/catalog_fresh.txt") lines compared)," \
     "$(grep -c . "$OUT/data_before.txt") rows kept, billing goes on; $((SECONDS - started)) s"
rm -rf "$OUT"
cluster_stop
