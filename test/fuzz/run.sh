#!/usr/bin/env bash
# Builds the libFuzzer targets of test/fuzz (clang-14, ASan + UBSan) and runs
# each for a bounded time on its committed corpus (test/fuzz/corpus/<target>)
# plus a working corpus in build/fuzz/corpus/<target> that keeps what it finds.
#   test/fuzz/run.sh [seconds per target, default 20] [target...]
# FUZZ_JOBS targets run at a time (default 3: on two cores the seven targets
# take three rounds). Fails when a target crashes, leaks, times out or fails
# a check; the input that did it is saved in build/fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-20}
jobs=${FUZZ_JOBS:-3}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(aggregate_state_binary aggregate_state_text aggregate_merge json_reader pricing decimal
                                 input_syntax)

build=build/fuzz
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
      -DMETERING_FUZZ=ON >/dev/null
cmake --build "$build" -j2 --target fuzzers >/dev/null
mkdir -p "$build/artifacts" "$build/logs"

dictionary_of() {
    case $1 in json_reader|pricing) echo "-dict=test/fuzz/json.dict" ;; esac
}

# Runs one target; its whole output goes to build/fuzz/logs/<target>.log.
fuzz_one() {
    local target=$1
    mkdir -p "$build/corpus/$target"
    UBSAN_OPTIONS=print_stacktrace=1 "$build/test/fuzz/fuzz_$target" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -print_final_stats=1 -artifact_prefix="$build/artifacts/$target-" \
        $(dictionary_of "$target") \
        "$build/corpus/$target" "test/fuzz/corpus/$target" >"$build/logs/$target.log" 2>&1
}

report() {
    local target=$1 status=$2 log=$build/logs/$1.log
    local runs
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ "$status" = 0 ]; then
        printf '%-24s ok: %s executions in %s s\n' "$target" "${runs:-?}" "$seconds"
    else
        printf '%-24s FAILED (exit %s); log %s\n' "$target" "$status" "$log"
        grep -E 'ERROR:|fuzz check failed|runtime error|Test unit written' "$log" | head -20 || true
        tail -n 30 "$log"
        echo
    fi
}

failed=0
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
    pids=()
    for target in "${targets[@]:i:jobs}"; do
        fuzz_one "$target" &
        pids+=("$!")
    done
    for j in "${!pids[@]}"; do
        status=0
        wait "${pids[$j]}" || status=$?
        report "${targets[$((i + j))]}" "$status"
        [ "$status" = 0 ] || failed=1
    done
done
echo "fuzz targets: ${SECONDS} s in all, build included"
if [ "$failed" != 0 ]; then
    echo "fuzzing found a problem: reproduce with $build/test/fuzz/fuzz_<target> <artifact>" >&2
    exit 1
fi
