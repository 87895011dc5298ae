#!/usr/bin/env bash
# `make fuzz`: builds the fuzz targets with coverage instrumentation and AddressSanitizer, linked against
# libFuzzer (without its main; FuzzMain calls LLVMFuzzerRunDriver), and runs each for a bounded time on a
# copy of its committed corpus. New inputs that add coverage are merged back into Fuzz/Corpus/<target>;
# a crash leaves its input in .build-fuzz/artifacts and fails the run.
# FUZZ_MERGE=0 (the CI smoke, `make test-fuzz-smoke`) leaves the committed corpus alone. The last line per
# target is its summary (executions, coverage, peak memory) for docs/security.md.
#   scripts/fuzz.sh [seconds per target] [target ...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-300}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(TargetFuzz ForwardedIdentityFuzz EnvoyCheckFuzz HTTPHeadFuzz StateFileFuzz)
MERGE=${FUZZ_MERGE:-1}
corpus_of() {
    case "$1" in
    TargetFuzz) echo target ;; ForwardedIdentityFuzz) echo forwarded-identity ;; EnvoyCheckFuzz) echo envoy-check ;;
    HTTPHeadFuzz) echo http-head ;; StateFileFuzz) echo state-file ;; *) echo "unknown fuzz target $1" >&2; exit 2 ;;
    esac
}

runtime=$(ls /opt/swift/usr/lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a 2>/dev/null | head -1)
[ -n "$runtime" ] || runtime=$(find "$(dirname "$(dirname "$(command -v swift)")")" -name 'libclang_rt.fuzzer_no_main-x86_64.a' | head -1)
[ -n "$runtime" ] || { echo "libFuzzer runtime (libclang_rt.fuzzer_no_main) not found in the Swift toolchain"; exit 1; }
flags=(--scratch-path .build-fuzz -c debug -Xswiftc -sanitize=address
    -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table -Xswiftc -DFUZZING
    -Xlinker "$runtime" -Xlinker -lstdc++)
mkdir -p .build-fuzz/artifacts
echo "building ${TARGETS[*]} for fuzzing (coverage + AddressSanitizer)..."
for target in "${TARGETS[@]}"; do
    swift build "${flags[@]}" --product "$target" 2>&1 | grep -E "error|Build complete" || true
    [ -x .build-fuzz/debug/"$target" ] || { echo "FAIL: $target did not build for fuzzing"; exit 1; }
done
summary=()
for target in "${TARGETS[@]}"; do
    corpus=Fuzz/Corpus/$(corpus_of "$target")
    work=.build-fuzz/work-$target
    rm -rf "$work" && mkdir -p "$work" && cp "$corpus"/* "$work"/
    echo "fuzzing $target for ${SECONDS_EACH}s from $(ls "$corpus" | wc -l) corpus input(s)..."
    log=.build-fuzz/$target.log
    status=0
    # Swift's backtracer reads its own stack in ways ASan reports; libFuzzer's report is the one wanted.
    SWIFT_BACKTRACE=enable=no .build-fuzz/debug/"$target" "$work" -max_total_time="$SECONDS_EACH" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix=.build-fuzz/artifacts/"$target"- >"$log" 2>&1 || status=$?
    grep -E "^(#[0-9]+ *DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY|artifact_prefix)|Precondition failed|Fatal error" "$log" || true
    [ "$status" -eq 0 ] || { echo "FAIL: $target crashed or hung (log $log); input saved under .build-fuzz/artifacts"; exit 1; }
    # The last status line carries the coverage; the final stats the executions.
    status_line=$(grep -E "^#[0-9]+.*cov: " "$log" | tail -1 || true)
    cov=$(echo "$status_line" | sed -E 's/.*cov: ([0-9]+).*/\1/')
    ft=$(echo "$status_line" | sed -E 's/.*ft: ([0-9]+).*/\1/')
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
    summary+=("$target: ${SECONDS_EACH} s, ${runs:-?} executions (${rate:-?}/s), coverage ${cov:-?} edges / ${ft:-?} features, peak ${rss:-?} MB, corpus $(ls "$work" | wc -l) inputs")
    if [ "$MERGE" = 1 ]; then
        .build-fuzz/debug/"$target" -merge=1 "$corpus" "$work" 2>&1 | grep -E "MERGE-OUTER: [0-9]+ new files" || true
    fi
done
printf '%s\n' "${summary[@]}"
