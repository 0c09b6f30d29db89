-- CPLUG store -> Bling loja (sales channel) and depósito, per tenant.
CREATE TABLE store_maps (
    tenant_id         TEXT NOT NULL,
    cplug_store_id    TEXT NOT NULL,
    bling_loja_id     BIGINT NOT NULL,
    bling_deposito_id BIGINT NOT NULL,
    create_time       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, cplug_store_id)
);

-- Bling situação <-> shipping status (its proto enum name), per tenant; readable both ways.
CREATE TABLE situacao_maps (
    tenant_id            TEXT NOT NULL,
    bling_situacao_id    BIGINT NOT NULL,
    bling_situacao_name  TEXT NOT NULL,
    shipping_status      TEXT NOT NULL,
    releases_to_shipping BOOLEAN NOT NULL,
    create_time          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, bling_situacao_id)
);
-- Each shipping status is mapped at most once.
CREATE UNIQUE INDEX situacao_maps_status ON situacao_maps (tenant_id, shipping_status);
-- At most one situação releases orders to shipping.
CREATE UNIQUE INDEX situacao_maps_one_release ON situacao_maps (tenant_id) WHERE releases_to_shipping;

-- A tenant's own product field mappings (the builtin set lives in code). transforms is a JSON list.
CREATE TABLE field_mappings (
    tenant_id    TEXT NOT NULL,
    mapping_id   TEXT NOT NULL,
    target       TEXT NOT NULL,
    bling_field  TEXT NOT NULL,
    target_field TEXT NOT NULL,
    direction    TEXT NOT NULL,
    transforms   TEXT NOT NULL,
    create_time  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, mapping_id)
);
-- One mapping writes a target field.
CREATE UNIQUE INDEX field_mappings_target ON field_mappings (tenant_id, target, target_field);
-- One two-way mapping writes a Bling field back.
CREATE UNIQUE INDEX field_mappings_two_way ON field_mappings (tenant_id, target, bling_field) WHERE direction = 'two_way';
