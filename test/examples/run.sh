#!/usr/bin/env bash
# The client examples (examples/python with psycopg 3, examples/node with node-postgres),
# each against a fresh database of a throwaway cluster; each must print exactly
# test/examples/expected.out (the examples do the same things in the same order).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/cluster.sh
source "$ROOT/test/lib/cluster.sh"
started=$SECONDS
[ -d "$ROOT/examples/node/node_modules/pg" ] || { echo "examples: run 'npm ci' in examples/node first (make deps does)"; exit 1; }
cluster_start
OUT=$(mktemp -d /tmp/metering-examples.XXXXXX)

run_example() {
    local name=$1; shift
    "$PGBIN/createdb" "example_$name"
    if ! PGDATABASE="example_$name" "$@" > "$OUT/$name.out" 2>&1; then
        echo "examples: FAILED: $name exited with an error:"; cat "$OUT/$name.out"; exit 1
    fi
    if ! diff -u "$HERE/expected.out" "$OUT/$name.out"; then
        echo "examples: FAILED: $name printed something else than test/examples/expected.out (+ printed)"; exit 1
    fi
    echo "examples: $name ok"
}

# Debian's python3, which python3-psycopg is installed for (not a python3 earlier in PATH).
run_example python /usr/bin/python3 "$ROOT/examples/python/app.py"
run_example node node "$ROOT/examples/node/app.js"
echo "examples: both print the expected output; $((SECONDS - started)) s"
rm -rf "$OUT"
cluster_stop
