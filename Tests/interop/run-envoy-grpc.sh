#!/usr/bin/env bash
# Runs the independent Python Envoy ext_authz client against the real service binary (gRPC on loopback
# TCP with the frontend key, and on a Unix socket) with the fake PMS, all on ephemeral ports.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-.build/debug}
VENV=.build-interop-venv

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import grpc, envoy.service.auth.v3' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r Tests/interop/requirements.txt
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

"$BIN/fake-pms" >"$tmp/ports" 2>"$tmp/fake.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/ports" ] && break; sleep 0.05; done
pms_port=$(sed -E 's/.*"port":([0-9]+).*/\1/' "$tmp/ports")
grpc_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
key=interop-frontend-key-0123456789
(umask 077; echo ownr0000000000000000 >"$tmp/owner"; echo "$key" >"$tmp/key")
"$BIN/plex-livetv-authz" serve --listen "unix:$tmp/http.sock" --grpc-listen "127.0.0.1:$grpc_port" \
    --grpc-listen "unix:$tmp/grpc.sock" --owner-token-file "$tmp/owner" --frontend-key-file "$tmp/key" \
    --pms-url "http://127.0.0.1:$pms_port" 2>"$tmp/service.log" &
pids+=($!)
for _ in $(seq 200); do [ -S "$tmp/grpc.sock" ] && break; sleep 0.05; done
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$grpc_port") 2>/dev/null && break; sleep 0.05; done

status=0
"$VENV/bin/python" Tests/interop/envoy_check_client.py "127.0.0.1:$grpc_port" "$tmp/grpc.sock" "$key" || status=$?
if grep -q ownr0000000000000000 "$tmp/service.log"; then
    echo "FAIL: the owner token appears in the service log" >&2
    status=1
fi
[ "$status" -eq 0 ] || { echo "--- service log"; tail -20 "$tmp/service.log"; }
exit "$status"
