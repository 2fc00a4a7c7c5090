#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks. Source this file,
# then: cluster_start [extra postgresql.conf lines...]; ... ; cluster_stop.
# It runs as the 'postgres' user when started by root, on a free port, in a
# fresh directory, and exports PGHOST, PGPORT, PGUSER for clients.
# CLUSTER_HUGE_PAGES=1 (the benchmarks): put its shared memory in huge pages, as on a
# production server (below).
PGBIN=${PGBIN:-$(pg_config --bindir)}

cluster_free_port() {
    local port
    for port in $(seq 54320 54999); do
        if ! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && [ ! -e "/tmp/.s.PGSQL.$port" ]; then
            echo "$port"; return 0
        fi
    done
    return 1
}

cluster_as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cluster_start() {
    CLUSTER_DIR=$(mktemp -d /tmp/metering-cluster.XXXXXX)
    chmod 755 "$CLUSTER_DIR"
    [ "$(id -u)" = 0 ] && chown postgres: "$CLUSTER_DIR"
    CLUSTER_PORT=$(cluster_free_port)
    cluster_as_owner "$PGBIN/initdb" -D "$CLUSTER_DIR/data" -U postgres -A trust --no-sync >/dev/null
    {
        echo "port = $CLUSTER_PORT"
        echo "unix_socket_directories = '$CLUSTER_DIR'"
        echo "listen_addresses = ''"
        echo "max_connections = 40"
        echo "max_prepared_transactions = 10"
        for line in "$@"; do echo "$line"; done
    } | cluster_as_owner tee -a "$CLUSTER_DIR/data/postgresql.conf" >/dev/null
    [ "${CLUSTER_HUGE_PAGES:-0}" = 0 ] || cluster_reserve_huge_pages
    cluster_as_owner "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w start >/dev/null
    export PGHOST=$CLUSTER_DIR PGPORT=$CLUSTER_PORT PGUSER=postgres
    trap cluster_stop EXIT
}

# Reserves the huge pages the cluster's shared memory needs (Postgres's own count),
# when run by root and the kernel has fewer free; cluster_stop gives them back.
# huge_pages = try (the default) then takes them. A production server with a large
# shared_buffers reserves them (Postgres's documentation, "Linux Huge Pages").
cluster_reserve_huge_pages() {
    local need free total
    if [ "$(id -u)" != 0 ] || [ ! -w /proc/sys/vm/nr_hugepages ]; then
        echo "cluster: vm.nr_hugepages is not writable (not root?): huge pages not reserved" >&2; return 0
    fi
    need=$(cluster_as_owner "$PGBIN/postgres" -D "$CLUSTER_DIR/data" -C shared_memory_size_in_huge_pages 2>/dev/null) ||
        return 0
    # free and not promised to a mapping already (another cluster's)
    free=$(awk '/^HugePages_Free/ { f = $2 } /^HugePages_Rsvd/ { r = $2 } END { print f - r }' /proc/meminfo)
    total=$(cat /proc/sys/vm/nr_hugepages)
    [ "$free" -lt "$need" ] || return 0
    CLUSTER_NR_HUGEPAGES_WAS=$total
    echo $((total + need - free)) >/proc/sys/vm/nr_hugepages
}

# "on" when the running cluster's shared memory is in huge pages (huge_pages = try, the
# default, takes them when the kernel has some reserved: vm.nr_hugepages), "off" otherwise.
# A new backend maps each 4 kB page of shared_buffers it touches on first use: with
# huge pages, a 2 MB one (docs/benchmarks.md, Figure 6).
cluster_huge_pages() {
    local pid
    pid=$(head -1 "$CLUSTER_DIR/data/postmaster.pid")
    if grep -q anon_hugepage "/proc/$pid/maps" 2>/dev/null; then echo on; else echo off; fi
}

cluster_restart() {
    cluster_as_owner "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w start >/dev/null
}

cluster_stop() {
    [ -n "${CLUSTER_DIR:-}" ] || return 0
    cluster_as_owner "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$CLUSTER_DIR"
    CLUSTER_DIR=
    if [ -n "${CLUSTER_NR_HUGEPAGES_WAS:-}" ]; then
        echo "$CLUSTER_NR_HUGEPAGES_WAS" >/proc/sys/vm/nr_hugepages
        CLUSTER_NR_HUGEPAGES_WAS=
    fi
}
