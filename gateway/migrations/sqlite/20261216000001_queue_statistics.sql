-- PostgreSQL only (the planner's statistics of the queue tables, refreshed after a fixed number
-- of changed rows); SQLite keeps no such statistics. Kept so both dialects have the same versions.
SELECT 1;
