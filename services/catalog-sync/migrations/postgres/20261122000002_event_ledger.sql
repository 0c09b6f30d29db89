-- The newest event accepted per entity: an event older than it is stale and changes nothing.
CREATE TABLE entity_versions (
    tenant_id    TEXT NOT NULL,
    entity_key   TEXT NOT NULL,
    -- When the sender says the change happened (Unix ms).
    version_time BIGINT NOT NULL,
    event_id     TEXT NOT NULL,
    update_time  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, entity_key)
);

-- Every event delivered to catalog-sync and what came of it, in the order handled. Append-only.
CREATE TABLE event_log (
    seq             BIGSERIAL PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    entity_key      TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    source          TEXT NOT NULL,
    source_event_id TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    occurred_time   BIGINT NOT NULL,
    attempt         BIGINT NOT NULL,
    outcome         TEXT NOT NULL,
    detail          TEXT NOT NULL,
    handle_time     BIGINT NOT NULL
);
CREATE INDEX event_log_entity ON event_log (tenant_id, entity_key, seq);
