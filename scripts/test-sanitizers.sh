#!/usr/bin/env bash
# `make test-sanitizers`: the unit and integration suites under ThreadSanitizer and then AddressSanitizer, each
# in its own build folder: the core, the runtime (guard, validator, PMS faults, state file, playback) and the
# decision servers in process (HTTP/1.1, h2c, gRPC, frontend trust). The suites that drive real peers and
# separate processes (frontend tables, soak-like abuse, local faults, PostgreSQL replicas) stay out: under a
# sanitizer everything runs several times slower and their timing assertions measure the sanitizer, and the
# server code they exercise is the code the in-process suites run instrumented. Processes a selected test
# starts are the instrumented builds (PLEXAUTHZ_TEST_BIN_DIR), and every report from any process goes to a
# log file: one report fails the run, even when the test that caused it passed.
# The tests run one at a time (--no-parallel): side by side under TSan, the generated-request suites and the
# connection suites starve each other's event loops for seconds, and 300 ms idle timers or 200 ms PMS
# timeouts then fire after the I/O they bound (seen in CI). Each test's own concurrency is what TSan checks;
# serial costs about 25 s here (167 tests: 37 s instead of 12).
#   scripts/test-sanitizers.sh [thread|address ...]     (default: thread address)
set -euo pipefail
cd "$(dirname "$0")/.."
SANITIZERS=("$@")
[ ${#SANITIZERS[@]} -gt 0 ] || SANITIZERS=(thread address)

for sanitizer in "${SANITIZERS[@]}"; do
    case "$sanitizer" in thread) short=tsan ;; address) short=asan ;; *) echo "unknown sanitizer $sanitizer" >&2; exit 2 ;; esac
    scratch=.build-$short
    reports=$(mktemp -d "/tmp/plexauthz-$short.XXXXXX")
    start=$(date +%s)
    echo "== $sanitizer: building into $scratch..."
    swift build --build-tests --scratch-path "$scratch" -Xswiftc -sanitize="$sanitizer" 2>&1 | grep -E "error|Build complete" || true
    [ -x "$scratch/debug/plex-livetv-authz" ] || { echo "FAIL: the $sanitizer build did not produce the binaries"; exit 1; }
    built=$(date +%s)
    echo "== $sanitizer: testing (reports to $reports, output to $scratch/test.log)..."
    status=0
    # Leak reports are left out: the Swift runtime and NIO's singletons keep memory until exit by design.
    TSAN_OPTIONS="log_path=$reports/report second_deadlock_stack=1 suppressions=$PWD/scripts/tsan-suppressions.txt ${TSAN_OPTIONS:-}" \
        ASAN_OPTIONS="log_path=$reports/report detect_leaks=0 ${ASAN_OPTIONS:-}" \
        PLEXAUTHZ_TEST_BIN_DIR="$PWD/$scratch/debug" PLEXAUTHZ_SANITIZER="$sanitizer" \
        swift test --skip-build --no-parallel --scratch-path "$scratch" \
        --filter 'LiveTVAuthzCoreTests\.|LiveTVAuthzTests\.|LiveTVAuthzHTTPTests\.(ServerTests|ConnectionStarvationTests|EnvoyGRPCAdapterTests|GRPCServiceTests|FrontendTrustTests)' \
        >"$scratch/test.log" 2>&1 || status=$?
    grep -E "✘|Test run with" "$scratch/test.log" | cut -c1-400 | head -n 40 || true
    echo "== $sanitizer: build $((built - start)) s, tests $(($(date +%s) - built)) s"
    if compgen -G "$reports/report*" >/dev/null; then
        echo "FAIL: $sanitizer reports:"
        for file in "$reports"/report*; do echo "--- $file"; head -n 60 "$file"; done
        exit 1
    fi
    [ "$status" -eq 0 ] || { echo "FAIL: the test suite failed under $sanitizer"; exit 1; }
    rm -rf "$reports"
    echo "== $sanitizer: no reports"
done
