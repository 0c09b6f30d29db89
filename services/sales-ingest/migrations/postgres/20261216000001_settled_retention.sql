-- Retention walks the settled sales (posted or cancelled, no cancel pending) from the oldest
-- change: a partial index holds only them, so a pass costs the same however many sales wait.
CREATE INDEX sales_settled ON sales (update_time) WHERE state IN ('posted', 'cancelled') AND cancel_requested = 0;
