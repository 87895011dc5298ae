# Shared by the demo, the interop test and the benchmarks: a venv for the Python interop client, free
# loopback ports, the fake PMS, and process clean-up. Source it; it defines functions only.

# Processes started with `remember` are stopped (and the directory removed) by `stop_all`.
PLEXAUTHZ_PIDS=()
remember() { PLEXAUTHZ_PIDS+=("$1"); }
stop_all() {
    for pid in "${PLEXAUTHZ_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PLEXAUTHZ_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PLEXAUTHZ_PIDS=()
    if [ -n "${1:-}" ]; then rm -rf "$1"; fi
}

# A free TCP port on 127.0.0.1 (bound then released).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# The venv with the pinned interop client packages (Tests/interop/requirements.txt); prints its python.
interop_python() {
    local venv=.build-interop-venv
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import grpc, envoy.service.auth.v3' 2>/dev/null; then
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install -q --disable-pip-version-check -r Tests/interop/requirements.txt >&2
    fi
    echo "$venv/bin/python"
}

# start_fake_pms BIN_DIR WORK_DIR: starts fake-pms on ephemeral ports, sets PMS_PORT and CONTROL_PORT.
start_fake_pms() {
    "$1/fake-pms" >"$2/fake.ports" 2>"$2/fake.log" &
    remember $!
    for _ in $(seq 100); do [ -s "$2/fake.ports" ] && break; sleep 0.05; done
    PMS_PORT=$(sed -E 's/.*"port":([0-9]+).*/\1/' "$2/fake.ports")
    CONTROL_PORT=$(sed -E 's/.*"controlPort":([0-9]+).*/\1/' "$2/fake.ports")
}

# write_secret FILE VALUE: a 0600 file holding VALUE.
write_secret() { (umask 077 && echo "$2" >"$1"); }

# start_nginx NGINX WORK_DIR AUTHZ_SOCKET PMS_PORT: nginx (one worker) with the shipped frontends/nginx files
# on a free loopback port, everything under WORK_DIR; sets NGINX_PORT.
start_nginx() {
    local nginx=$1 work=$2 socket=$3 pms_port=$4
    NGINX_PORT=$(free_port)
    cp frontends/nginx/plexauthz-proxy.conf "$work/plexauthz-proxy.conf"
    sed -e "s|listen 32401;|listen 127.0.0.1:$NGINX_PORT;|" \
        -e "s|server 127.0.0.1:32400;|server 127.0.0.1:$pms_port;|" \
        -e "s|server unix:/run/plex-livetv-authz/authz.sock;|server unix:$socket;|" \
        -e "s|/etc/nginx/snippets/plexauthz-proxy.conf|$work/plexauthz-proxy.conf|" \
        frontends/nginx/plex-livetv.conf >"$work/plex-livetv.conf"
    USER_LINE=""
    [ "$(id -u)" -eq 0 ] && USER_LINE="user root root;"
    cat >"$work/nginx.conf" <<CONF
$USER_LINE
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections ${NGINX_WORKER_CONNECTIONS:-256}; }
http {
    access_log $work/nginx-access.log;
    client_body_temp_path $work/client_body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    include $work/plex-livetv.conf;
}
CONF
    "$nginx" -p "$work" -c "$work/nginx.conf" -g 'daemon off;' 2>"$work/nginx.out" &
    remember $!
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/identity" && break; sleep 0.05; done
}
