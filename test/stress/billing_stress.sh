#!/usr/bin/env bash
# Stress test of exactly-once billing, with the rollup worker on (every 20 ms): pgbench clients ingest current and
# back-dated events (January to June 2025) while other sessions close periods
# in a loop and ask for interim invoices. At the end every period is closed and
#   - every event is billed exactly once (the quantities the live invoices billed
#     per period, billed_lines, add up to the events),
#   - the live invoices bill exactly the ingested quantity: the price is 1 per
#     call with no free units and no base fee, so their totals add up to the
#     number of events, late usage included (the subscriptions end on July 1,
#     so the late usage of June gets a last interim invoice);
#   - each period has one live regular invoice.
# Environment: STRESS_SECONDS (8), STRESS_CLIENTS (4).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SECONDS_TO_RUN=${STRESS_SECONDS:-8}
CLIENTS=${STRESS_CLIENTS:-4}

# shellcheck source=../lib/cluster.sh
source "$ROOT/test/lib/cluster.sh"
cluster_start "shared_preload_libraries = 'metering'" "metering.rollup_databases = 'postgres'" "metering.rollup_interval = '20ms'"
WORK=$(mktemp -d /tmp/metering-stress.XXXXXX)
chmod 755 "$WORK"
trap 'cluster_stop; rm -rf "$WORK"' EXIT
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres)

"${PSQL[@]}" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION metering;
SELECT metering.create_meter('calls', 'count');
SELECT metering.create_plan('flat', 'USD', '1 month', 0);
SELECT metering.add_charge('flat', 'calls', '{"model": "per_unit", "unit_price": 1}');
SELECT metering.create_customer('c' || i, timezone => (ARRAY['UTC', 'America/New_York', 'Europe/Berlin'])[1 + i % 3])
FROM generate_series(1, 20) i;
SELECT metering.subscribe('c' || i, 'flat', '2025-01-01 00:00 UTC') FROM generate_series(1, 20) i;
SELECT metering.end_subscription(subscription_id, '2025-07-01 00:00 UTC') FROM metering.subscriptions;
SQL

# One event per transaction, due anywhere from January to June: periods that are
# already closed get late usage.
cat >"$WORK/ingest.pgbench" <<'EOF2'
\set c random(1, 20)
\set s random(0, 15638399)
SELECT metering.ingest('c' || :c, 'calls', 1, '2025-01-01 00:00 UTC'::timestamptz + :s * interval '1 second');
EOF2

# Close periods month by month, over and over, with interim invoices in between.
closer() {
    local end=$((SECONDS + SECONDS_TO_RUN)) m
    while [ $SECONDS -lt $end ]; do
        for m in 02 03 04 05 06 07; do
            "${PSQL[@]}" -c "SELECT metering.close_periods('2025-$m-01 02:00 UTC')" >/dev/null
        done
    done
}
interim() {
    local end=$((SECONDS + SECONDS_TO_RUN)) sub
    while [ $SECONDS -lt $end ]; do
        sub=$((RANDOM % 20 + 1))
        # The period may already be closed (55000): that is expected and skipped.
        "${PSQL[@]}" -c "SELECT metering.bill_now($sub, '2025-06-20 00:00 UTC')" >/dev/null 2>&1 || true
        sleep 0.2
    done
}
closer & closer_pid=$!
interim & interim_pid=$!
"$PGBIN/pgbench" -n -c "$CLIENTS" -j 2 -T "$SECONDS_TO_RUN" -f "$WORK/ingest.pgbench" postgres >"$WORK/pgbench.log" 2>&1 ||
    { cat "$WORK/pgbench.log"; exit 1; }
wait "$closer_pid" "$interim_pid"

result=$("${PSQL[@]}" -At -F ' ' <<'SQL'
SELECT metering.close_periods('2025-07-02 00:00 UTC') >= 0;
SELECT (SELECT count(*) FROM metering.events),
       (SELECT sum(quantity) FROM metering.billed_lines),
       (SELECT count(*) FROM metering.billed_lines),
       (SELECT coalesce(sum(total), 0) FROM metering.invoices WHERE status <> 'void'),
       (SELECT count(*) FROM metering.invoices WHERE kind = 'regular' AND status <> 'void')
         - (SELECT count(*) FROM metering.subscriptions s,
                   metering.billing_periods(s.subscription_id, '2025-01-01', '2025-07-02')),
       (SELECT count(*) FROM metering.invoices WHERE kind = 'interim'),
       (SELECT count(*) FROM metering.invoice_items WHERE kind = 'late_usage');
SQL
)
read -r _ events billed lines amount regular_extra interim late <<<"$(echo $result)"
echo "stress: $events events, $billed billed over $lines period lines, billed amount $amount," \
     "$interim interim invoices, $late late-usage lines, $regular_extra regular invoices more than periods"
[ "$events" -gt 0 ] || { echo "stress: nothing was ingested"; exit 1; }
[ "$billed" = "$events" ] || { echo "stress: FAILED: billed quantity differs from events"; exit 1; }
[ "$amount" = "$events.00" ] || { echo "stress: FAILED: billed amount $amount is not $events"; exit 1; }
[ "$regular_extra" = 0 ] || { echo "stress: FAILED: not one regular invoice per period"; exit 1; }
[ "$late" -gt 0 ] || { echo "stress: FAILED: no late usage was exercised"; exit 1; }
echo "stress: ok"
