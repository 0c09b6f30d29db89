-- CPLUG payment method -> Bling forma de pagamento, per tenant.
CREATE TABLE payment_method_maps (
    tenant_id                TEXT NOT NULL,
    cplug_method             TEXT NOT NULL,
    bling_forma_pagamento_id BIGINT NOT NULL,
    is_default               BOOLEAN NOT NULL,
    create_time              BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, cplug_method)
);
-- At most one default per tenant.
CREATE UNIQUE INDEX payment_method_maps_one_default ON payment_method_maps (tenant_id) WHERE is_default;

-- Every change to a mapping table: who, when, before and after.
CREATE TABLE audit_entries (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id      TEXT NOT NULL,
    table_name     TEXT NOT NULL,
    row_key        TEXT NOT NULL,
    action         TEXT NOT NULL,
    actor          TEXT NOT NULL,
    previous_value TEXT NOT NULL,
    new_value      TEXT NOT NULL,
    create_time    BIGINT NOT NULL
);
CREATE INDEX audit_entries_by_tenant ON audit_entries (tenant_id, seq);
