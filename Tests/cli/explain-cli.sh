#!/usr/bin/env bash
# Contract checks of `plex-livetv-authz explain` as a process: exit codes, line-per-line answers, --help.
set -uo pipefail
bin=${1:?usage: explain-cli.sh path/to/plex-livetv-authz}
passed=0
failed=0
check() { # name, command...
    local name=$1
    shift
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $name" >&2; fi
}

out=$(printf '%s\n' '{"method":"GET","target":"/livetv/dvrs?X-Plex-Token=abc"}' 'garbage' '' \
    '{"method":"GET","target":"/library/sections?X-Plex-Token=abc"}' | "$bin" explain)
status=$?
check "bad line makes exit status 1" test "$status" -eq 1
check "one answer per non-blank line" test "$(printf '%s\n' "$out" | wc -l)" -eq 3
check "elevated line is byte exact" test "$(printf '%s\n' "$out" | sed -n 1p)" = \
    '{"elevate":true,"rule":"livetv","upstreamTarget":"/livetv/dvrs","upstreamToken":"OWNER"}'
check "error line" test "$(printf '%s\n' "$out" | sed -n 2p)" = '{"error":"not valid JSON"}'
check "processing goes on after an error" test "$(printf '%s\n' "$out" | sed -n 3p)" = \
    '{"elevate":false,"rule":"none","upstreamTarget":"/library/sections?X-Plex-Token=abc","upstreamToken":"abc"}'

out=$(echo '{"method":"GET","target":"/livetv/dvrs?X-Plex-Token=abc"}' | "$bin" explain --owner-token 'sec+ret')
check "exit 0 when every line is good" test $? -eq 0
check "--owner-token goes in the header token only, never in the target" test "$out" = \
    '{"elevate":true,"rule":"livetv","upstreamTarget":"/livetv/dvrs","upstreamToken":"sec+ret"}'

out=$(echo '{"method":"GET","target":"/livetv/dvrs?X-Plex-Token=abc"}' | "$bin" explain --mode all)
check "--mode all" test "$(echo "$out" | grep -c '"rule":"all"')" -eq 1

out=$("$bin" explain --method GET --target '/video/:/transcode/universal/decision?path=%2Flibrary%2Fmetadata%2F1&X-Plex-Token=abc')
check "single mode names the near miss" grep -q "fits transcode but a parameter or body value is not a Live TV reference" <<<"$out"
out=$("$bin" explain --method POST --target '/livetv/dvrs/1/channels/2/tune' --header 'X-Plex-Token: abc')
check "single mode with a header token" grep -q "rule:            livetv-tune" <<<"$out"

"$bin" explain --method GET >/dev/null 2>&1
status=$?
check "--method without --target is a usage error (64)" test "$status" -eq 64
"$bin" explain --mode sideways </dev/null >/dev/null 2>&1
check "unknown mode is refused" test $? -ne 0
check "--help teaches the input format" bash -c "'$bin' explain --help | grep -q bodyPresent"

n=$("$bin" explain < Tests/Fixtures/plex-web-session.jsonl | grep -c '"elevate":true')
check "the Plex Web session elevates 21 of 56 requests" test "$n" -eq 21

# --replay: the full guard over a sequence with every token taken as valid: a tune, then the player's
# tokenless segments from the same source (tracked), and from another (mismatch).
out=$(printf '%s\n' \
    '{"method":"POST","target":"/livetv/dvrs/1/channels/2/tune?X-Plex-Token=abc","headers":[["X-Plex-Session-Identifier","s1"]],"peer":"203.0.113.5"}' \
    '{"method":"GET","target":"/livetv/sessions/s1/ts1/00001.ts","peer":"203.0.113.5"}' \
    '{"method":"GET","target":"/livetv/sessions/s1/ts1/00002.ts","peer":"198.51.100.7"}' |
    "$bin" explain --replay 2>/dev/null)
check "--replay tracks a tuned session" test "$(sed -n 2p <<<"$out")" = \
    '{"elevate":true,"rule":"tracked-segment","upstreamTarget":"/livetv/sessions/s1/ts1/00001.ts","upstreamToken":"OWNER","outcome":"elevated_live_tv","rejected":false}'
check "--replay: another source is a mismatch" grep -q '"rule":"tracked-segment".*"outcome":"deny_session_mismatch"' <<<"$(sed -n 3p <<<"$out")"
"$bin" explain --replay --pms-url http://127.0.0.1:1 </dev/null >/dev/null 2>&1
check "--replay and --pms-url exclude each other" test $? -ne 0

# --pms-url: the full guard against the fake PMS on an ephemeral loopback port.
source scripts/lib.sh
tmp=$(mktemp -d)
start_fake_pms "$(dirname "$bin")" "$tmp"
port=$PMS_PORT
out=$(printf '%s\n' '{"method":"GET","target":"/livetv/dvrs?X-Plex-Token=user0000000000000000","peer":"203.0.113.5"}' \
    '{"method":"GET","target":"/livetv/dvrs?X-Plex-Token=othr0000000000000000","peer":"203.0.113.5"}' |
    "$bin" explain --pms-url "http://127.0.0.1:$port" 2>"$tmp/audit")
stop_all
check "--pms-url elevates a shared user's valid token" grep -q '"elevate":true,"rule":"livetv".*"outcome":"elevated_live_tv"' <<<"$out"
check "--pms-url denies an unrelated token" grep -q '"elevate":false.*"outcome":"deny_unauthorized_token"' <<<"$out"
check "audit lines go to stderr" test "$(grep -c 'plexlabelproxy_audit: outcome=' "$tmp/audit")" -eq 2
check "audit lines hold no raw token or address" bash -c "! grep -Eq 'user0000|othr0000|203\.0\.113\.5' '$tmp/audit'"
rm -rf "$tmp"

# serve: negative durations disable features (the seed's documented `-1s`), and every configuration error
# is reported at once with exit status 2.
out=$("$bin" serve --bad-auth-cooldown -1s --audit-summary-interval -1s --abuse-window 5x --listen nonsense 2>&1 </dev/null)
status=$?
check "serve config errors exit 2" test "$status" -eq 2
check "-1s is accepted as a value" bash -c "! grep -q 'Missing value' <<<\"\$1\"" _ "$out"
check "every problem is named" test "$(grep -c '^configuration error:' <<<"$out")" -eq 3
check "problems name flag and variable" grep -q -- '--abuse-window / IPTV_TUNERR_PROXY_ABUSE_WINDOW' <<<"$out"
out=$("$bin" serve --abuse-window -5m 2>&1 </dev/null)
check "a negative duration gets the named error, not a parser error" grep -q -- '--abuse-window / IPTV_TUNERR_PROXY_ABUSE_WINDOW: must be positive' <<<"$out"
check "serve --help names the seed variables" bash -c "'$bin' serve --help | grep -q IPTV_TUNERR_PROXY_ABUSE_STATE_FILE"

echo "cli: $passed passed, $failed failed"
test "$failed" -eq 0
