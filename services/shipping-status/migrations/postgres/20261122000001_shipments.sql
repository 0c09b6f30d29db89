-- One Bling order's life at 360Envios.
CREATE TABLE shipments (
    tenant_id          TEXT NOT NULL,
    bling_order_id     BIGINT NOT NULL,
    bling_numero       TEXT NOT NULL DEFAULT '',
    envios360_order_id TEXT,
    status             TEXT NOT NULL,
    bling_situacao_id  BIGINT,
    tracking_code      TEXT NOT NULL DEFAULT '',
    tracking_url       TEXT NOT NULL DEFAULT '',
    last_error         TEXT NOT NULL DEFAULT '',
    create_time        BIGINT NOT NULL,
    update_time        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, bling_order_id)
);
CREATE UNIQUE INDEX shipments_by_envios360_id ON shipments (tenant_id, envios360_order_id);
