-- Point-of-sale sales, keyed by the point of sale's own id: the idempotency key.
CREATE TABLE sales (
    tenant_id         TEXT NOT NULL,
    sale_id           TEXT NOT NULL,
    state             TEXT NOT NULL,
    park_reason       TEXT NOT NULL DEFAULT '',
    parked_reason     TEXT NOT NULL DEFAULT '',
    bling_order_id    BIGINT,
    stock_written_off BOOLEAN NOT NULL DEFAULT FALSE,
    sale_json         TEXT NOT NULL,
    receive_time      BIGINT NOT NULL,
    update_time       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, sale_id)
);
CREATE INDEX sales_by_state ON sales (tenant_id, state, receive_time);
