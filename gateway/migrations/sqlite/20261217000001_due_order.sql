-- The due index in the claim's own order (see the PostgreSQL migration of the same name).
CREATE INDEX inbox_deliveries_due_order ON inbox_deliveries (next_attempt_time, order_time, event_id)
    WHERE state = 'pending';
DROP INDEX inbox_deliveries_due;
