#!/usr/bin/env bash
# `make bench` / `make bench-quick`: the service side by side with its ceilings, in one run, on this machine.
#
#   scripts/bench.sh [--quick] [--no-write]
#
# Everything on loopback, release builds, the service configured as deployed (audit lines on, to a file as
# the journal would take them). Measured with wrk (HTTP/1.1) and h2load (h2c), p50/p99 from the tools:
#  - the decision itself: nginx `return 200` carrying the very headers the service answers (the ceiling for a
#    decision) next to the service's /v1/nginx for an elevated, audited, cached request and for a library
#    request (no audit, no validation);
#  - the whole path through the shipped nginx files: with the service, with an ideal decision service (nginx
#    `return 200` with the same headers, on a Unix socket like the service), and a plain proxy;
#  - the same through real Envoy 1.40 (the shipped ext_authz gRPC and HTTP configs vs the gRPC config
#    without ext_authz) and Caddy (the shipped forward_auth config, with the service and with the ideal one, vs a plain
#    reverse_proxy);
#  - gRPC Check calls directly, cold validation (1,000 concurrent requests, one new token, PMS slowed to
#    100 ms), resident memory idle and with 100,000 cached tokens and 1,000 tracked playback sessions.
# PMS: for proxied traffic an nginx answering a small MediaContainer (the fake PMS answers about 11,000
# requests/s here and would be what the whole-path rows measure); token validation goes to the fake PMS.
# --quick: 32 connections only, 3 s runs (under 3 minutes once built); full: 1, 32 and 256 connections, 8 s
# runs (under 15 minutes). The tables go into docs/benchmarks.md (a section per mode) unless --no-write.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=full
WRITE=1
for arg in "$@"; do
    case "$arg" in
    --quick) MODE=quick ;;
    --no-write) WRITE=0 ;;
    *) echo "usage: scripts/bench.sh [--quick] [--no-write]" >&2; exit 2 ;;
    esac
done
if [ "$MODE" = quick ]; then DURATION=3; CONNECTIONS=(32); else DURATION=8; CONNECTIONS=(1 32 256); fi
COMMAND="scripts/bench.sh $*"
COMMAND=${COMMAND% }
started=$(date +%s)

bash scripts/ensure-peers.sh
if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package) for the benchmarks"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
fi
echo "building the release binaries..." >&2
for product in plex-livetv-authz fake-pms; do
    swift build -c release --product "$product" >/tmp/plexauthz-bench-build.log 2>&1 ||
        { cat /tmp/plexauthz-bench-build.log; exit 1; }
done
BIN=.build/release
ENVOY=.build-envoy-venv/bin/envoy
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
source scripts/lib.sh

