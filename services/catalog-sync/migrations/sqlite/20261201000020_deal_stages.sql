-- A tenant's Bitrix24 deal stage per Bling situação (SyncSettings.deal_stages). An entry
-- overrides the default stage of one of Bling's default situações; a situação neither here nor
-- default leaves the deal's stage alone. UpdateSyncSettings replaces a tenant's rows at once.
CREATE TABLE deal_stage_maps (
    tenant_id         TEXT NOT NULL,
    bling_situacao_id BIGINT NOT NULL,
    stage_id          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, bling_situacao_id)
);
