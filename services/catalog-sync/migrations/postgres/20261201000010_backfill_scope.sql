-- One unfinished backfill per tenant, target and scope: a products backfill and an orders
-- backfill into the same CRM may run side by side (they share its rate limit).
DROP INDEX backfills_unfinished;
CREATE UNIQUE INDEX backfills_unfinished ON backfills (tenant_id, target, scope) WHERE state IN ('pending', 'running');
