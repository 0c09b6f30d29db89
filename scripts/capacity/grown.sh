#!/usr/bin/env bash
# Cost as work grows: the gateway's acknowledgement benchmark and the end-to-end sync-latency
# benchmark, each run on empty tables and on tables holding a month of a large platform's
# history, alternately in the same session, then the acknowledgement benchmark on the grown
# tables with retention deleting the month's expired rows as fast as it can meanwhile.
#
# The month is made by SQL, not by replaying webhooks: a template database migrated by
# `ponte migrate`, whose inbox holds EVENTS settled events across TENANTS tenants (every 1,000th
# a dead letter), each with its delivery and its catalog-sync event-log row, spread evenly over
# 30 days. Every benchmark database is a copy of it (PONTE_BENCH_DATABASE_TEMPLATE, see
# tests/src/lib.rs). The template is dropped at the end, whatever happens.
#
#   scripts/capacity/grown.sh [--events N] [--tenants N] [--rounds N] [--seconds N] [--rate N]
#                             [--part all|growth|retention] [--retention-rate N]
#                             [--retention-min N]
#
# Defaults: 2,000,000 events, 5,000 tenants, 2 rounds of (empty, grown), 10 s per gateway run,
# sync latency at 100 events/s for 15 s, retention at its default pace (--retention-rate N sets
# PONTE_RETENTION_MAX_ROWS_PER_SECOND in the runs with retention, --retention-min N
# PONTE_RETENTION_MIN_ROWS_PER_SECOND). `--events 10000000` is the
# month the capacity plan speaks of (13 GB, filled in 11 min on a shared 2-vCPU machine; each
# copy of it takes a minute or two). Results go to stdout and to target/capacity/<time>/, each
# run with the load average before and after it. PONTE_TEST_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres) names the server.
set -euo pipefail

EVENTS=2000000
TENANTS=5000
ROUNDS=2
SECONDS_GW=10
RATE=100
PART=all
RETENTION_RATE=
RETENTION_MIN=
while [ $# -gt 0 ]; do
  case "$1" in
    --events) EVENTS="$2"; shift 2 ;;
    --tenants) TENANTS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --seconds) SECONDS_GW="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --part) PART="$2"; shift 2 ;;
    --retention-rate) RETENTION_RATE="$2"; shift 2 ;;
    --retention-min) RETENTION_MIN="$2"; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "grown: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$PART" in all|growth|retention) ;; *) echo "grown: --part is all, growth or retention" >&2; exit 2 ;; esac
for v in EVENTS TENANTS ROUNDS SECONDS_GW RATE ${RETENTION_RATE:+RETENTION_RATE} ${RETENTION_MIN:+RETENTION_MIN}; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "grown: $v must be a positive whole number" >&2; exit 2; }
done

cd "$(dirname "$0")/../.."
bash scripts/services.sh
if ! command -v wrk >/dev/null 2>&1; then
  echo "grown: installing wrk" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
ADMIN="${PONTE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export PONTE_TEST_DATABASE_URL="$ADMIN"
TEMPLATE="ponte_grown_$$"
OUT="target/capacity/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"

# About 1.3 KB per event with its delivery, event-log row and indexes; the template and one copy
# of it live at once. Refuse when the disk holding PostgreSQL's data has less than that twice.
. scripts/capacity/common.sh
echo "grown: $EVENTS events over $TENANTS tenants"
check_disk $(( EVENTS * 1300 * 2 * 2 / 1024 / 1024 )) grown

echo "grown: building the release benchmarks" >&2
cargo build -q --release --bin ponte -p ponte -p ponte-tests --bin gateway-bench --bin sync-latency-bench

psql "$ADMIN" -qc "CREATE DATABASE $TEMPLATE"
trap 'psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $TEMPLATE WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
URL="${ADMIN%/*}/$TEMPLATE"
DATABASE_URL="$URL" target/release/ponte migrate >/dev/null

START=$(date +%s)
psql "$URL" -v ON_ERROR_STOP=1 -q <<SQL
SET synchronous_commit = off;
-- A month of settled events, oldest first; every 50th a CPLUG sale, the rest Bling product changes.
INSERT INTO gateway.inbox_events (event_id, source, source_event_id, tenant_id, event_type, entity_key, state, payload,
                                  receive_time, account, lane)
