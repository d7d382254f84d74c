#!/usr/bin/env bash
# Prints (last line of stdout) a postgres:// URL for the authdb-postgres tests:
#
#   url=$(bash .ci/postgres.sh | tail -n 1)
#   AUTHDB_POSTGRES_URL="$url" cargo test -p authdb-postgres
#
# 1. If a server answers on 127.0.0.1:5432 (the project's machines start one: trust auth,
#    database `test`), its URL is printed and nothing else is done.
# 2. Otherwise PostgreSQL is installed (apt-get install -y postgresql) if needed, and a
#    throwaway cluster is started on 127.0.0.1 (port 54329 unless AUTHDB_PG_PORT is set) in a
#    temporary directory, by an unprivileged user when running as root (postgres refuses to
#    run as root), with trust authentication, and a database `test` is created. The cluster
#    keeps running after the script exits; its directory, log and a stop command are printed
#    to stderr. Set AUTHDB_PG_THROWAWAY=1 to start the throwaway cluster even when 5432
#    answers (to test this path).
#
# Every test makes and drops schemas of its own, so one database serves any number of runs.
# How long this took is printed to stderr.
set -euo pipefail

started=$(date +%s.%N)
took() {
    local now
    now=$(date +%s.%N)
    awk -v a="$started" -v b="$now" 'BEGIN { printf "postgres.sh: ready in %.1f s\n", b - a }' >&2
}

have() { command -v "$1" >/dev/null 2>&1; }

# The PostgreSQL binaries (pg_ctl, initdb) are not on PATH on Debian/Ubuntu.
pg_bin() {
    local b
    for b in /usr/lib/postgresql/*/bin; do
        [ -x "$b/pg_ctl" ] && { echo "$b"; }
    done | sort -V | tail -n 1
}

answers() { # host port
    if have pg_isready; then
        pg_isready -q -h "$1" -p "$2" -t 3
    else
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
    fi
}

# 1. The machine's server.
if [ -z "${AUTHDB_PG_THROWAWAY:-}" ] && answers 127.0.0.1 5432; then
    user=postgres
    if have psql && ! psql -h 127.0.0.1 -p 5432 -U "$user" -d test -Atqc 'select 1' >/dev/null 2>&1; then
        user=root
    fi
    echo "postgres.sh: using the server on 127.0.0.1:5432 (user $user, database test)" >&2
    took
    echo "postgres://$user@127.0.0.1:5432/test"
    exit 0
fi

# 2. A throwaway cluster.
port=${AUTHDB_PG_PORT:-54329}
bin=$(pg_bin || true)
if [ -z "$bin" ]; then
    echo "postgres.sh: installing postgresql (apt-get)" >&2
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    bin=$(pg_bin)
    # The package may start its own cluster on 5432; it is left alone (we use our own port).
fi
[ -n "$bin" ] || { echo "postgres.sh: no PostgreSQL binaries found" >&2; exit 1; }

dir=$(mktemp -d /tmp/authdb-pg.XXXXXX)
if [ "$(id -u)" -eq 0 ]; then
    # postgres refuses to run as root: run the cluster as an unprivileged user.
    runas=postgres
    id "$runas" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$runas"
    chown "$runas" "$dir"
    as() { su -s /bin/sh "$runas" -c "$*"; }
else
    runas=$(id -un)
    as() { sh -c "$*"; }
fi

as "'$bin/initdb' -D '$dir/data' -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >'$dir/initdb.log' 2>&1" || {
    cat "$dir/initdb.log" >&2
    exit 1
}
as "'$bin/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w -t 60 \
    -o \"-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir' -c max_connections=200 -c fsync=off\" start" >&2 || {
    cat "$dir/server.log" >&2
    exit 1
}
as "'$bin/createdb' -h 127.0.0.1 -p $port -U postgres test"

echo "postgres.sh: throwaway cluster in $dir (user $runas, port $port, log $dir/server.log)" >&2
echo "postgres.sh: stop it with: su -s /bin/sh $runas -c \"'$bin/pg_ctl' -D '$dir/data' stop\"" >&2
took
echo "postgres://postgres@127.0.0.1:$port/test"
