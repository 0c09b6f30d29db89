-- The per-tenant sync switches, named as the merchant sees them.
CREATE TABLE sync_settings (
    tenant_id                        TEXT PRIMARY KEY,
    bling_create_creates_in_bitrix24 BOOLEAN NOT NULL,
    bling_update_updates_bitrix24    BOOLEAN NOT NULL,
    bitrix24_export_to_bling         BOOLEAN NOT NULL,
    orders_to_bitrix24               BOOLEAN NOT NULL,
    catalog_to_cplug                 BOOLEAN NOT NULL,
    cplug_grid_enabled               BOOLEAN NOT NULL,
    update_time                      BIGINT NOT NULL
);
