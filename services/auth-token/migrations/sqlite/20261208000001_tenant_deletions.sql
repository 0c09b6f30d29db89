-- The audit record of each tenant deletion. It names the tenant only by the SHA-256 of its id
-- and holds no personal data: who asked, when, and how much was erased where.
CREATE TABLE tenant_deletions (
    deletion_id  TEXT PRIMARY KEY,
    tenant_hash  TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    start_time   BIGINT NOT NULL,
    -- NULL while some service has not erased the tenant yet (a rerun finishes it).
    finish_time  BIGINT,
    -- {"<schema>.<table>": rows deleted}, summed over every attempt.
    erased_json  TEXT NOT NULL DEFAULT '{}',
    redis_keys   BIGINT NOT NULL DEFAULT 0,
    -- Providers whose tokens were revoked at the provider, comma-separated.
    revoked      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX tenant_deletions_by_tenant ON tenant_deletions (tenant_hash, start_time);
