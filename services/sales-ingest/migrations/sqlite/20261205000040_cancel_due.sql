-- A sale whose cancellation was flagged while it was being posted is found again by the
-- scanner from this small index, not by reading every posted sale.
CREATE INDEX sales_cancel_due ON sales (next_attempt_time) WHERE cancel_requested = 1;
