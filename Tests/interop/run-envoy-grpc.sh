#!/usr/bin/env bash
# Runs the independent Python Envoy ext_authz client against the real service binary (gRPC on loopback
# TCP with the frontend key, and on a Unix socket) with the fake PMS, all on ephemeral ports.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-.build/debug}
source scripts/lib.sh
PYTHON=$(interop_python)

tmp=$(mktemp -d)
trap 'stop_all "$tmp"' EXIT
start_fake_pms "$BIN" "$tmp"
grpc_port=$(free_port)
key=interop-frontend-key-0123456789
write_secret "$tmp/owner" ownr0000000000000000
write_secret "$tmp/key" "$key"
"$BIN/plex-livetv-authz" serve --listen "unix:$tmp/http.sock" --grpc-listen "127.0.0.1:$grpc_port" \
    --grpc-listen "unix:$tmp/grpc.sock" --owner-token-file "$tmp/owner" --frontend-key-file "$tmp/key" \
    --pms-url "http://127.0.0.1:$PMS_PORT" 2>"$tmp/service.log" &
remember $!
for _ in $(seq 200); do [ -S "$tmp/grpc.sock" ] && break; sleep 0.05; done
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$grpc_port") 2>/dev/null && break; sleep 0.05; done

status=0
"$PYTHON" Tests/interop/envoy_check_client.py "127.0.0.1:$grpc_port" "$tmp/grpc.sock" "$key" || status=$?
if grep -q ownr0000000000000000 "$tmp/service.log"; then
    echo "FAIL: the owner token appears in the service log" >&2
    status=1
fi
[ "$status" -eq 0 ] || { echo "--- service log"; tail -20 "$tmp/service.log"; }
exit "$status"
