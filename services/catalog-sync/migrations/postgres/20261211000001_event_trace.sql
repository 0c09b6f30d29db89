-- The trace that handled each event, so an entity's history links to it; empty when untraced.
ALTER TABLE event_log ADD COLUMN trace_id TEXT NOT NULL DEFAULT '';
