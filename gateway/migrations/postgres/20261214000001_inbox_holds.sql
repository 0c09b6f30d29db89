-- Tenants whose licence is inactive, as this gateway last learnt from auth-token: their
-- deliveries wait in state 'held' (out of the claim's partial indexes, so a suspended tenant's
-- backlog costs the claim nothing) until the licence is active again.
CREATE TABLE inbox_holds (
    tenant_id  TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    since_time BIGINT NOT NULL
);
-- A held delivery still heads its lane: a newer event of the entity waits behind it.
DROP INDEX inbox_deliveries_lane;
CREATE INDEX inbox_deliveries_lane ON inbox_deliveries (subscriber, lane, order_time, event_id)
    WHERE state IN ('pending', 'in_flight', 'held');
CREATE INDEX inbox_deliveries_held ON inbox_deliveries (lane) WHERE state = 'held';