tmp=$(mktemp -d /tmp/plexauthz-bench.XXXXXX)
trap 'stop_all "$tmp"' EXIT
rows=$tmp/rows.tsv
facts=$tmp/facts.tsv
: >"$rows"
: >"$facts"
fact() { printf '%s\t%s\n' "$1" "$2" >>"$facts"; }
rss_mib() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# The part of it that is the process's own memory (heap, stacks), not code pages mapped from disk.
anon_mib() { awk '/^RssAnon/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
wait_http() { for _ in $(seq 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done; echo "not answering: $1" >&2; return 1; }
USER_LINE=""
[ "$(id -u)" -eq 0 ] && USER_LINE="user root root;"
# A one-worker nginx of the script's own under $tmp/NAME: nginx_head NAME writes its configuration's head to
# $tmp/NAME/nginx.conf (the caller appends the http block), run_nginx NAME starts it.
nginx_head() {
    mkdir -p "$tmp/$1"
    printf '%s\nworker_processes 1;\npid %s;\nerror_log %s;\nevents { worker_connections 4096; }\n' \
        "$USER_LINE" "$tmp/$1/nginx.pid" "$tmp/$1/error.log" >"$tmp/$1/nginx.conf"
}
run_nginx() {
    "$NGINX" -p "$tmp/$1" -c "$tmp/$1/nginx.conf" -g 'daemon off;' 2>"$tmp/$1/out" &
    remember $!
}

# --- the fake PMS (validation) and the PMS stand-in (proxied traffic) ---
echo "starting the fake PMS, the PMS stand-in and the service..." >&2
"$BIN/fake-pms" --no-request-log --user-token-prefix benchtok >"$tmp/fake.ports" 2>"$tmp/fake.log" &
remember $!
for _ in $(seq 100); do [ -s "$tmp/fake.ports" ] && break; sleep 0.05; done
PMS_PORT=$(sed -E 's/.*"port":([0-9]+).*/\1/' "$tmp/fake.ports")
CONTROL_PORT=$(sed -E 's/.*"controlPort":([0-9]+).*/\1/' "$tmp/fake.ports")
validations() { curl -s "http://127.0.0.1:$CONTROL_PORT/__fake/counts" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("/library/sections", 0))'; }

STANDIN_PORT=$(free_port)
nginx_head standin
cat >>"$tmp/standin/nginx.conf" <<CONF
http {
    access_log off;
    server {
        listen 127.0.0.1:$STANDIN_PORT;
        keepalive_requests 1000000;
        location / {
            default_type text/xml;
            return 200 '<MediaContainer size="0" identifier="com.plexapp.plugins.library"></MediaContainer>\n';
        }
    }
}
CONF
run_nginx standin

# --- the service, as deployed: audit on (to a file, as the journal takes standard error) ---
key=bench-frontend-key-0123456789
write_secret "$tmp/owner" ownr0000000000000000
write_secret "$tmp/key" "$key"
SERVICE_PORT=$(free_port)
GRPC_PORT=$(free_port)
"$BIN/plex-livetv-authz" serve --listen "unix:$tmp/authz.sock" --listen "127.0.0.1:$SERVICE_PORT" \
    --grpc-listen "unix:$tmp/grpc.sock" --grpc-listen "127.0.0.1:$GRPC_PORT" \
    --owner-token-file "$tmp/owner" --frontend-key-file "$tmp/key" --pms-url "http://127.0.0.1:$PMS_PORT" \
    >"$tmp/service.out" 2>"$tmp/service.log" &
remember $!
service_pid=$!
wait_http "http://127.0.0.1:$SERVICE_PORT/healthz"
wait_http "http://127.0.0.1:$STANDIN_PORT/"
sleep 1
fact rss_idle_mib "$(rss_mib "$service_pid")"
fact anon_idle_mib "$(anon_mib "$service_pid")"
validations_before=$(validations)

# The requests: a shared user's guide grid (elevated, audited; the token is cached after its first
# validation) and a library request (not a Live TV candidate: no audit, no validation).
LIVE='/tv.plex.providers.epg.xmltv:135/grid?type=1%2C4&sort=beginsAt&X-Plex-Product=Plex%20Web&X-Plex-Token=user0000000000000000'
LIBRARY='/library/metadata/4211/children?X-Plex-Product=Plex%20Web&X-Plex-Token=user0000000000000000'
decision_headers() {
    printf '%s\n' -H "X-Plexauthz-Key: $key" -H "X-Original-Method: GET" -H "X-Original-URI: $1" -H "X-Forwarded-For: 203.0.113.9"
}
mapfile -t LIVE_HEADERS < <(decision_headers "$LIVE")
mapfile -t LIBRARY_HEADERS < <(decision_headers "$LIBRARY")
answer_of() { curl -s -D - -o /dev/null "$@"; }
live_answer=$(answer_of "${LIVE_HEADERS[@]}" "http://127.0.0.1:$SERVICE_PORT/v1/nginx")
grep -q "^X-Plexauthz-Decision: elevated" <<<"$live_answer" || { echo "the Live TV request was not elevated:"; echo "$live_answer"; exit 1; }
forward_answer=$(answer_of -H "X-Plexauthz-Key: $key" -H "X-Forwarded-Method: GET" -H "X-Forwarded-Uri: $LIVE" \
    -H "X-Forwarded-For: 203.0.113.9" "http://127.0.0.1:$SERVICE_PORT/v1/forward")
grep -q "^X-Plexauthz-Decision: elevated" <<<"$forward_answer" || { echo "the forward-auth request was not elevated:"; echo "$forward_answer"; exit 1; }
library_answer=$(answer_of "${LIBRARY_HEADERS[@]}" "http://127.0.0.1:$SERVICE_PORT/v1/nginx")
grep -q "^HTTP/1.1 200" <<<"$library_answer" || { echo "the library request was not answered 200:"; echo "$library_answer"; exit 1; }

# The same headers from nginx: `add_header` lines made from the service's own answers.
add_headers() {
    tr -d '\r' | sed -n '2,$p' | grep -v -i -E '^(content-length|connection|date|server):|^$' |
        sed -E 's/^([^:]+): (.*)$/add_header \1 "\2" always;/'
}
live_add=$(add_headers <<<"$live_answer")
forward_add=$(add_headers <<<"$forward_answer")

# --- nginx: the decision ceiling (TCP, HTTP/1.1 and h2c) and the ideal decision service (Unix socket) ---
CEILING_PORT=$(free_port)
CEILING_H2_PORT=$(free_port)
nginx_head ceiling
cat >>"$tmp/ceiling/nginx.conf" <<CONF
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$CEILING_PORT;
        listen 127.0.0.1:$CEILING_H2_PORT http2;
        listen unix:$tmp/ideal.sock;
        location = /v1/forward {
$forward_add
            return 200;
        }
        location / {
$live_add
            return 200;
        }
    }
}
CONF
run_nginx ceiling
wait_http "http://127.0.0.1:$CEILING_PORT/v1/nginx"

