#!/usr/bin/env bash
# Idle resident memory of each `ponte serve <service>` process: starts each against the local
# PostgreSQL and Redis (scripts/services.sh), waits until it is idle, and reads VmRSS.
# Usage: scripts/measure-memory.sh [path/to/ponte]   (default: a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh >/dev/null
BIN="${1:-}"
if [ -z "$BIN" ]; then cargo build --release --bin ponte >/dev/null 2>&1; BIN=target/release/ponte; fi
DB=ponte_mem_$$
psql -q postgres://postgres@127.0.0.1:5432/postgres -c "CREATE DATABASE $DB" >/dev/null
trap 'psql -q postgres://postgres@127.0.0.1:5432/postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true' EXIT
port=46051
printf '| service | idle RSS (MiB) |\n|---|---|\n'
for svc in auth-token mapping catalog-sync sales-ingest shipping-status gateway; do
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB REDIS_URL=redis://127.0.0.1:6379 \
    PONTE_SEALING_KEYS="$("$BIN" keys generate --id mem)" PONTE_GRPC_ADDR=127.0.0.1:$port PONTE_HTTP_ADDR=127.0.0.1:$((port + 100)) PONTE_METRICS_ADDR=127.0.0.1:$((port + 200)) PONTE_LOG=warn \
    "$BIN" serve "$svc" >/dev/null 2>&1 &
  pid=$!
  sleep 3
  rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  kill -TERM $pid; wait $pid 2>/dev/null || true
  printf '| %s | %.1f |\n' "$svc" "$(echo "$rss_kb / 1024" | bc -l)"
  port=$((port + 1))
done
