#!/usr/bin/env bash
# make demo: build, start a throwaway cluster, load a small SaaS example, print it.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s -j2 && make -s install
source test/lib/cluster.sh
cluster_start
createdb demo
psql -X -q -d demo -v ON_ERROR_STOP=1 -f test/demo/saas.sql
echo
echo "(the cluster was throwaway; it is stopped now)"
