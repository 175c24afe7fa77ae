#!/usr/bin/env bash
# Start Redis (and, with --postgres, PostgreSQL) on 127.0.0.1 if they are not
# answering. Servers elsewhere are left alone: a clear message says so.
set -euo pipefail
py=${PYTHON:-.venv/bin/python}

redis_up() { "$py" -c "import redis,sys; redis.Redis.from_url(sys.argv[1], socket_timeout=2).ping()" "$1" >/dev/null 2>&1; }

redis_url=${REDIS_URL:-redis://127.0.0.1:6379/0}
if ! redis_up "$redis_url"; then
  case "$redis_url" in
    redis://127.0.0.1*|redis://localhost*)
      echo ">> starting redis-server on 127.0.0.1:6379"
      redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
      for _ in $(seq 50); do redis_up "$redis_url" && break; sleep 0.1; done
      redis_up "$redis_url" || { echo "Redis did not come up at $redis_url" >&2; exit 1; } ;;
    *) echo "Redis is not answering at $redis_url" >&2; exit 1 ;;
  esac
fi

if [ "${1:-}" = "--postgres" ]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo ">> starting PostgreSQL"
    if command -v pg_ctlcluster >/dev/null 2>&1; then
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
    else
      echo "PostgreSQL is not running on 127.0.0.1:5432 and pg_ctlcluster is not available to start it" >&2
      exit 1
    fi
    for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.1; done
    pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL did not come up" >&2; exit 1; }
  fi
fi
