#!/usr/bin/env bash
# Installs what the build and the suites need, when missing (Debian, as root).
set -euo pipefail
need=()
command -v pg_config >/dev/null && [ -d "$(pg_config --includedir-server 2>/dev/null)" ] || need+=(postgresql-server-dev-15)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
[ -f /usr/share/postgresql/15/extension/pgtap.control ] || need+=(postgresql-15-pgtap)
command -v pg_prove >/dev/null || need+=(libtap-parser-sourcehandler-pgtap-perl)
[ -f /usr/share/postgresql/15/extension/pg_cron.control ] || need+=(postgresql-15-cron)
[ -f /usr/include/gtest/gtest.h ] || need+=(libgtest-dev)
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
# the client examples: psycopg 3 for Debian's python3, node and npm for node-postgres
/usr/bin/python3 -c 'import psycopg' 2>/dev/null || need+=(python3-psycopg)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
# test/fuzz: clang-14, and libclang-rt-14-dev for the libFuzzer and sanitizer runtimes
command -v clang++-14 >/dev/null || need+=(clang-14)
compgen -G '/usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a' >/dev/null ||
    need+=(libclang-rt-14-dev)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing packages: ${need[*]} (run as root, or install them)" >&2
        exit 1
    fi
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

# node-postgres for examples/node, exactly as locked, when missing or older than the lock.
node_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../examples/node" && pwd)
if [ ! "$node_dir/node_modules/.package-lock.json" -nt "$node_dir/package-lock.json" ]; then
    echo "installing examples/node's packages (npm ci)"
    (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