# --- nginx frontends: the shipped files with the service, the same with the ideal service, a plain proxy ---
export NGINX_WORKER_CONNECTIONS=4096
mkdir -p "$tmp/nginx-service" "$tmp/nginx-ideal"
start_nginx "$NGINX" "$tmp/nginx-service" "$tmp/authz.sock" "$STANDIN_PORT"
NGINX_SERVICE_PORT=$NGINX_PORT
start_nginx "$NGINX" "$tmp/nginx-ideal" "$tmp/ideal.sock" "$STANDIN_PORT"
NGINX_IDEAL_PORT=$NGINX_PORT
NGINX_PLAIN_PORT=$(free_port)
nginx_head nginx-plain
cat >>"$tmp/nginx-plain/nginx.conf" <<CONF
http {
    access_log $tmp/nginx-plain/access.log;
    upstream pms { server 127.0.0.1:$STANDIN_PORT; keepalive 32; }
    server {
        listen 127.0.0.1:$NGINX_PLAIN_PORT;
        location / {
            proxy_pass http://pms;
            proxy_http_version 1.1;
            proxy_set_header Host \$host;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_buffering off;
        }
    }
}
CONF
run_nginx nginx-plain
wait_http "http://127.0.0.1:$NGINX_PLAIN_PORT/"

# --- Envoy 1.40 (one worker): the shipped ext_authz configs (gRPC and HTTP), and the gRPC one without
# ext_authz ---
python3 - "$tmp" "$STANDIN_PORT" <<'PY'
import socket, sys, yaml
tmp, standin = sys.argv[1], int(sys.argv[2])
def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
for name, shipped, keep_authz in (("envoy-service", "frontends/envoy/envoy-grpc.yaml", True),
                                  ("envoy-service-http", "frontends/envoy/envoy-http.yaml", True),
                                  ("envoy-plain", "frontends/envoy/envoy-grpc.yaml", False)):
    config = yaml.safe_load(open(shipped))
    listener = config["static_resources"]["listeners"][0]
    listen = port()
    listener["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": listen}
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    if not keep_authz:
        manager["http_filters"] = [f for f in manager["http_filters"] if f["name"] != "envoy.filters.http.ext_authz"]
    for cluster in config["static_resources"]["clusters"]:
        endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        if cluster["name"] == "pms":
            endpoint["address"]["socket_address"]["port_value"] = standin
        else:
            endpoint["address"]["pipe"]["path"] = f"{tmp}/grpc.sock" if "grpc" in cluster["name"] else f"{tmp}/authz.sock"
    yaml.safe_dump(config, open(f"{tmp}/{name}.yaml", "w"))
    open(f"{tmp}/{name}.port", "w").write(str(listen))
PY
for name in envoy-service envoy-service-http envoy-plain; do
    "$ENVOY" -c "$tmp/$name.yaml" --concurrency 1 --use-dynamic-base-id --log-level error >"$tmp/$name.log" 2>&1 &
    remember $!
