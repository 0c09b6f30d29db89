#!/usr/bin/env bash
# The inbox's hot queries at size: makes a scratch database, applies the gateway's migrations,
# fills the inbox with a month of settled traffic (ROWS events across TENANTS tenants, each with
# one delivery, plus a live tail of pending work), and prints EXPLAIN (ANALYZE, BUFFERS) of every
# hot query: claim, lane look-up, complete, dedupe, retention's picks, a tenant's erasure. The
# database is dropped at the end, whatever happens.
#
#   scripts/capacity/run.sh [ROWS] [TENANTS]     (defaults 2000000 and 5000)
#   PONTE_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) names the server.
set -euo pipefail

ROWS="${1:-2000000}"
TENANTS="${2:-5000}"
ADMIN="${PONTE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DB="ponte_capacity_$$"
HERE="$(cd "$(dirname "$0")/../.." && pwd)"

# About 1,000 bytes per event with its delivery and indexes (measured at 2M rows); refuse when
# the disk holding PostgreSQL's data has less than twice that free.
. "$HERE/scripts/capacity/common.sh"
echo "capacity: $ROWS events over $TENANTS tenants"
check_disk $(( ROWS * 1000 * 2 / 1024 / 1024 )) capacity

psql "$ADMIN" -qc "CREATE DATABASE $DB"
trap 'psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
URL="${ADMIN%/*}/$DB"
run() { psql "$URL" -v ON_ERROR_STOP=1 -q "$@"; }

