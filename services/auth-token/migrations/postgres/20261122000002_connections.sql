-- A tenant's link to one provider. Every token and secret column holds a sealed value
-- ("v1.<key id>.<base64>", AES-256-GCM bound to tenant, provider and column), never plaintext.
CREATE TABLE connections (
    tenant_id           TEXT NOT NULL REFERENCES tenants (tenant_id),
    provider            TEXT NOT NULL,
    state               TEXT NOT NULL,
    external_account_id TEXT NOT NULL DEFAULT '',
    access_token        TEXT NOT NULL DEFAULT '',
    access_expire_time  BIGINT NOT NULL DEFAULT 0,
    refresh_token       TEXT NOT NULL DEFAULT '',
    credentials         TEXT NOT NULL DEFAULT '',
    webhook_secret      TEXT NOT NULL DEFAULT '',
    -- Bumped by every change of tokens: refreshes compare-and-swap on it.
    token_version       BIGINT NOT NULL DEFAULT 0,
    reason              TEXT NOT NULL DEFAULT '',
    create_time         BIGINT NOT NULL,
    update_time         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, provider)
);
-- One tenant per outside account (how a Bling companyId finds its tenant).
CREATE UNIQUE INDEX connections_by_account ON connections (provider, external_account_id)
    WHERE external_account_id <> '';

-- OAuth states: single use, 10-minute life. Only their SHA-256 is stored.
CREATE TABLE oauth_states (
    state_hash  TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (tenant_id),
    provider    TEXT NOT NULL,
    expire_time BIGINT NOT NULL,
    used_time   BIGINT,
    create_time BIGINT NOT NULL
);
