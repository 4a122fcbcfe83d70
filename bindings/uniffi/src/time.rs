//! The core counts time in unix milliseconds; the host languages get their own time types
//! (uniffi maps `SystemTime` to `java.time.Instant`, `Date`, `datetime`, and `Duration` to
//! `java.time.Duration`, `TimeInterval`, `timedelta`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A unix-millisecond instant as a `SystemTime`.
pub(crate) fn instant(unix_ms: i64) -> SystemTime {
    let offset = Duration::from_millis(unix_ms.unsigned_abs());
    if unix_ms >= 0 {
        UNIX_EPOCH + offset
    } else {
        UNIX_EPOCH - offset
    }
}

/// A `SystemTime` as unix milliseconds (saturating).
pub(crate) fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_through_unix_milliseconds() {
        for ms in [0, 1_700_000_000_123, -86_400_000] {
            assert_eq!(unix_ms(instant(ms)), ms);
        }
    }
}
