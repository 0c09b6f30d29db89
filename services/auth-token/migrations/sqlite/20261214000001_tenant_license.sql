-- A tenant's licence (the Bitrix24 app's "licença ativa"): while license_active is 0 the gateway
-- keeps storing the tenant's events and holds their delivery until it is 1 again.
ALTER TABLE tenants ADD COLUMN license_active BIGINT NOT NULL DEFAULT 1;
ALTER TABLE tenants ADD COLUMN license_reason TEXT NOT NULL DEFAULT '';
-- When the licence was last switched (NULL: never).
ALTER TABLE tenants ADD COLUMN license_time BIGINT;
