-- One record's history reads the inbox's events of one entity.
CREATE INDEX inbox_events_entity ON inbox_events (tenant_id, entity_key, receive_time);
