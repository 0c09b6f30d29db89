//! Looking into a lane: how the dispatcher's statements ask for a lane's queued deliveries so
//! that the lane index serves them (`inbox_deliveries_lane`, over `(subscriber, lane,
//! order_time, event_id)` for deliveries pending, in flight or held), whatever the planner's
//! statistics say.
//!
//! A look-up names the lane index's own predicate and narrows it by an exclusion ([`queued`]),
//! never `state = 'pending'` alone: that condition also matches the due index
//! (`inbox_deliveries_due_order`, every pending delivery by due time). Statistics taken while
//! nothing was pending (a large table long after a burst arrived, since autoanalyze waits for
//! changed rows; any table analysed when quiet) say that partial index is empty, so the planner
//! took it for each look-up and read the whole queue: 3,077 blocks for one lane of a 140,000
//! delivery backlog instead of 17, and a delivery's completion, coalescing and claim each did
//! that (docs/capacity.md, "Look-ups that follow the lane, not the queue").

/// The condition that `state` (a column, e.g. `x.state`) is `pending`, in the form only the lane
/// index serves. The exclusion lists the lane index's other states: a state added to its
/// predicate is added here too.
pub fn queued(state: &str) -> String {
    format!("{state} IN ('pending', 'in_flight', 'held') AND {state} NOT IN ('in_flight', 'held')")
}

/// A lane's queued deliveries in order, at most 1,000 (`$1` the service, `$2` the lane): what
/// coalescing reads behind a head.
pub fn queue_sql() -> String {
    format!(
        "SELECT event_id, coalescible FROM inbox_deliveries WHERE subscriber = $1 AND lane = $2 AND {} \
         ORDER BY order_time, event_id LIMIT 1000",
        queued("state")
    )
}

/// One row when a delivery is queued in a lane (`$1` the service, `$2` the lane).
pub fn waiting_sql() -> String {
    format!(
        "SELECT CAST(1 AS BIGINT) FROM inbox_deliveries WHERE subscriber = $1 AND lane = $2 AND {} LIMIT 1",
        queued("state")
    )
}
