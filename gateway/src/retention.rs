//! What retention deletes from the inbox: events every delivery of which settled (delivered, or
//! replaced by a newer event of the same entity) after `PONTE_RETENTION_SETTLED_EVENTS_DAYS`,
//! dead letters not replayed after `PONTE_RETENTION_DEAD_LETTERS_DAYS`, each with its
//! deliveries. Events still on their way (received, pending) never go. Each rule walks the
//! `(state, receive_time)` index from its oldest end.
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
            dependents: Some("DELETE FROM inbox_deliveries WHERE event_id IN ({keys})"),
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
