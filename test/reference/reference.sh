#!/usr/bin/env bash
# docs/reference.md against a fresh install (test/reference/reference.py says what is
# compared). The library is preloaded so that every metering.* setting exists
# (metering.rollup_databases is defined only then).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/cluster.sh
source "$ROOT/test/lib/cluster.sh"
started=$SECONDS
cluster_start "shared_preload_libraries = 'metering'" "metering.rollup_databases = 'reference'"
"$PGBIN/createdb" reference
"$PGBIN/psql" -X -q -d reference -c "CREATE EXTENSION metering"
PATH="$PGBIN:$PATH" PGDATABASE=reference /usr/bin/python3 "$HERE/reference.py"
echo "reference: $((SECONDS - started)) s"
cluster_stop
