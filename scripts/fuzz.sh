#!/usr/bin/env bash
# `make fuzz`: builds the fuzz targets with coverage instrumentation and AddressSanitizer, linked against
# libFuzzer (without its main; FuzzMain calls LLVMFuzzerRunDriver), and runs each for a bounded time on a
# copy of its committed corpus. New inputs that add coverage are merged back into Fuzz/Corpus/<target>;
# a crash leaves its input in .build-fuzz/artifacts and fails the run.
#   scripts/fuzz.sh [seconds per target] [target ...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-300}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(StateFileFuzz)
corpus_of() { case "$1" in StateFileFuzz) echo state-file ;; *) echo "${1%Fuzz}" | tr '[:upper:]' '[:lower:]' ;; esac; }

runtime=$(ls /opt/swift/usr/lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a 2>/dev/null | head -1)
[ -n "$runtime" ] || runtime=$(find "$(dirname "$(dirname "$(command -v swift)")")" -name 'libclang_rt.fuzzer_no_main-x86_64.a' | head -1)
[ -n "$runtime" ] || { echo "libFuzzer runtime (libclang_rt.fuzzer_no_main) not found in the Swift toolchain"; exit 1; }
flags=(--scratch-path .build-fuzz -c debug -Xswiftc -sanitize=address
    -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table -Xswiftc -DFUZZING
    -Xlinker "$runtime" -Xlinker -lstdc++)
mkdir -p .build-fuzz/artifacts
for target in "${TARGETS[@]}"; do
    echo "building $target for fuzzing (coverage + AddressSanitizer)..."
    swift build "${flags[@]}" --product "$target" 2>&1 | grep -E "error|warning: unre|Build" || true
    corpus=Fuzz/Corpus/$(corpus_of "$target")
    work=.build-fuzz/work-$target
    rm -rf "$work" && mkdir -p "$work" && cp "$corpus"/* "$work"/
    echo "fuzzing $target for ${SECONDS_EACH}s from $(ls "$corpus" | wc -l) corpus input(s)..."
    .build-fuzz/debug/"$target" "$work" -max_total_time="$SECONDS_EACH" -max_len=8192 -timeout=10 \
        -print_final_stats=1 -artifact_prefix=.build-fuzz/artifacts/"$target"- 2>&1 |
        grep -E "^(#[0-9]+ *DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY|artifact_prefix)" || true
    status=${PIPESTATUS[0]}
    [ "$status" -eq 0 ] || { echo "FAIL: $target crashed or hung; input saved under .build-fuzz/artifacts"; exit 1; }
    .build-fuzz/debug/"$target" -merge=1 "$corpus" "$work" 2>&1 | grep -E "MERGE-OUTER: [0-9]+ new files" || true
done