done
ENVOY_SERVICE_PORT=$(cat "$tmp/envoy-service.port")
ENVOY_PLAIN_PORT=$(cat "$tmp/envoy-plain.port")
ENVOY_HTTP_PORT=$(cat "$tmp/envoy-service-http.port")

# --- Caddy: the shipped forward_auth config with the service and with the ideal one, and a plain proxy ---
caddy_from_shipped() {  # caddy_from_shipped NAME SOCKET
    local port
    port=$(free_port)
    sed -e "s|^:32401 {|http://127.0.0.1:$port {|" -e "s|unix//run/plex-livetv-authz/authz.sock|unix/$2|" \
        -e "s|127.0.0.1:32400|127.0.0.1:$STANDIN_PORT|g" frontends/caddy/Caddyfile >"$tmp/$1.Caddyfile"
    echo "$port" >"$tmp/$1.port"
}
caddy_from_shipped caddy-service "$tmp/authz.sock"
caddy_from_shipped caddy-ideal "$tmp/ideal.sock"
CADDY_PLAIN_PORT=$(free_port)
cat >"$tmp/caddy-plain.Caddyfile" <<CONF
{
	admin off
}
http://127.0.0.1:$CADDY_PLAIN_PORT {
	reverse_proxy 127.0.0.1:$STANDIN_PORT {
		flush_interval -1
	}
}
CONF
echo "$CADDY_PLAIN_PORT" >"$tmp/caddy-plain.port"
for name in caddy-service caddy-ideal caddy-plain; do
    XDG_DATA_HOME=$tmp/$name.data XDG_CONFIG_HOME=$tmp/$name.config \
        caddy run --adapter caddyfile --config "$tmp/$name.Caddyfile" >"$tmp/$name.log" 2>&1 &
    remember $!
done

# Every whole path answers 200 for the Live TV request before anything is measured.
for port in "$NGINX_SERVICE_PORT" "$NGINX_IDEAL_PORT" "$NGINX_PLAIN_PORT" "$ENVOY_SERVICE_PORT" "$ENVOY_PLAIN_PORT" "$ENVOY_HTTP_PORT" \
    "$(cat "$tmp/caddy-service.port")" "$(cat "$tmp/caddy-ideal.port")" "$CADDY_PLAIN_PORT"; do
    wait_http "http://127.0.0.1:$port/"
    status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$LIVE")
    [ "$status" = 200 ] || { echo "the Live TV request through 127.0.0.1:$port answered $status"; exit 1; }
done

