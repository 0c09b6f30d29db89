-- The sales flow's state machine replaces the first sketch of the table (never written).
DROP TABLE sales;

-- Point-of-sale sales, keyed by the point of sale's own id (the idempotency key, and the
-- Bling order's numeroLoja). Flags are 0/1 and absent Bling ids 0, the same on both backends.
CREATE TABLE sales (
    tenant_id          TEXT NOT NULL,
    sale_id            TEXT NOT NULL,
    store_id           TEXT NOT NULL DEFAULT '',
    state              TEXT NOT NULL,
    park_reason        TEXT NOT NULL DEFAULT '',
    reason             TEXT NOT NULL DEFAULT '',
    sale_json          TEXT NOT NULL DEFAULT '',
    total_cents        BIGINT NOT NULL DEFAULT 0,
    bling_order_id     BIGINT NOT NULL DEFAULT 0,
    order_attempted    BIGINT NOT NULL DEFAULT 0,
    stock_deposito_id  BIGINT NOT NULL DEFAULT 0,
    cancel_requested   BIGINT NOT NULL DEFAULT 0,
    move_to_store      TEXT NOT NULL DEFAULT '',
    attempts           BIGINT NOT NULL DEFAULT 0,
    next_attempt_time  BIGINT NOT NULL DEFAULT 0,
    lease_owner        TEXT NOT NULL DEFAULT '',
    lease_until        BIGINT NOT NULL DEFAULT 0,
    last_error         TEXT NOT NULL DEFAULT '',
    receive_time       BIGINT NOT NULL,
    update_time        BIGINT NOT NULL,
    posted_time        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, sale_id)
);
CREATE INDEX sales_due ON sales (state, next_attempt_time);
CREATE INDEX sales_by_tenant ON sales (tenant_id, receive_time);

-- Every event or call that touched a sale.
CREATE TABLE sale_history (
    seq        BIGSERIAL PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    sale_id    TEXT NOT NULL,
    event_time BIGINT NOT NULL,
    action     TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    detail     TEXT NOT NULL,
    trace_id   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sale_history_by_sale ON sale_history (tenant_id, sale_id, seq);

-- What Bling answered once, so that steady-state sales need no look-up: products by SKU,
-- contacts by CPF/CNPJ.
CREATE TABLE known_products (
    tenant_id        TEXT NOT NULL,
    sku              TEXT NOT NULL,
    bling_product_id BIGINT NOT NULL,
    update_time      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, sku)
);
CREATE TABLE known_contacts (
    tenant_id        TEXT NOT NULL,
    document         TEXT NOT NULL,
    bling_contact_id BIGINT NOT NULL,
    update_time      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, document)
);

CREATE TABLE sales_settings (
    tenant_id          TEXT PRIMARY KEY,
    order_situacao_id  BIGINT NOT NULL DEFAULT 0,
    cancel_situacao_id BIGINT NOT NULL DEFAULT 0,
    time_zone          TEXT NOT NULL DEFAULT '',
    store_time_zones   TEXT NOT NULL DEFAULT '{}',
    update_time        BIGINT NOT NULL
);
