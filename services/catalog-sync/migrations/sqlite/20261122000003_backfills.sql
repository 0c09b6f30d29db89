-- Full copies of a tenant's Bling catalog into a target, with the checkpoint a resumed run
-- continues from. Counts are committed with the checkpoint, one Bling page at a time.
CREATE TABLE backfills (
    backfill_id   TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    -- 'bitrix24' or 'cplug'.
    target        TEXT NOT NULL,
    -- 'products'.
    scope         TEXT NOT NULL,
    -- 'pending', 'running', 'succeeded', 'failed', 'cancelled'.
    state         TEXT NOT NULL,
    -- The last Bling page fully written (1-based).
    pages_done    BIGINT NOT NULL,
    products      BIGINT NOT NULL,
    variations    BIGINT NOT NULL,
    active        BIGINT NOT NULL,
    inactive      BIGINT NOT NULL,
    created       BIGINT NOT NULL,
    updated       BIGINT NOT NULL,
    unchanged     BIGINT NOT NULL,
    failed        BIGINT NOT NULL,
    -- JSON [{"source_id", "reason"}]: the first 100 failures.
    failures      TEXT NOT NULL,
    -- The page being written and what its writes were meant to do (JSON {"<bling id>":
    -- "created"|"updated"}), recorded before the writes: a page redone after a crash counts
    -- what the interrupted attempt wrote as it meant to, not as unchanged.
    inflight_page BIGINT NOT NULL,
    inflight      TEXT NOT NULL,
    -- Why it failed or was cancelled; while running, the last transient error.
    reason        TEXT NOT NULL,
    start_time    BIGINT NOT NULL,
    -- 0 until it ends.
    end_time      BIGINT NOT NULL,
    update_time   BIGINT NOT NULL
);
-- One unfinished backfill per tenant and target.
CREATE UNIQUE INDEX backfills_unfinished ON backfills (tenant_id, target) WHERE state IN ('pending', 'running');
CREATE INDEX backfills_tenant ON backfills (tenant_id, start_time);
