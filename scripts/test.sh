#!/usr/bin/env bash
# The whole test suite: starts PostgreSQL and Redis when none is running, removes databases
# left by earlier runs, then runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/services.sh

# The alerting-rule test runs promtool (Debian's prometheus package).
if ! command -v promtool >/dev/null 2>&1; then
  echo "test: installing promtool (Debian's prometheus package)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# Test databases are named ponte_t_<uuid>; drop what earlier runs left behind.
export PONTE_TEST_DATABASE_URL="${PONTE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:${PONTE_TEST_PG_PORT:-5432}/postgres?sslmode=disable}"
export PONTE_TEST_REDIS_URL="${PONTE_TEST_REDIS_URL:-redis://127.0.0.1:${PONTE_TEST_REDIS_PORT:-6379}}"
if command -v psql >/dev/null 2>&1; then
  psql -qAt "$PONTE_TEST_DATABASE_URL" -c "SELECT datname FROM pg_database WHERE datname LIKE 'ponte\_t\_%'" 2>/dev/null |
    while read -r db; do psql -q "$PONTE_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; done
fi

cargo test --workspace --all-targets "$@"
