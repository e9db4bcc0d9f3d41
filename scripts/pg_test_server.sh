#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the distributed-tuning tests, and print its SQLAlchemy URL.
# Usage: eval "$(scripts/pg_test_server.sh start DIR)"   -> exports BENCHMARK_TEST_PG_URL
#        scripts/pg_test_server.sh stop DIR
# initdb refuses to run as root, so the server runs as the `postgres` user on a data directory it owns.
set -euo pipefail
action=${1:?start|stop}
dir=${2:?data directory}
bindir=$(pg_config --bindir 2>/dev/null || true)
if [ ! -x "$bindir/initdb" ]; then
  for candidate in /usr/lib/postgresql/*/bin; do [ -x "$candidate/initdb" ] && bindir=$candidate; done
fi
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "$action" in
  start)
    if [ ! -x "$bindir/initdb" ]; then
      echo "PostgreSQL server binaries not found; install them: apt-get install -y postgresql" >&2
      exit 1
    fi
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust >/dev/null
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $port -c fsync=off -c unix_socket_directories=$dir -c max_connections=200" start >/dev/null
    as_pg "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres optuna_test
    echo "export BENCHMARK_TEST_PG_URL=postgresql+psycopg2://postgres@127.0.0.1:$port/optuna_test"
    ;;
  stop)
    [ -d "$dir/data" ] && as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
