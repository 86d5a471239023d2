#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests (issue 15): initdb into a new temporary
# directory as the `postgres` user, started on a Unix socket in that directory only (no
# TCP port, nothing reachable from elsewhere), with an empty `mpwatch` database.
#
#   eval "$(scripts/postgres-throwaway.sh start)"   # exports MPWATCH_TEST_POSTGRES_URL
#                                                   # and MPWATCH_TEST_POSTGRES_DIR
#   scripts/postgres-throwaway.sh stop "$MPWATCH_TEST_POSTGRES_DIR"
#
# Uses Debian's PostgreSQL server (/usr/lib/postgresql/*/bin); run as root (it switches
# to `postgres` with runuser) or as `postgres` itself.
set -euo pipefail

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [[ -z $bin || ! -x $bin/initdb ]]; then
    echo "no PostgreSQL server found under /usr/lib/postgresql (apt-get install postgresql)" >&2
    exit 1
fi
as_postgres() {
    if [[ $(id -un) == postgres ]]; then "$@"; else runuser -u postgres -- "$@"; fi
}

case ${1:-} in
start)
    dir=$(mktemp -d /tmp/mpwatch-pg.XXXXXX)
    chown postgres: "$dir" 2>/dev/null || true
    chmod 700 "$dir"
    as_postgres "$bin/initdb" --pgdata="$dir/data" --username=postgres --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    # Unix socket only: listen_addresses empty. The port only names the socket file.
    port=$((20000 + RANDOM % 20000))
    as_postgres "$bin/pg_ctl" --pgdata="$dir/data" --log="$dir/server.log" --wait \
        -o "-c listen_addresses='' -k $dir -p $port -c fsync=off -c full_page_writes=off" start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
    as_postgres "$bin/createdb" --host="$dir" --port="$port" --username=postgres mpwatch
    # The socket directory as the host (libpq and tokio-postgres both read it so).
    echo "export MPWATCH_TEST_POSTGRES_URL='postgresql:///mpwatch?host=${dir}&port=${port}&user=postgres'"
    echo "export MPWATCH_TEST_POSTGRES_DIR='$dir'"
    ;;
stop)
    dir=${2:?usage: $0 stop DIR}
    [[ -d $dir/data ]] || { echo "$dir is not a throwaway cluster" >&2; exit 1; }
    as_postgres "$bin/pg_ctl" --pgdata="$dir/data" --mode=immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start | stop DIR" >&2
    exit 2
    ;;
esac
