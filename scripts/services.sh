#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer on 127.0.0.1 for the test suite, starting private
# instances (under /tmp/ponte-pg, /tmp/ponte-redis.pid) when none is running.
# Honours PONTE_TEST_DATABASE_URL / PONTE_TEST_REDIS_URL when they point elsewhere.
set -euo pipefail

PG_PORT="${PONTE_TEST_PG_PORT:-5432}"
REDIS_PORT="${PONTE_TEST_REDIS_PORT:-6379}"

pg_up() { (exec 3<>"/dev/tcp/127.0.0.1/$PG_PORT") 2>/dev/null; }
redis_up() {
  if command -v redis-cli >/dev/null 2>&1; then
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null
  fi
}

if pg_up; then
  echo "services: PostgreSQL answers on 127.0.0.1:$PG_PORT"
else
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$PGBIN" ]; then
    echo "services: installing PostgreSQL" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  fi
  D=/tmp/ponte-pg-$PG_PORT
  install -d -o postgres -g postgres "$D"
  if [ ! -f "$D/data/PG_VERSION" ]; then
    su postgres -c "$PGBIN/initdb -D $D/data -U postgres --auth=trust -E UTF8" >/dev/null
  fi
  su postgres -c "$PGBIN/pg_ctl -D $D/data -l $D/log -w -o '-c listen_addresses=127.0.0.1 -p $PG_PORT -k $D -c max_connections=300' start" >/dev/null
  echo "services: started PostgreSQL on 127.0.0.1:$PG_PORT (data in $D)"
fi

if redis_up; then
  echo "services: Redis answers on 127.0.0.1:$REDIS_PORT"
else
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "services: installing Redis" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no --pidfile /tmp/ponte-redis.pid >/dev/null
  for _ in $(seq 1 50); do redis_up && break; sleep 0.1; done
  redis_up || { echo "services: Redis did not start" >&2; exit 1; }
  echo "services: started Redis on 127.0.0.1:$REDIS_PORT"
fi
