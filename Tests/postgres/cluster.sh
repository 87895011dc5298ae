#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the shared-state tests, on loopback, in a directory of its own:
#   cluster.sh start DIR PORT    initdb (first time) and start; prints nothing, exits 0 when it accepts
#   cluster.sh stop DIR          stop (fast), keeping the data (a "restart mid-run" is stop + start)
#   cluster.sh destroy DIR       stop and remove the directory
# Debian's postgresql server binaries; run as the postgres user when started by root (initdb refuses root).
set -euo pipefail
# Under a test runner that raised the open-file limit to millions, initdb and pg_ctl spend seconds closing
# descriptors that do not exist.
ulimit -n 4096 2>/dev/null || true
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "PostgreSQL server missing: apt-get install postgresql" >&2; exit 1; }
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
command=$1 dir=$2
case "$command" in
start)
    port=$3
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        mkdir -p "$dir"
        [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
        as_owner "$bin/initdb" -D "$dir/data" -U plexauthz --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U plexauthz -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname='plexauthz'" | grep -q 1 \
        || as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U plexauthz plexauthz
    ;;
stop)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
destroy)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
*)
    echo "usage: cluster.sh start DIR PORT | stop DIR | destroy DIR" >&2
    exit 2
    ;;
esac
