-- The planner's statistics of the queue tables are refreshed after a fixed number of changed
-- rows, not after a share of the table: with the default (10% of the rows), a table holding a
-- month of settled deliveries is analysed once a million rows have changed, and until then its
-- statistics say that nothing is pending, however long the queue has grown. The per-lane
-- look-ups then read the whole queue (docs/capacity.md, "A claim that does not depend on the
-- statistics"). ANALYZE reads a fixed sample (30,000 rows) whatever the table's size.
ALTER TABLE inbox_deliveries SET (autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 10000);
ALTER TABLE inbox_events SET (autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 10000);
