-- Retention walks the settled shipments (delivered or cancelled) from the oldest change: a
-- partial index holds only them.
CREATE INDEX shipments_settled ON shipments (update_time)
    WHERE status IN ('SHIPPING_STATUS_DELIVERED', 'SHIPPING_STATUS_CANCELLED');
