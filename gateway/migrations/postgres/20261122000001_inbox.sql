-- Every webhook the gateway accepted, stored before it was acknowledged.
CREATE TABLE inbox_events (
    event_id        TEXT PRIMARY KEY,
    source          TEXT NOT NULL,
    source_event_id TEXT NOT NULL,
    tenant_id       TEXT NOT NULL DEFAULT '',
    event_type      TEXT NOT NULL,
    entity_key      TEXT NOT NULL,
    state           TEXT NOT NULL,
    dead_reason     TEXT NOT NULL DEFAULT '',
    payload         BYTEA NOT NULL,
    headers_json    TEXT NOT NULL DEFAULT '{}',
    traceparent     TEXT NOT NULL DEFAULT '',
    occurred_time   BIGINT,
    receive_time    BIGINT NOT NULL
);
-- The truth for deduplication: one row per sender event.
CREATE UNIQUE INDEX inbox_events_source_event ON inbox_events (source, source_event_id);
CREATE INDEX inbox_events_dead ON inbox_events (state, receive_time);
