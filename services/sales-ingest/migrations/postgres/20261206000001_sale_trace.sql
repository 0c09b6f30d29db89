-- The trace context (W3C traceparent) of the request that brought each sale in, so that a
-- sale driven later (parked, retried, or handed back by a stopping replica and taken over by
-- another) records its steps and its sync latency under the webhook's trace.
ALTER TABLE sales ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';
