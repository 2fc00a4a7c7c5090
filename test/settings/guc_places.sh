#!/usr/bin/env bash
# metering.* settings are honoured wherever Postgres takes settings: the library
# defines every GUC before it reserves the prefix "metering", so a value set
# before the library loads (postgresql.conf via ALTER SYSTEM, ALTER DATABASE,
# ALTER ROLE, SET early in a session) is kept, not dropped with
# 'invalid configuration parameter name ... "metering" is now a reserved prefix'.
# An unknown metering.* name is still refused. Needs the extension installed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/cluster.sh
source "$ROOT/test/lib/cluster.sh"
cluster_start
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -At)
failures=0

# Runs SQL in a new session (a backend that has not loaded the library yet) and
# compares its output, warnings included, with what is expected.
expect() {
    local what=$1 expected=$2; shift 2
    local got
    got=$("${PSQL[@]}" "$@" 2>&1) || true
    if [ "$got" = "$expected" ]; then
        echo "guc_places: ok: $what"
    else
        echo "guc_places: FAILED: $what"; echo "  expected: $expected"; echo "  got:      $got"
        failures=$((failures + 1))
    fi
}

"${PSQL[@]}" -d postgres >/dev/null <<'SQL'
CREATE DATABASE gucs;
CREATE ROLE guc_app LOGIN;
SQL
"${PSQL[@]}" -d gucs >/dev/null <<'SQL'
CREATE EXTENSION metering;
GRANT USAGE ON SCHEMA metering TO guc_app;
GRANT EXECUTE ON FUNCTION metering._grace_period() TO guc_app;
-- one subscription whose first daily period ended 90 minutes ago: close_periods
-- issues its invoice with a grace period of 1 hour (the default), not with 2 hours
SELECT metering.create_customer('g1');
SELECT metering.create_plan('daily', 'USD', '1 day', 1);
SELECT metering.subscribe('g1', 'daily', now() - interval '1 day 90 minutes');
SQL
grace="SELECT metering._grace_period(), current_setting('metering.max_future_skew');"
closes="BEGIN; SELECT metering.close_periods(); ROLLBACK;"

expect "default" "01:00:00|5min" -d gucs -c "$grace"
expect "default: close_periods issues the invoice" "1" -d gucs -c "$closes"

# SET before anything loads the library
expect "SET before first use" "05:00:00|10min" -d gucs \
    -c "SET metering.close_grace_period = '5h'; SET metering.max_future_skew = '10min';" -c "$grace"

# ALTER SYSTEM (postgresql.auto.conf) and a reload; Postgres 15's ALTER SYSTEM
# takes only a parameter the session knows, hence the LOAD
"${PSQL[@]}" -d postgres -c "LOAD 'metering'" -c "ALTER SYSTEM SET metering.close_grace_period = '2h'" \
    -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
expect "ALTER SYSTEM + reload" "02:00:00|5min" -d gucs -c "$grace"
expect "ALTER SYSTEM: close_periods waits" "0" -d gucs -c "$closes"
"${PSQL[@]}" -d postgres -c "LOAD 'metering'" -c "ALTER SYSTEM RESET metering.close_grace_period" \
    -c "SELECT pg_reload_conf()" >/dev/null
sleep 1

# ALTER DATABASE (the setting of attack 3 in issue 9)
"${PSQL[@]}" -d postgres -c "ALTER DATABASE gucs SET metering.close_grace_period = '3h'"
expect "ALTER DATABASE" "03:00:00|5min" -d gucs -c "$grace"
expect "ALTER DATABASE: close_periods waits" "0" -d gucs -c "$closes"

# ALTER ROLE, for a role that is not a superuser (more specific than the database's)
"${PSQL[@]}" -d postgres -c "ALTER ROLE guc_app SET metering.close_grace_period = '4h'"
expect "ALTER ROLE" "04:00:00|5min" -d gucs -U guc_app -c "$grace"
"${PSQL[@]}" -d postgres -c "ALTER ROLE guc_app IN DATABASE gucs SET metering.max_future_skew = '7min'"
expect "ALTER ROLE IN DATABASE" "04:00:00|7min" -d gucs -U guc_app -c "$grace"

# the prefix is still reserved: a misspelt name is reported once the library loads
expect "unknown name refused" 'WARNING:  invalid configuration parameter name "metering.close_grace", removing it
DETAIL:  "metering" is now a reserved prefix.
01:00:00' -d postgres -c "SET metering.close_grace = '5h'" -c "LOAD 'metering'" -c "SELECT current_setting('metering.close_grace_period')::interval"

cluster_stop
if [ "$failures" -gt 0 ]; then
    echo "guc_places: $failures FAILED"
    exit 1
fi
echo "guc_places: ok"
