-- The sender's account (Bling companyId) and the lane ("<tenant>|<entity>") whose deliveries go
-- one at a time, in order.
ALTER TABLE inbox_events ADD COLUMN account TEXT NOT NULL DEFAULT '';
ALTER TABLE inbox_events ADD COLUMN lane TEXT NOT NULL DEFAULT '';
-- Events stored before their tenant could be resolved, and replayed dead letters.
CREATE INDEX inbox_events_received ON inbox_events (receive_time) WHERE state = 'received';

-- One event's delivery to one subscribing service.
CREATE TABLE inbox_deliveries (
    event_id          TEXT NOT NULL,
    subscriber        TEXT NOT NULL,
    lane              TEXT NOT NULL,
    -- The event's own time (its receipt time when it has none): the order within a lane.
    order_time        BIGINT NOT NULL,
    -- 1 when a newer queued event of the lane may replace this one (0 otherwise).
    coalescible       BIGINT NOT NULL,
    state             TEXT NOT NULL,
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_time BIGINT NOT NULL,
    -- The replica delivering it, and until when its claim holds.
    lease_owner       TEXT NOT NULL DEFAULT '',
    lease_until       BIGINT NOT NULL DEFAULT 0,
    last_error        TEXT NOT NULL DEFAULT '',
    outcome           TEXT NOT NULL DEFAULT '',
    detail            TEXT NOT NULL DEFAULT '',
    delivered_time    BIGINT,
    create_time       BIGINT NOT NULL,
    PRIMARY KEY (event_id, subscriber)
);
CREATE INDEX inbox_deliveries_due ON inbox_deliveries (next_attempt_time) WHERE state = 'pending';
CREATE INDEX inbox_deliveries_lane ON inbox_deliveries (subscriber, lane, order_time, event_id)
    WHERE state IN ('pending', 'in_flight');
CREATE INDEX inbox_deliveries_leased ON inbox_deliveries (lease_until) WHERE state = 'in_flight';
