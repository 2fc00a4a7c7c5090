#!/usr/bin/env bash
# make test: every suite, on a throwaway cluster this script starts and stops.
# TEST_DESTDIR: install under this root (a private copy of Postgres made with
# cp -a --parents /usr/lib/postgresql/15 /usr/share/postgresql/15 "$TEST_DESTDIR", run from /:
# GNU cp 9.1 fails on --parents with absolute paths elsewhere)
# and run that copy's server, instead of installing into the system's Postgres.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

step() { printf '\n==== %s ====\n' "$*"; }

step "build and install"
make -s -j2
if [ -n "${TEST_DESTDIR:-}" ]; then
    make -s install DESTDIR="$TEST_DESTDIR"
    PGBIN=${PGBIN:-$TEST_DESTDIR$(pg_config --bindir)}
    export PGBIN
else
    make -s install
fi

step "PGXN META.json agrees with metering.control (test/pgxn)"
/usr/bin/python3 test/pgxn/meta_json.py

step "core unit tests (GoogleTest, ctest)"
cmake -S . -B build/unit -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build/unit -j2 >/dev/null
(cd build/unit && ctest --output-on-failure)

step "fuzz targets (test/fuzz: libFuzzer, ASan + UBSan), 20 s each"
bash test/fuzz/run.sh 20

source test/lib/cluster.sh
# The suites run with the rollup worker on (the library preloaded) on the regress and
# pgTAP databases; the isolation specs make the steps explicit and run without it, and
# pg_regress runs again on a cluster without the library preloaded, below.
cluster_start "shared_preload_libraries = 'metering'" "metering.rollup_interval = '50ms'" \
    "metering.rollup_databases = 'contrib_regression, tap'"

step "pg_regress (sql/, expected/), rollup worker on"
if ! make -s installcheck; then
    cat regression.diffs 2>/dev/null | head -200
    exit 1
fi

step "isolation specs (test/isolation)"
specs=$(cd test/isolation/specs && ls *.spec | sed 's/\.spec$//')
isolation_dir=$(dirname "$(pg_config --pgxs)")/../test/isolation
mkdir -p build/isolation
if ! "$isolation_dir/pg_isolation_regress" --inputdir=test/isolation --outputdir=build/isolation \
        --dbname=isolation_regression $specs; then
    cat build/isolation/regression.diffs 2>/dev/null | head -200
    exit 1
fi

step "pgTAP suites (test/pgtap, pg_prove)"
createdb tap
pg_prove -d tap test/pgtap/*.sql

cluster_stop

step "pg_regress again, without the rollup worker (the library loaded on first use)"
cluster_start
if ! make -s installcheck; then
    cat regression.diffs 2>/dev/null | head -200
    exit 1
fi
cluster_stop

step "upgrade from 0.1.0 (test/upgrade)"
bash test/upgrade/upgrade.sh

step "dump and restore (test/restore)"
bash test/restore/dump_restore.sh

step "client examples: Python (psycopg 3) and Node.js (node-postgres) (test/examples)"
bash test/examples/run.sh

step "stress test (test/stress): concurrent ingest while periods close"
for t in test/stress/*.sh; do bash "$t"; done

step "metering.* settings in every place Postgres takes them (test/settings)"
for t in test/settings/*.sh; do bash "$t"; done

step "close_periods scheduled by pg_cron (test/cron)"
for t in test/cron/*.sh; do bash "$t"; done

step "crash test (test/crash)"
for t in test/crash/*.sh; do bash "$t"; done

step "docs/reference.md against the catalog of a fresh install; its examples run (test/reference)"
bash test/reference/reference.sh

step "all suites passed"
