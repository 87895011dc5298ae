#!/usr/bin/env bash
# What the PostgreSQL state store costs per decision, next to the in-memory store (make bench-shared-state;
# not in CI). Release build, a throwaway PostgreSQL cluster on loopback, the fake PMS; client, service and
# database share the machine.
#  1. a Live TV candidate with a cached valid token (the hot path: reads the local mirror only),
#     h2load HTTP/1.1, 16 connections, memory store vs PostgreSQL store;
#  2. failures from distinct sources (each one an atomic upsert + NOTIFY in the background): how fast the
#     database takes them, measured until every row is there.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release}
REQUESTS=${REQUESTS:-50000}
FAILURES=${FAILURES:-2000}
command -v h2load >/dev/null || { echo "h2load missing: apt-get install nghttp2-client"; exit 1; }
source scripts/lib.sh
tmp=$(mktemp -d)
cluster=$(mktemp -d -u /tmp/plexauthz-bench-pg.XXXX)
trap 'stop_all; bash Tests/postgres/cluster.sh destroy "$cluster"; rm -rf "$tmp"' EXIT
echo "building and starting: fake PMS, PostgreSQL on loopback..." >&2
start_fake_pms "$BIN" "$tmp"
pg_port=$(free_port)
bash Tests/postgres/cluster.sh start "$cluster" "$pg_port"
store="postgres://plexauthz@127.0.0.1:$pg_port/plexauthz?sslmode=disable"
key=bench-frontend-key-0123456789
write_secret "$tmp/owner" ownr0000000000000000
write_secret "$tmp/key" "$key"
summary() { grep -E "^finished in|^requests:|^status codes:" | sed 's/^/    /'; }

serve() { # serve PORT [STORE]
    local env=()
    [ -n "${2:-}" ] && env=(PLEX_LIVETV_AUTHZ_STATE_STORE="$2")
    env "${env[@]}" "$BIN/plex-livetv-authz" serve --listen "127.0.0.1:$1" --owner-token-file "$tmp/owner" \
        --frontend-key-file "$tmp/key" --pms-url "http://127.0.0.1:$PMS_PORT" --audit-summary-interval -1s \
        --log-level warning 2>>"$tmp/service.log" &
    remember $!
    for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$1/healthz" && break; sleep 0.05; done
    if [ -n "${2:-}" ]; then
        for _ in $(seq 200); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/readyz/state")" = 200 ] && break; sleep 0.05; done
    fi
}

target='/tv.plex.providers.epg.xmltv:135/grid?type=1%2C4&X-Plex-Token=user0000000000000000'
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1); client, service and PostgreSQL share it"
for kind in memory postgres; do
    port=$(free_port)
    if [ "$kind" = postgres ]; then serve "$port" "$store"; else serve "$port"; fi
    curl -s -o /dev/null -H "x-plexauthz-key: $key" -H 'x-original-method: GET' -H "x-original-uri: $target" \
        -H 'x-forwarded-for: 203.0.113.9' "http://127.0.0.1:$port/v1/nginx"
    echo
    echo "$kind store: elevated candidate, cached token, HTTP/1.1 keep-alive, 16 connections, $REQUESTS requests:"
    h2load --h1 -n "$REQUESTS" -c 16 -H "x-plexauthz-key: $key" -H 'x-original-method: GET' \
        -H "x-original-uri: $target" -H 'x-forwarded-for: 203.0.113.9' "http://127.0.0.1:$port/v1/nginx" | summary
    if [ "$kind" = postgres ]; then
        echo
        echo "postgres store: $FAILURES failures from distinct sources (atomic upsert + NOTIFY each, in the background):"
        python3 - "$port" "$key" "$FAILURES" <<'PY'
import http.client, sys, time
port, key, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
connection = http.client.HTTPConnection("127.0.0.1", port)
started = time.monotonic()
for i in range(count):
    connection.request("GET", "/v1/nginx", headers={
        "X-Plexauthz-Key": key, "X-Original-Method": "GET", "X-Original-URI": "/livetv/dvrs",
        "X-Forwarded-For": "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255)})
    connection.getresponse().read()
print("    decisions answered in %.2f s (%.0f/s, one connection, sequential)" % (time.monotonic() - started, count / (time.monotonic() - started)))
PY
        started=$(date +%s.%N)
        for _ in $(seq 600); do
            rows=$(psql -h 127.0.0.1 -p "$pg_port" -U plexauthz -d plexauthz -tAc "SELECT count(*) FROM plexauthz_sources WHERE source <> ''")
            [ "$rows" -ge "$FAILURES" ] && break
            sleep 0.05
        done
        echo "    rows in PostgreSQL: $rows; the queue drained $(python3 -c "print('%.2f' % ($(date +%s.%N) - $started))") s after the last answer"
    fi
    stop_all
    PLEXAUTHZ_PIDS=()
    start_fake_pms "$BIN" "$tmp"
done
