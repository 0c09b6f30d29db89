-- A tenant's events by index (its erasure, the dead-letter list filtered by tenant), so the
-- cost of looking them up follows the tenant's own traffic, not the inbox's size.
CREATE INDEX inbox_events_tenant ON inbox_events (tenant_id, receive_time);
