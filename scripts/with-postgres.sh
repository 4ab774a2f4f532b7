#!/usr/bin/env bash
# with-postgres.sh CMD [ARGS...]
#
# Start a throwaway PostgreSQL cluster on a free loopback port, run CMD with
# TRAYECTO_TEST_DATABASE_URL exported (postgresql://trayecto@127.0.0.1:PORT/postgres),
# then stop the cluster and delete it -- on success, on failure and on Ctrl-C.
# The exit code is CMD's.
#
# The server runs with these settings:
#   -c max_connections=300                       (always; pytest-xdist workers need room)
#   $PG_EXTRA_OPTS, by default
#   -c fsync=off -c synchronous_commit=off -c full_page_writes=off
#
# The default gives up durability for speed. That is fine for a test cluster that is
# thrown away, but NOT for benchmarks: a benchmark must set PG_EXTRA_OPTS, e.g.
#   PG_EXTRA_OPTS='' scripts/with-postgres.sh ...            (stock, durable settings)
#   PG_EXTRA_OPTS='-c shared_buffers=256MB' scripts/with-postgres.sh ...
# An empty PG_EXTRA_OPTS counts as set (no extra options). Options in PG_EXTRA_OPTS
# come last, so they also override max_connections. Values must not contain spaces.
#
# As root, initdb/pg_ctl run as the unprivileged `postgres` user (PostgreSQL refuses to
# run as root); otherwise they run as the current user. The command itself runs as the
# caller.
set -euo pipefail

me=with-postgres
die() { echo "$me: error: $*" >&2; exit 1; }

[[ $# -ge 1 ]] || die "usage: $0 CMD [ARGS...]"

# --- find the binaries: highest /usr/lib/postgresql/N/bin, else PATH ---------------
pg_bin=""
if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    pg_bin=$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)
    pg_bin=$(dirname "$pg_bin")
elif command -v initdb >/dev/null 2>&1; then
    pg_bin=$(dirname "$(command -v initdb)")
fi
if [[ -z $pg_bin || ! -x $pg_bin/initdb || ! -x $pg_bin/pg_ctl ]]; then
    die "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin" \
        "or on PATH. Install the Debian package 'postgresql' (make system-deps does it as root)."
fi
pg_version=$("$pg_bin/pg_ctl" --version | sed 's/^pg_ctl (PostgreSQL) //')

# --- who runs the server -----------------------------------------------------------
as_pg=()
if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 \
        || die "running as root, but there is no 'postgres' user to run the server as" \
               "(the Debian package 'postgresql' creates it)."
    command -v runuser >/dev/null 2>&1 || die "running as root, but runuser is missing."
    as_pg=(runuser -u postgres --)
fi

# --- throwaway directory and cleanup -----------------------------------------------
pg_tmp=$(mktemp -d "${TMPDIR:-/tmp}/trayecto-pg.XXXXXX")
pg_data=$pg_tmp/data
pg_log=$pg_tmp/server.log
started=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [[ $started -eq 1 ]]; then
        local pm_pid=""
        [[ -r $pg_data/postmaster.pid ]] && pm_pid=$(head -n 1 "$pg_data/postmaster.pid" 2>/dev/null || true)
        ( cd "$pg_tmp" && "${as_pg[@]}" "$pg_bin/pg_ctl" stop -D "$pg_data" -s -w -t 30 -m fast ) \
            >/dev/null 2>&1 \
        || ( cd "$pg_tmp" && "${as_pg[@]}" "$pg_bin/pg_ctl" stop -D "$pg_data" -s -w -t 30 -m immediate ) \
            >/dev/null 2>&1 \
        || echo "$me: warning: could not stop the server in $pg_data" >&2
        # The postmaster was orphaned by pg_ctl; give init a moment to reap it so that
        # no (zombie) postgres process is left behind when we return.
        if [[ $pm_pid =~ ^[0-9]+$ ]]; then
            for _ in $(seq 50); do [[ -e /proc/$pm_pid ]] || break; sleep 0.1; done
        fi
    fi
    rm -rf "$pg_tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [[ ${#as_pg[@]} -gt 0 ]]; then
    chown postgres: "$pg_tmp"
fi
chmod 700 "$pg_tmp"

# Run a server binary as the right user, from a directory that user can enter.
pg() { ( cd "$pg_tmp" && "${as_pg[@]}" "$@" ); }

show_log() {  # $1 = file
    [[ -f $1 ]] && { echo "----- $1 (last 40 lines) -----" >&2; tail -n 40 "$1" >&2; }
    return 0
}

# --- initdb ------------------------------------------------------------------------
initdb_log=$pg_tmp/initdb.log
init() { pg "$pg_bin/initdb" -D "$pg_data" -A trust -U trayecto --encoding=UTF8 "$@" \
             >"$initdb_log" 2>&1; }
if ! init --locale=C.UTF-8; then
    rm -rf "$pg_data"
    if ! init --no-locale; then
        show_log "$initdb_log"
        die "initdb failed"
    fi
fi

# --- start on a free loopback port (retry in case another process grabs it) -------
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
base_opts="-c max_connections=300"
extra_opts=${PG_EXTRA_OPTS-"-c fsync=off -c synchronous_commit=off -c full_page_writes=off"}

port=""
for attempt in 1 2 3; do
    port=$(free_port)
    started=1   # from here on, cleanup tries to stop whatever may be running
    if pg "$pg_bin/pg_ctl" start -D "$pg_data" -l "$pg_log" -s -w -t 60 \
            -o "-h 127.0.0.1 -p $port -k $pg_tmp $base_opts $extra_opts" >/dev/null 2>&1; then
        break
    fi
    started=0
    if [[ $attempt -eq 3 ]]; then
        show_log "$pg_log"
        die "could not start PostgreSQL $pg_version (see log above)"
    fi
    echo "$me: start on port $port failed, retrying on another port" >&2
done

export TRAYECTO_TEST_DATABASE_URL="postgresql://trayecto@127.0.0.1:$port/postgres"
echo "$me: PostgreSQL $pg_version on 127.0.0.1:$port (throwaway cluster in $pg_tmp;" \
     "options: ${extra_opts:-none})" >&2

# --- run the command; its exit code is ours ----------------------------------------
set +e
"$@"
rc=$?
set -e
exit "$rc"