SELECT 'ev-' || i, CASE WHEN i % 50 = 0 THEN 'cplug' ELSE 'bling' END, 'src-' || i, 't' || (i % $TENANTS),
       'product.updated', 'product:' || (i % 20000),
       CASE WHEN i % 1000 = 0 THEN 'dead' ELSE 'delivered' END,
       convert_to(repeat('x', 400), 'UTF8'),
       (extract(epoch FROM now()) * 1000)::bigint - 30 * 86400000::bigint + i * (30 * 86400000::bigint / $EVENTS),
       'acct-' || (i % $TENANTS), 't' || (i % $TENANTS) || '|product:' || (i % 20000)
FROM generate_series(1, $EVENTS) AS i;
INSERT INTO gateway.inbox_deliveries (event_id, subscriber, lane, order_time, coalescible, state, attempts,
                                      next_attempt_time, outcome, delivered_time, create_time)
SELECT event_id, 'catalog-sync', lane, receive_time, 1, CASE WHEN state = 'dead' THEN 'dead' ELSE 'delivered' END, 1,
       receive_time, 'applied', receive_time + 200, receive_time
FROM gateway.inbox_events;
INSERT INTO catalog_sync.event_log (tenant_id, entity_key, event_id, source, source_event_id, event_type,
                                    occurred_time, attempt, outcome, detail, handle_time)
SELECT tenant_id, entity_key, event_id, source, source_event_id, event_type, receive_time, 1, 'applied', '',
       receive_time + 150
FROM gateway.inbox_events;
VACUUM ANALYZE gateway.inbox_events;
VACUUM ANALYZE gateway.inbox_deliveries;
VACUUM ANALYZE catalog_sync.event_log;
SQL
echo "grown: filled in $(( $(date +%s) - START )) s; $(psql "$URL" -At -c "SELECT pg_size_pretty(pg_database_size(current_database()))")" | tee "$OUT/size.txt"

GW=(target/release/gateway-bench --seconds "$SECONDS_GW" --connections 32)
LAT=(target/release/sync-latency-bench --rate "$RATE" --seconds 15 --products 1000 --warmup 5)
GROWN=(env PONTE_BENCH_DATABASE_TEMPLATE="$TEMPLATE")
# Each run's output, with the machine's load average before and after it (the machine may be
# shared: ratios are only taken between runs beside each other).
run() {
  local name="$1"; shift
  echo "== $name ($(date -u +%H:%M:%S); load before:$(uptime | sed 's/.*load average://')) ==" | tee -a "$OUT/summary.txt"
  "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" || { echo "grown: $name failed (see $OUT/$name.err)" >&2; exit 1; }
  tee -a "$OUT/summary.txt" <"$OUT/$name.out"
  echo "-- load after:$(uptime | sed 's/.*load average://')" | tee -a "$OUT/summary.txt"
}
[ "$PART" = retention ] || for r in $(seq 1 "$ROUNDS"); do
  run "gateway-empty-$r" "${GW[@]}"
  run "gateway-grown-$r" "${GROWN[@]}" "${GW[@]}"
  run "latency-empty-$r" "${LAT[@]}"
  run "latency-grown-$r" "${GROWN[@]}" "${LAT[@]}"
done
# Retention meanwhile: settled events and dead letters kept 3 days (their minimum), a pass every
# second, so the month's 27 expired days are being deleted while the load runs; beside the same
# run without it. The order alternates (odd rounds without first, even rounds with), so that
# neither always runs second.
RETAIN=(--env PONTE_RETENTION_INTERVAL_SECONDS=1 --env PONTE_RETENTION_SETTLED_EVENTS_DAYS=3
  --env PONTE_RETENTION_DEAD_LETTERS_DAYS=3)
[ -z "$RETENTION_RATE" ] || RETAIN+=(--env "PONTE_RETENTION_MAX_ROWS_PER_SECOND=$RETENTION_RATE")
[ -z "$RETENTION_MIN" ] || RETAIN+=(--env "PONTE_RETENTION_MIN_ROWS_PER_SECOND=$RETENTION_MIN")
[ "$PART" = growth ] || for r in $(seq 1 "$ROUNDS"); do
  if [ $(( r % 2 )) = 1 ]; then
    run "gateway-grown-quiet-$r" "${GROWN[@]}" "${GW[@]}"
    run "gateway-grown-retention-$r" "${GROWN[@]}" "${GW[@]}" "${RETAIN[@]}"
  else
    run "gateway-grown-retention-$r" "${GROWN[@]}" "${GW[@]}" "${RETAIN[@]}"
    run "gateway-grown-quiet-$r" "${GROWN[@]}" "${GW[@]}"
  fi
done
echo "grown: results in $OUT/summary.txt"
