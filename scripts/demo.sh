#!/usr/bin/env bash
# `make demo`: the fake Plex server, plex-livetv-authz and a real nginx on loopback, everything under one
# temporary directory, nginx running as the invoking user. Shows three requests and what Plex received,
# then keeps running until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "nginx is not installed: installing Debian's nginx package (needs root or sudo)..."
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends nginx >/dev/null
    else sudo apt-get update -qq && sudo apt-get install -y -qq --no-install-recommends nginx >/dev/null; fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
command -v curl >/dev/null 2>&1 || { echo "curl is needed for the demo (apt-get install curl)"; exit 1; }

echo "Building (the first build takes several minutes)..."
swift build -q --product plex-livetv-authz
swift build -q --product fake-pms
BIN=.build/debug

source scripts/lib.sh
DEMO=$(mktemp -d /tmp/plexauthz-demo.XXXXXX)
cleanup() {
    trap - EXIT INT TERM
    stop_all "$DEMO"
}
trap cleanup EXIT
trap 'echo; echo "Stopping."; cleanup; exit 0' INT TERM

# 1. The fake Plex server (owner ownr0000000000000000, shared user user0000000000000000).
start_fake_pms "$BIN" "$DEMO"

# 2. plex-livetv-authz on a Unix socket, owner token from a 0600 file.
write_secret "$DEMO/owner-token" ownr0000000000000000
"$BIN/plex-livetv-authz" serve --listen "unix:$DEMO/authz.sock" --owner-token-file "$DEMO/owner-token" \
    --pms-url "http://127.0.0.1:$PMS_PORT" --abuse-state-file "$DEMO/state/blocks.json" 2>"$DEMO/service.log" &
remember $!
for _ in $(seq 100); do [ -S "$DEMO/authz.sock" ] && break; sleep 0.05; done

# 3. nginx with the shipped frontends/nginx files, on a free loopback port.
start_nginx "$NGINX" "$DEMO" "$DEMO/authz.sock" "$PMS_PORT"

FRONT="http://127.0.0.1:$NGINX_PORT"
upstream() { # what the fake Plex server received last on a path
    curl -s "http://127.0.0.1:$CONTROL_PORT/__fake/requests?path=$1" | python3 -c '
import json, sys
entry = json.load(sys.stdin)[-1]
print("    Plex received: %s %s?%s" % (entry["method"], entry["path"], entry["rawQuery"]))
print("    query token: %s   header token: %s   -> Plex answered %d" % (
    ",".join(entry["queryTokens"]) or "none", ",".join(entry["headerTokens"]) or "none", entry["status"]))'
}
show() { # title, path, token
    echo
    echo "$1"
    echo "  client: GET $2?X-Plex-Token=$3"
    code=$(curl -s -o /dev/null -w '%{http_code}' "$FRONT$2?X-Plex-Token=$3")
    echo "    client got HTTP $code"
    upstream "$2"
}

echo
echo "plex-livetv-authz demo: nginx on $FRONT, fake Plex on 127.0.0.1:$PMS_PORT, service on $DEMO/authz.sock"
echo "Tokens: owner ownr0000000000000000 (only the service knows it), shared user user0000000000000000."
show "1. A shared user's Live TV request is ELEVATED (the owner token goes to Plex, never to the client):" \
    /livetv/dvrs user0000000000000000
show "2. The same user's library request is PRESERVED (their own token):" \
    /library/sections user0000000000000000
show "3. A fake token is REFUSED elevation (forwarded unchanged, Plex rejects it):" \
    /livetv/dvrs fakefakefakefakefake
echo
echo "Audit log of the service:"
grep plexlabelproxy_audit "$DEMO/service.log" | sed 's/^/  /'
echo
echo "Still running. Try:"
echo "  curl -i '$FRONT/livetv/dvrs?X-Plex-Token=user0000000000000000'"
echo "  .build/debug/plex-livetv-authz explain --method GET --target '/livetv/dvrs?X-Plex-Token=abc'"
echo "  curl -s --unix-socket $DEMO/authz.sock http://localhost/metrics"
echo "  curl -s --unix-socket $DEMO/authz.sock http://localhost/status > status.html    (the status page)"
echo "  .build/debug/plex-livetv-authz blocks list --service unix:$DEMO/authz.sock"
echo "  curl -s 'http://127.0.0.1:$CONTROL_PORT/__fake/requests'    (what Plex received)"
echo "Logs: $DEMO/service.log  $DEMO/nginx-error.log"
echo "Press Ctrl-C to stop."
while true; do
    sleep 3600 &
    remember $!
    wait $! || true
done
