-- Created after the bulk load (faster), then statistics for the planner (sqlite_stat1).
CREATE INDEX events_user_ts ON events(user_id, ts);
CREATE INDEX items_sku ON items(sku);
CREATE INDEX kv_n ON kv(n);
ANALYZE;
