#!/usr/bin/env bash
# The whole test suite: starts PostgreSQL and Redis when none is running, removes databases
# and Redis keys left by earlier runs, then runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/services.sh

# The alerting-rule test runs promtool (Debian's prometheus package).
if ! command -v promtool >/dev/null 2>&1; then
  echo "test: installing promtool (Debian's prometheus package)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# The console's browser test drives Debian's chromium headless through chromedriver; without
# them it is skipped, saying so.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "test: installing chromium and chromedriver (Debian's chromium, chromium-driver)" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium chromium-driver fonts-dejavu-core >/dev/null; } ||
    echo "test: chromium could not be installed: the console's browser test will be skipped" >&2
fi

# Test databases are named ponte_t_<uuid>; drop what earlier runs left behind.
export PONTE_TEST_DATABASE_URL="${PONTE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:${PONTE_TEST_PG_PORT:-5432}/postgres?sslmode=disable}"
export PONTE_TEST_REDIS_URL="${PONTE_TEST_REDIS_URL:-redis://127.0.0.1:${PONTE_TEST_REDIS_PORT:-6379}}"
if command -v psql >/dev/null 2>&1; then
  psql -qAt "$PONTE_TEST_DATABASE_URL" -c "SELECT datname FROM pg_database WHERE datname LIKE 'ponte\_t\_%'" 2>/dev/null |
    while read -r db; do psql -q "$PONTE_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; done
fi
# Likewise the Redis keys of earlier runs (each test mesh and benchmark writes under
# ponte-test:<uuid>:): they expire within a day, but a benchmark leaves a million of them, and
# the tests that list their own keys would wait on a Redis walking all of them.
if command -v redis-cli >/dev/null 2>&1; then
  redis-cli -u "$PONTE_TEST_REDIS_URL" --scan --pattern 'ponte-test:*' 2>/dev/null |
    xargs -r -n 1000 redis-cli -u "$PONTE_TEST_REDIS_URL" unlink >/dev/null 2>&1 || true
fi

cargo test --workspace --all-targets "$@"
