-- What a shipment keeps beyond its status: why it waits for the merchant, what a person must
-- look at, what 360Envios was last sent (a digest of the body, and the Bling total then), the
-- situação write whose Bling echo is expected, and when the first create at 360 began.
ALTER TABLE shipments ADD COLUMN waiting_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE shipments ADD COLUMN attention TEXT NOT NULL DEFAULT '';
ALTER TABLE shipments ADD COLUMN last_error_time BIGINT NOT NULL DEFAULT 0;
ALTER TABLE shipments ADD COLUMN sent_digest TEXT NOT NULL DEFAULT '';
ALTER TABLE shipments ADD COLUMN bling_total TEXT NOT NULL DEFAULT '';
ALTER TABLE shipments ADD COLUMN echo_situacao_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE shipments ADD COLUMN echo_time BIGINT NOT NULL DEFAULT 0;
ALTER TABLE shipments ADD COLUMN create_started BIGINT NOT NULL DEFAULT 0;
CREATE INDEX shipments_newest ON shipments (tenant_id, create_time DESC, bling_order_id DESC);

-- The products of each shipment's order, in the order's item order.
CREATE TABLE shipment_products (
    tenant_id        TEXT NOT NULL,
    bling_order_id   BIGINT NOT NULL,
    bling_product_id BIGINT NOT NULL,
    position         BIGINT NOT NULL,
    sku              TEXT NOT NULL,
    name             TEXT NOT NULL,
    quantity         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, bling_order_id, bling_product_id)
);
CREATE INDEX shipment_products_by_product ON shipment_products (tenant_id, bling_product_id);

-- Products ponte sent to 360Envios, and the hub's verdict on each (newest by approval_time).
CREATE TABLE hub_products (
    tenant_id            TEXT NOT NULL,
    bling_product_id     BIGINT NOT NULL,
    envios360_product_id TEXT NOT NULL,
    approval             TEXT NOT NULL,
    rejection_reason     TEXT NOT NULL DEFAULT '',
    approval_time        BIGINT NOT NULL DEFAULT 0,
    update_time          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, bling_product_id)
);

-- Every event (or person) that touched a shipment, or that concerned shipping without one
-- (bling_order_id 0 when no order is known): what ponte did and how it ended. The flows' sync
-- status reads it too.
CREATE TABLE history (
    id             BIGSERIAL PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    bling_order_id BIGINT NOT NULL,
    flow           TEXT NOT NULL,
    at             BIGINT NOT NULL,
    trigger_name   TEXT NOT NULL,
    event_id       TEXT NOT NULL DEFAULT '',
    action         TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    detail         TEXT NOT NULL DEFAULT '',
    problem        TEXT NOT NULL DEFAULT '',
    trace_id       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX history_by_order ON history (tenant_id, bling_order_id, id);
CREATE INDEX history_by_flow ON history (tenant_id, flow, id);