# --- load ---
threads_for() { if [ "$1" -eq 1 ]; then echo 1; else echo 2; fi; }
run_wrk() {  # run_wrk NAME CONNS URL [wrk header args...]
    local name=$1 conns=$2 url=$3
    shift 3
    local threads
    threads=$(threads_for "$conns")
    wrk -t"$threads" -c"$conns" -d1s "$@" "$url" >/dev/null
    wrk -t"$threads" -c"$conns" -d"${DURATION}s" --latency "$@" "$url" >"$tmp/run.out"
    python3 scripts/bench-report.py wrk "$name" HTTP/1.1 "$conns" "$tmp/run.out" | tee -a "$rows"
}
run_h2load() {  # run_h2load NAME CONNS STREAMS URL [h2load args...]
    local name=$1 conns=$2 streams=$3 url=$4
    shift 4
    local threads
    threads=$(threads_for "$conns")
    rm -f "$tmp/h2.log"
    h2load -t"$threads" -c"$conns" -m"$streams" -D"$DURATION" --warm-up-time=1 --log-file="$tmp/h2.log" "$@" "$url" \
        >"$tmp/run.out"
    python3 scripts/bench-report.py h2load "$name" h2c "$conns" "$tmp/run.out" "$tmp/h2.log" | tee -a "$rows"
}

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1); $MODE mode, ${DURATION}s per run"
printf 'name\tprotocol\tconns\treq/s\tp50 ms\tp99 ms\terrors\n'
audit_before=$(grep -c plexlabelproxy_audit "$tmp/service.log" || true)
for conns in "${CONNECTIONS[@]}"; do
    run_wrk nginx-return-200 "$conns" "http://127.0.0.1:$CEILING_PORT/v1/nginx" "${LIVE_HEADERS[@]}"
    run_wrk service-elevated "$conns" "http://127.0.0.1:$SERVICE_PORT/v1/nginx" "${LIVE_HEADERS[@]}"
    run_wrk service-library "$conns" "http://127.0.0.1:$SERVICE_PORT/v1/nginx" "${LIBRARY_HEADERS[@]}"
    run_h2load nginx-return-200 "$conns" 1 "http://127.0.0.1:$CEILING_H2_PORT/v1/nginx" "${LIVE_HEADERS[@]}"
    run_h2load service-elevated "$conns" 1 "http://127.0.0.1:$SERVICE_PORT/v1/nginx" "${LIVE_HEADERS[@]}"
    run_h2load service-library "$conns" 1 "http://127.0.0.1:$SERVICE_PORT/v1/nginx" "${LIBRARY_HEADERS[@]}"
    run_wrk nginx-plain "$conns" "http://127.0.0.1:$NGINX_PLAIN_PORT$LIVE"
    run_wrk nginx+ideal "$conns" "http://127.0.0.1:$NGINX_IDEAL_PORT$LIVE"
    run_wrk nginx+service "$conns" "http://127.0.0.1:$NGINX_SERVICE_PORT$LIVE"
    run_wrk envoy-plain "$conns" "http://127.0.0.1:$ENVOY_PLAIN_PORT$LIVE"
    run_wrk envoy+service-grpc "$conns" "http://127.0.0.1:$ENVOY_SERVICE_PORT$LIVE"
    run_wrk envoy+service-http "$conns" "http://127.0.0.1:$ENVOY_HTTP_PORT$LIVE"
    run_wrk caddy-plain "$conns" "http://127.0.0.1:$CADDY_PLAIN_PORT$LIVE"
    run_wrk caddy+ideal "$conns" "http://127.0.0.1:$(cat "$tmp/caddy-ideal.port")$LIVE"
    run_wrk caddy+service "$conns" "http://127.0.0.1:$(cat "$tmp/caddy-service.port")$LIVE"
done

# gRPC Check calls straight from h2load (a CheckRequest serialised with Envoy's own protos), 4 x 32 streams.
PYTHON=$(interop_python)
"$PYTHON" - "$tmp/check.bin" "$LIVE" <<'PY'
import struct, sys
from envoy.service.auth.v3 import external_auth_pb2
r = external_auth_pb2.CheckRequest()
h = r.attributes.request.http
h.method, h.path = "GET", sys.argv[2]
h.headers["accept"] = "application/json"
r.attributes.source.address.socket_address.address = "203.0.113.9"
body = r.SerializeToString()
open(sys.argv[1], "wb").write(struct.pack(">BI", 0, len(body)) + body)
PY
grpc_status=$(nghttp -v -d "$tmp/check.bin" -H 'content-type: application/grpc' -H 'te: trailers' -H "x-plexauthz-key: $key" \
    "http://127.0.0.1:$GRPC_PORT/envoy.service.auth.v3.Authorization/Check" 2>&1 | grep -a -o 'grpc-status: [0-9]*' | head -1)
[ "$grpc_status" = "grpc-status: 0" ] || { echo "the Check call failed ($grpc_status)"; exit 1; }
run_h2load grpc-check-direct 4 32 "http://127.0.0.1:$GRPC_PORT/envoy.service.auth.v3.Authorization/Check" \
    -d "$tmp/check.bin" -H 'content-type: application/grpc' -H 'te: trailers' -H "x-plexauthz-key: $key"

fact pms_validations "$(($(validations) - validations_before)) (one per validation-cache lifetime of the one token used)"
fact audit_lines "$(($(grep -c plexlabelproxy_audit "$tmp/service.log" || true) - audit_before))"
fact rss_after_load_mib "$(rss_mib "$service_pid")"
fact anon_after_load_mib "$(anon_mib "$service_pid")"

# --- cold validation: 1,000 concurrent requests with one token nobody has seen, PMS answering in 100 ms ---
curl -s -o /dev/null -X PUT -d '{"validationDelayMs":100}' "http://127.0.0.1:$CONTROL_PORT/__fake/config"
before=$(validations)
cold_uri='/tv.plex.providers.epg.xmltv:135/grid?type=1&X-Plex-Token=benchtokcold000000000'
h2load -n 1000 -c 100 -m 10 -H "X-Plexauthz-Key: $key" -H "X-Original-Method: GET" -H "X-Original-URI: $cold_uri" \
    -H "X-Forwarded-For: 203.0.113.9" "http://127.0.0.1:$SERVICE_PORT/v1/nginx" >"$tmp/cold.out"
