//! Conversions between the clock, database timestamps (Unix milliseconds) and protobuf timestamps.

use chrono::{DateTime, TimeZone, Utc};

/// Now, in Unix milliseconds: how every table stores time, portable across PostgreSQL and SQLite.
pub fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

/// A protobuf timestamp from Unix milliseconds.
pub fn to_timestamp(millis: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: millis.div_euclid(1000), nanos: (millis.rem_euclid(1000) * 1_000_000) as i32 }
}

/// Unix milliseconds from a protobuf timestamp.
pub fn from_timestamp(ts: &prost_types::Timestamp) -> i64 {
    ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000
}

/// A chrono time from Unix milliseconds (clamped to the epoch when out of range).
pub fn to_datetime(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(millis).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip_through_protobuf_including_before_the_epoch() {
        for ms in [0, 1, 999, 1_700_000_000_123, -1, -1001] {
            assert_eq!(from_timestamp(&to_timestamp(ms)), ms);
            assert!((0..1_000_000_000).contains(&to_timestamp(ms).nanos));
        }
    }
}
