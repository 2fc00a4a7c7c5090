# shellcheck shell=bash
# Shared by the bench scripts (source it once PGBIN is set): the throwaway cluster of
# test/lib/cluster.sh with its shared memory in huge pages, as on a production server
# (BENCH_HUGE_PAGES=0: not), and the arithmetic of the figures.
export CLUSTER_HUGE_PAGES=${BENCH_HUGE_PAGES:-1}
# shellcheck source=../lib/cluster.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# $1 / $2, two decimals
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
