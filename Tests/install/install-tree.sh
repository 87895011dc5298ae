#!/usr/bin/env bash
# `make install` into a temporary DESTDIR: the tree, the modes, @BINDIR@ filled in; `make uninstall` leaves
# no file behind; the units pass `systemd-analyze verify` (any warning fails) with a real binary behind
# ExecStart; their offline exposure score stays at or under 2.0; and the binary serves an elevated decision
# with write-and-execute memory refused (what MemoryDenyWriteExecute=yes does), so the unit may keep it.
# Installs the debug build (CONFIG=debug): the install logic is the same, without a second full build.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
passed=0
failed=0
check() { # check NAME COMMAND...
    local name=$1; shift
    if "$@" >"$work/check.out" 2>&1; then passed=$((passed + 1)); echo "ok   $name"
    else failed=$((failed + 1)); echo "FAIL $name"; sed 's/^/     /' "$work/check.out" | head -20; fi
}
mode() { stat -c %a "$1"; }

dest=$work/dest
make -s install DESTDIR="$dest" PREFIX=/usr/local CONFIG=debug >/dev/null
root=$dest/usr/local
check "binary installed 0755 and runs" bash -c "[ \$(stat -c %a '$root/bin/plex-livetv-authz') = 755 ] && '$root/bin/plex-livetv-authz' --help | grep -q enforce-prefs"
for unit in plex-livetv-authz.service plex-prefs-enforce.service plex-prefs-enforce.timer; do
    check "$unit installed 0644" test "$(mode "$root/lib/systemd/system/$unit")" = 644
done
check "ExecStart names the installed binary" grep -q '^ExecStart=/usr/local/bin/plex-livetv-authz serve' "$root/lib/systemd/system/plex-livetv-authz.service"
check "no @BINDIR@ left" bash -c "! grep -r '@BINDIR@' '$root/lib/systemd/system'"
check "env example installed 0644" test "$(mode "$root/share/plex-livetv-authz/plex-livetv-authz.env.example")" = 644
check "every frontend file installed" bash -c "diff <(git ls-files frontends | sort) <(cd '$root/share/plex-livetv-authz' && find frontends -type f | sort)"
check "docs installed (runbook, configuration)" test -f "$root/share/doc/plex-livetv-authz/runbook.md" -a -f "$root/share/doc/plex-livetv-authz/configuration.md"
make -s uninstall DESTDIR="$dest" PREFIX=/usr/local >/dev/null
check "uninstall leaves no file" bash -c "[ -z \"\$(find '$dest' -type f)\" ]"

# The units as systemd reads them, with the binary really at ExecStart.
prefix=$work/prefix
make -s install PREFIX="$prefix" CONFIG=debug >/dev/null
units=("$prefix"/lib/systemd/system/*)
check "systemd-analyze verify: no error, no warning" bash -c "out=\$(systemd-analyze verify ${units[*]} 2>&1) && [ -z \"\$out\" ] || { echo \"\$out\"; false; }"
for unit in plex-livetv-authz.service plex-prefs-enforce.service; do
    score=$(cd "$prefix/lib/systemd/system" && systemd-analyze security --offline=true "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
    echo "     $unit exposure: $score"
    check "$unit exposure at most 2.0" awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }'
done

# MemoryDenyWriteExecute: the kernel's PR_SET_MDWE (inherited across exec) refuses what systemd's filter
# refuses; the service must still start, validate against PMS and decide.
fake_out=$work/fake.out
.build/debug/fake-pms --port 0 --control-port 0 >"$fake_out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q port "$fake_out" && break; sleep 0.1; done
pms_port=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["port"])' "$fake_out")
printf 'ownr0000000000000000\n' >"$work/owner"; chmod 600 "$work/owner"
python3 - "$prefix/bin/plex-livetv-authz" serve --listen "unix:$work/authz.sock" --owner-token-file "$work/owner" \
    --pms-url "http://127.0.0.1:$pms_port" >"$work/mdwe.log" 2>&1 <<'PY' &
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0 or libc.prctl(66, 0, 0, 0, 0) != 1:  # PR_SET_MDWE, PR_GET_MDWE
    sys.exit("PR_SET_MDWE unavailable: errno %d" % ctypes.get_errno())
os.execv(sys.argv[1], sys.argv[1:])
PY
pids+=($!)
for _ in $(seq 100); do [ -S "$work/authz.sock" ] && break; sleep 0.1; done
check "serves an elevated decision with W^X enforced" bash -c "curl -s -i --unix-socket '$work/authz.sock' http://x/v1/nginx -H 'X-Original-Method: GET' -H 'X-Original-URI: /livetv/dvrs?X-Plex-Token=user0000000000000000' | grep -q 'X-Plexauthz-Decision: elevated' || { cat '$work/mdwe.log'; false; }"
make -s uninstall PREFIX="$prefix" >/dev/null

echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