cold_validations=$(($(validations) - before))
cold_time=$(sed -n 's/^finished in \([0-9.]*[a-z]*\),.*/\1/p' "$tmp/cold.out")
cold_ok=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' "$tmp/cold.out")
fact cold "$cold_validations PMS validation(s), $cold_ok of 1000 answered 200, last answer after $cold_time"
curl -s -o /dev/null -X PUT -d '{"validationDelayMs":0}' "http://127.0.0.1:$CONTROL_PORT/__fake/config"

# --- memory with 100,000 cached tokens and 1,000 tracked playback sessions (a second service) ---
FILL_PORT=$(free_port)
"$BIN/plex-livetv-authz" serve --listen "127.0.0.1:$FILL_PORT" --cache-size 100000 --playback-sessions 1000 \
    --owner-token-file "$tmp/owner" --frontend-key-file "$tmp/key" --pms-url "http://127.0.0.1:$PMS_PORT" \
    >/dev/null 2>"$tmp/fill.log" &
remember $!
fill_pid=$!
wait_http "http://127.0.0.1:$FILL_PORT/healthz"
python3 - "$tmp" "http://127.0.0.1:$FILL_PORT" <<'PY'
import sys
tmp, base = sys.argv[1], sys.argv[2]
with open(f"{tmp}/tokens.txt", "w") as f:
    for i in range(100_000):
        f.write(f"{base}/v1/envoy/livetv/dvrs?X-Plex-Token=benchtok{i:012d}\n")
with open(f"{tmp}/sessions.txt", "w") as f:
    for i in range(1_000):
        f.write(f"{base}/v1/envoy/livetv/dvrs/135/channels/c7pt/tune?X-Plex-Token=benchtok{i:012d}"
                f"&X-Plex-Session-Identifier=benchsession{i:06d}\n")
PY
h2load -n 100000 -c 1 -m 64 -i "$tmp/tokens.txt" -H "X-Plexauthz-Key: $key" -H "X-Forwarded-For: 203.0.113.9" \
    >"$tmp/fill-tokens.out"
printf 'x=1' >"$tmp/tune-body"  # h2load sends a POST only with a body; a tune's form fields are irrelevant here
h2load -n 1000 -c 1 -m 16 -i "$tmp/sessions.txt" -d "$tmp/tune-body" -H "X-Plexauthz-Key: $key" \
    -H "Content-Type: application/x-www-form-urlencoded" \
    -H "X-Forwarded-For: 203.0.113.9" >"$tmp/fill-sessions.out"
grep -q "100000 succeeded" "$tmp/fill-tokens.out" || { echo "filling the cache failed:"; cat "$tmp/fill-tokens.out"; exit 1; }
grep -q "1000 succeeded" "$tmp/fill-sessions.out" || { echo "tracking the sessions failed:"; cat "$tmp/fill-sessions.out"; exit 1; }
metrics=$(curl -s "http://127.0.0.1:$FILL_PORT/metrics")
entries=$(awk '/^plexauthz_validation_cache_entries /{printf "%d", $2}' <<<"$metrics")
sessions=$(awk '/^plexauthz_tracked_playback_sessions /{printf "%d", $2}' <<<"$metrics")
fact filled "${entries:-?} / ${sessions:-?}"
fact rss_filled_mib "$(rss_mib "$fill_pid")"
fact anon_filled_mib "$(anon_mib "$fill_pid")"

fact date "$(date -u +%Y-%m-%d)"
fact machine "$(nproc)-core $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
fact duration "${DURATION} s"
echo
doc=docs/benchmarks.md
[ "$WRITE" -eq 1 ] || doc=-
python3 scripts/bench-report.py report "$rows" "$facts" "$MODE" "$COMMAND" "$doc"
[ "$WRITE" -eq 1 ] && echo "written to docs/benchmarks.md (section: $MODE)"
echo "bench ($MODE) took $(($(date +%s) - started)) s"
