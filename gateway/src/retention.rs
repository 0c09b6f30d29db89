//! What retention deletes from the inbox: events every delivery of which settled (delivered, or
//! replaced by a newer event of the same entity) after `PONTE_RETENTION_SETTLED_EVENTS_DAYS`,
//! dead letters not replayed after `PONTE_RETENTION_DEAD_LETTERS_DAYS`, each with its
//! deliveries. Events still on their way (received, pending, and a suspended tenant's held ones,
//! which stay pending) never go. Each rule walks the `(state, receive_time)` index from its
//! oldest end.
//!
//! Deduplication across retention: the unique `(source, source_event_id)` key is the truth of
//! deduplication, and no settled event goes before 3 days (the settings' minimum), Bling's retry
//! window, so a resent event is still recognised. A separate table of seen ids would cost a
//! second write per webhook on the acknowledgement path to buy a shorter payload retention
//! than three days, which no one asked for.

use ponte_core::retention::{KeyType, Kind, Rule};

macro_rules! inbox_rule {
    ($state:literal, $kind:expr) => {
        Rule {
            table: "inbox_events",
            kind: $kind,
            key: KeyType::Text,
            pick: concat!(
                "SELECT event_id FROM inbox_events WHERE state = '",
                $state,
                "' AND receive_time < $1 ORDER BY receive_time LIMIT $2"
            ),
            delete: concat!(
                "DELETE FROM inbox_events WHERE event_id IN ({keys}) AND state = '",
                $state,
                "' RETURNING event_id"
            ),
            dependents: &["DELETE FROM inbox_deliveries WHERE event_id IN ({keys})"],
            oldest: concat!("SELECT MIN(receive_time) FROM inbox_events WHERE state = '", $state, "'"),
        }
    };
}

/// The inbox's retention rules.
pub static RULES: [Rule; 3] = [
    inbox_rule!("delivered", Kind::SettledEvents),
    inbox_rule!("coalesced", Kind::SettledEvents),
    inbox_rule!("dead", Kind::DeadLetters),
];

#[cfg(test)]
mod tests {
    use ponte_core::{TenantId, db::Database, erasure::erase_rows, retention::RetentionConfig, time::now_millis};

    /// `ponte dev` keeps the inbox in SQLite: retention and a tenant's erasure work there too.
    #[tokio::test]
    async fn retention_and_erasure_work_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::sqlite_in(dir.path(), "gateway").await.unwrap();
        db.migrate(crate::SPEC.migrations).await.unwrap();
        let now = now_millis();
        for (id, tenant, state, days) in
            [("old", "loja", "delivered", 20), ("new", "loja", "delivered", 1), ("other", "outra", "pending", 30)]
        {
            let at = now - days * 86_400_000;
            sqlx::query(
                "INSERT INTO inbox_events (event_id, source, source_event_id, tenant_id, event_type, entity_key, \
                 state, payload, receive_time) VALUES ($1, 'bling', $1, $2, 'product.updated', 'product:1', $3, $4, $5)",
            )
            .bind(id)
            .bind(tenant)
            .bind(state)
            .bind(b"{}".to_vec())
            .bind(at)
            .execute(db.pool())
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO inbox_deliveries (event_id, subscriber, lane, order_time, coalescible, state, \
                 next_attempt_time, create_time) VALUES ($1, 'catalog-sync', 'l', $2, 0, $3, $2, $2)",
            )
            .bind(id)
            .bind(at)
            // The old pending event's delivery is held (its tenant's licence is off): it stays.
            .bind(if state == "pending" { "held" } else { state })
            .execute(db.pool())
            .await
            .unwrap();
        }
        let cfg = RetentionConfig::from_env(&ponte_core::Env::default()).unwrap();
        let done = ponte_core::retention::run_once(&db, &super::RULES, &cfg, now).await.unwrap();
        assert_eq!(done, Some(vec![("inbox_events", 1)]));
        let left: Vec<String> = sqlx::query_scalar("SELECT event_id FROM inbox_deliveries ORDER BY event_id")
            .fetch_all(db.pool())
            .await
            .unwrap();
        assert_eq!(left, ["new", "other"]);

        let mut conn = db.pool().acquire().await.unwrap();
        let loja = TenantId::parse("loja").unwrap();
        let (tables, claims) = erase_rows(&mut conn, &db, &loja, &crate::INBOX_ERASURE).await.unwrap();
        assert_eq!(claims, ["inbox:bling:new"]);
        let counted: Vec<(String, i64)> = tables.into_iter().map(|t| (t.table, t.rows)).collect();
        assert_eq!(counted, [("gateway.inbox_deliveries".to_owned(), 1), ("gateway.inbox_events".to_owned(), 1)]);
        let left: Vec<String> = sqlx::query_scalar("SELECT event_id FROM inbox_events ORDER BY event_id")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        assert_eq!(left, ["other"]);
    }
}
