-- The due index in the claim's own order: a claim reads the pending deliveries oldest due
-- first and stops once it has found the heads it wants, instead of reading every due delivery
-- and sorting them (a claim over a backlog of 140,000 read 706,879 blocks; now 1,475). See
-- docs/capacity.md, "Look-ups that follow the lane, not the queue".
--
-- Built in the migration's transaction: reading the deliveries table once, it holds back writes
-- to it meanwhile (0.7 s on the 10,000,000-row month of docs/capacity.md; acknowledgements wait,
-- none is lost).
CREATE INDEX inbox_deliveries_due_order ON inbox_deliveries (next_attempt_time, order_time, event_id)
    WHERE state = 'pending';
DROP INDEX inbox_deliveries_due;
