#!/usr/bin/env bash
# `make bench` (server part): load against the release `serve` binary with the fake PMS, on loopback.
#  - Envoy ext_authz gRPC Check calls, framed from Envoy's own protos (xds-protos), driven by h2load;
#  - nginx-style /v1/nginx decisions over h2c (h2load) and HTTP/1.1 keep-alive (h2load --h1).
# Bounded: fixed request counts, loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-100000}
swift build -q -c release --product plex-livetv-authz
swift build -q -c release --product fake-pms
BIN=.build/release
command -v h2load >/dev/null || { echo "h2load missing: apt-get install nghttp2-client"; exit 1; }
source scripts/lib.sh
PYTHON=$(interop_python)

tmp=$(mktemp -d)
trap 'stop_all "$tmp"' EXIT
echo "starting the fake PMS and serve (release build in $BIN)..." >&2
start_fake_pms "$BIN" "$tmp"
http_port=$(free_port)
grpc_port=$(free_port)
key=bench-frontend-key-0123456789
write_secret "$tmp/owner" ownr0000000000000000
write_secret "$tmp/key" "$key"
"$BIN/plex-livetv-authz" serve --listen "127.0.0.1:$http_port" --grpc-listen "127.0.0.1:$grpc_port" \
    --owner-token-file "$tmp/owner" --frontend-key-file "$tmp/key" --pms-url "http://127.0.0.1:$PMS_PORT" \
    --audit-summary-interval -1s --log-level warning 2>"$tmp/service.log" &
remember $!
serve_pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$http_port/healthz" && break; sleep 0.05; done
sleep 0.3

echo "serve is up; building the gRPC Check request and checking one call..." >&2
# One gRPC message (5-byte prefix + CheckRequest): a shared user's guide grid request, elevated.
"$PYTHON" - "$tmp/check.bin" <<'PY'
import struct, sys
from envoy.service.auth.v3 import external_auth_pb2
r = external_auth_pb2.CheckRequest()
h = r.attributes.request.http
h.method = "GET"
h.path = ("/tv.plex.providers.epg.xmltv:135/grid?type=1%2C4&sort=beginsAt&X-Plex-Product=Plex%20Web"
          "&X-Plex-Client-Identifier=k3j9x0q7w2e5r8t1y4u6i0op&X-Plex-Token=user0000000000000000&X-Plex-Language=en")
h.headers["accept"] = "application/json"
h.headers["referer"] = "https://app.plex.tv/"
r.attributes.source.address.socket_address.address = "203.0.113.9"
body = r.SerializeToString()
open(sys.argv[1], "wb").write(struct.pack(">BI", 0, len(body)) + body)
PY

# h2load counts HTTP statuses; gRPC reports its own in trailers. One call first, checked for grpc-status 0.
grpc_status=$(nghttp -v -d "$tmp/check.bin" -H 'content-type: application/grpc' -H 'te: trailers' -H "x-plexauthz-key: $key" \
    "http://127.0.0.1:$grpc_port/envoy.service.auth.v3.Authorization/Check" 2>&1 | grep -a -o 'grpc-status: [0-9]*' | head -1)
[ "$grpc_status" = "grpc-status: 0" ] || { echo "the Check call failed ($grpc_status); not benchmarking errors"; exit 1; }

summary() { grep -E "^finished in|^requests:|^status codes:|^time for request:" | sed 's/^/    /'; }
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1); $REQUESTS requests per run; client and server share the machine"
echo
echo "gRPC Check (Envoy ext_authz), h2c, 4 connections x 32 streams:"
h2load -n "$REQUESTS" -c 4 -m 32 -d "$tmp/check.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
    -H "x-plexauthz-key: $key" "http://127.0.0.1:$grpc_port/envoy.service.auth.v3.Authorization/Check" | summary
target='/tv.plex.providers.epg.xmltv:135/grid?type=1%2C4&X-Plex-Product=Plex%20Web&X-Plex-Token=user0000000000000000'
echo
echo "/v1/nginx decision, h2c, 4 connections x 32 streams:"
h2load -n "$REQUESTS" -c 4 -m 32 -H "x-plexauthz-key: $key" -H 'x-original-method: GET' \
    -H "x-original-uri: $target" -H 'x-forwarded-for: 203.0.113.9' "http://127.0.0.1:$http_port/v1/nginx" | summary
echo
echo "/v1/nginx decision, HTTP/1.1 keep-alive, 16 connections (as nginx's keepalive pool):"
h2load --h1 -n "$REQUESTS" -c 16 -H "x-plexauthz-key: $key" -H 'x-original-method: GET' \
    -H "x-original-uri: $target" -H 'x-forwarded-for: 203.0.113.9' "http://127.0.0.1:$http_port/v1/nginx" | summary
echo
echo "PMS validations during the runs: $(curl -s "http://127.0.0.1:$CONTROL_PORT/__fake/requests?path=/library/sections" | grep -o '"seq"' | wc -l) (cache and single-flight)"
echo "resident memory of serve after the runs: $(ps -o rss= -p "$serve_pid" | awk '{printf "%.1f MiB", $1/1024}')"
