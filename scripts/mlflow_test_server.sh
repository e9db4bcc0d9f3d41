#!/usr/bin/env bash
# Start a throwaway MLflow tracking server on 127.0.0.1 for the shared-server test, and print its URI.
# Its runs go to a database of its own on the PostgreSQL server of scripts/pg_test_server.sh (BENCHMARK_TEST_PG_URL),
# its artifacts to DIR/artifacts (proxied by the server, as a team server would).
# Usage: eval "$(scripts/pg_test_server.sh start PGDIR)"        # first: PostgreSQL
#        eval "$(scripts/mlflow_test_server.sh start DIR)"      -> exports BENCHMARK_TEST_MLFLOW_URI
#        scripts/mlflow_test_server.sh stop DIR
# `mlflow` and a Python with psycopg2 must be on PATH (the project's .venv/bin). The server runs in its own process
# group (it spawns uvicorn workers and job runners), and stop ends the whole group.
set -euo pipefail
action=${1:?start|stop}
dir=${2:?server directory}

case "$action" in
  start)
    pg_url=${BENCHMARK_TEST_PG_URL:?start PostgreSQL first: eval \"\$(scripts/pg_test_server.sh start DIR)\"}
    mkdir -p "$dir/artifacts"
    # a separate database on the same server: postgresql+psycopg2://user@host:port/<db> -> .../mlflow_test
    backend=$(python - "$pg_url" <<'EOF'
import sys
import psycopg2
from sqlalchemy.engine import make_url

url = make_url(sys.argv[1])
conn = psycopg2.connect(host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database)
conn.autocommit = True   # CREATE DATABASE refuses to run inside a transaction
try:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = 'mlflow_test'")
        if cur.fetchone() is None:
            cur.execute("CREATE DATABASE mlflow_test")
finally:
    conn.close()
# the driver stays explicit: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which is not installed
print(url.set(drivername="postgresql+psycopg2", database="mlflow_test").render_as_string(hide_password=False))
EOF
)
    port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    setsid mlflow server --backend-store-uri "$backend" --artifacts-destination "$dir/artifacts" \
      --host 127.0.0.1 --port "$port" --workers 1 >"$dir/server.log" 2>&1 < /dev/null &
    pid=$!
    echo "$pid" > "$dir/pid"
    probe='import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)'
    for _ in $(seq 240); do   # about 2 minutes; it usually answers within 15 s
      kill -0 "$pid" 2>/dev/null || { echo "mlflow server exited; see $dir/server.log" >&2; exit 1; }
      python -c "$probe" "http://127.0.0.1:$port/health" 2>/dev/null && break
      sleep 0.5
    done
    python -c "$probe" "http://127.0.0.1:$port/health" 2>/dev/null \
      || { echo "mlflow server did not answer /health on port $port; see $dir/server.log" >&2; exit 1; }
    echo "export BENCHMARK_TEST_MLFLOW_URI=http://127.0.0.1:$port"
    ;;
  stop)
    [ -f "$dir/pid" ] || exit 0
    pgid=$(cat "$dir/pid")
    kill -TERM -- "-$pgid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pgid" 2>/dev/null || true
    rm -f "$dir/pid"
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