for f in "$HERE"/gateway/migrations/postgres/*.sql; do run -f "$f"; done

START=$(date +%s)
run <<SQL
-- A month of settled events, ordered in time; every 50th is a CPLUG sale, the rest Bling.
INSERT INTO inbox_events (event_id, source, source_event_id, tenant_id, event_type, entity_key, state, payload,
                          receive_time, account, lane)
SELECT 'ev-' || i, CASE WHEN i % 50 = 0 THEN 'cplug' ELSE 'bling' END, 'src-' || i, 't' || (i % $TENANTS),
       'product.updated', 'product:' || (i % 20000),
       CASE WHEN i % 1000 = 0 THEN 'dead' ELSE 'delivered' END,
       convert_to(repeat('x', 400), 'UTF8'),
       (extract(epoch FROM now()) * 1000)::bigint - (30 * 86400000::bigint) + i * (30 * 86400000::bigint / $ROWS),
       'acct-' || (i % $TENANTS), 't' || (i % $TENANTS) || '|product:' || (i % 20000)
FROM generate_series(1, $ROWS) AS i;
INSERT INTO inbox_deliveries (event_id, subscriber, lane, order_time, coalescible, state, attempts, next_attempt_time,
                              outcome, delivered_time, create_time)
SELECT event_id, 'catalog-sync', lane, receive_time, 1, CASE WHEN state = 'dead' THEN 'dead' ELSE 'delivered' END, 1,
       receive_time, 'applied', receive_time + 200, receive_time
FROM inbox_events;
-- The live tail: the last 2,000 events still pending, one lane in ten busy with an in-flight one.
UPDATE inbox_events SET state = 'pending' WHERE event_id IN (SELECT 'ev-' || i FROM generate_series($ROWS - 1999, $ROWS) i);
UPDATE inbox_deliveries SET state = CASE WHEN right(event_id, 1) = '0' THEN 'in_flight' ELSE 'pending' END,
       lease_owner = CASE WHEN right(event_id, 1) = '0' THEN 'replica-a' ELSE '' END,
       next_attempt_time = (extract(epoch FROM now()) * 1000)::bigint, delivered_time = NULL, outcome = ''
WHERE event_id IN (SELECT 'ev-' || i FROM generate_series($ROWS - 1999, $ROWS) i);
VACUUM ANALYZE inbox_events;
VACUUM ANALYZE inbox_deliveries;
SQL
echo "capacity: filled in $(( $(date +%s) - START )) s"
run -At <<'SQL'
SELECT 'inbox_events: ' || pg_size_pretty(pg_total_relation_size('inbox_events')) ||
       ', inbox_deliveries: ' || pg_size_pretty(pg_total_relation_size('inbox_deliveries'));
SQL

NOW="(extract(epoch FROM now()) * 1000)::bigint"
explain() {
  echo
  echo "### $1"
  echo
  echo '```'
  run -At -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY OFF) $2" | sed -e 's/^/    /' -e 's/^    //'
  echo '```'
}

# The dispatcher's statements as gateway/src/dispatch/{claim,lane,complete}.rs write them (the
# lane look-ups in the form lane.rs explains), with values in place of their parameters.
QUEUED="IN ('pending', 'in_flight', 'held') AND state NOT IN ('in_flight', 'held')"
explain "claim (gateway/src/dispatch/claim.rs)" "
SELECT d.event_id, d.subscriber, d.lane, d.coalescible, CAST(CASE WHEN EXISTS (
  SELECT 1 FROM inbox_deliveries y WHERE y.subscriber = d.subscriber AND y.lane = d.lane
  AND y.state IN ('pending', 'in_flight', 'held') AND y.state NOT IN ('in_flight', 'held')
  AND y.event_id <> d.event_id) THEN 1 ELSE 0 END AS BIGINT) AS queued_behind
FROM inbox_deliveries d
WHERE d.state = 'pending' AND d.next_attempt_time <= $NOW AND NOT EXISTS (
  SELECT 1 FROM inbox_deliveries x WHERE x.subscriber = d.subscriber AND x.lane = d.lane
  AND x.state IN ('pending', 'in_flight', 'held') AND (x.state <> 'pending' OR x.order_time < d.order_time
  OR (x.order_time = d.order_time AND x.event_id < d.event_id)) OFFSET 0)
ORDER BY d.next_attempt_time, d.order_time, d.event_id LIMIT 64 FOR UPDATE OF d SKIP LOCKED"
explain "lane look-up (coalescing, lane.rs)" "
SELECT event_id, coalescible FROM inbox_deliveries WHERE subscriber = 'catalog-sync'
  AND lane = 't7|product:7' AND state $QUEUED ORDER BY order_time, event_id LIMIT 1000"
explain "a delivery waiting in a lane (lane.rs)" "
SELECT CAST(1 AS BIGINT) FROM inbox_deliveries WHERE subscriber = 'catalog-sync'
  AND lane = 't7|product:7' AND state $QUEUED LIMIT 1"
explain "complete a delivery (complete.rs)" "
WITH done AS (UPDATE inbox_deliveries SET state = 'delivered', next_attempt_time = $NOW, lease_owner = '',
  lease_until = 0, outcome = 'applied', detail = '', delivered_time = $NOW
  WHERE event_id = 'ev-$ROWS' AND subscriber = 'catalog-sync' AND lease_owner = 'replica-a'
  RETURNING event_id, lane, state, last_error),
settled AS (UPDATE inbox_events e SET state = 'delivered', dead_reason = '' FROM done
  WHERE e.event_id = done.event_id AND done.state <> 'pending')
SELECT CAST(CASE WHEN EXISTS (SELECT 1 FROM inbox_deliveries x WHERE x.subscriber = 'catalog-sync'
  AND x.lane = done.lane AND x.state IN ('pending', 'in_flight', 'held') AND x.state NOT IN ('in_flight', 'held'))
  THEN 1 ELSE 0 END AS BIGINT) FROM done"
explain "dedupe (the unique key the store's ON CONFLICT uses)" "
SELECT event_id FROM inbox_events WHERE source = 'bling' AND source_event_id = 'src-1234567'"
explain "expired leases (upkeep)" "
SELECT event_id FROM inbox_deliveries WHERE state = 'in_flight' AND lease_until < $NOW"
explain "next due time (dispatcher wake-up)" "
SELECT MIN(next_attempt_time) FROM inbox_deliveries WHERE state = 'pending' AND next_attempt_time > $NOW"
explain "retention: pick settled events past 14 days" "
SELECT event_id FROM inbox_events WHERE state = 'delivered'
  AND receive_time < $NOW - 14 * 86400000::bigint ORDER BY receive_time LIMIT 1000"
explain "retention: oldest settled event" "
SELECT MIN(receive_time) FROM inbox_events WHERE state = 'delivered'"
explain "tenant erasure: the tenant's events" "
SELECT event_id FROM inbox_events WHERE tenant_id = 't42'"
