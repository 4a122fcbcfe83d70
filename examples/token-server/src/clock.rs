//! The server's clock: an injected [`tokenkeeper::clock::Clock`] plus an adjustable skew.
//!
//! Every timestamp the server issues or checks (token `iat`/`exp`, `serverTime`, room expiry,
//! OAuth lifetimes) comes from [`ServerClock::now_ms`], so a skew set through
//! `PUT /admin/faults` shifts them all consistently.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokenkeeper::clock::{Clock, SystemClock};

/// Wall time from an injected clock, plus a skew in milliseconds (default 0).
///
/// ```
/// let clock = tokenkeeper_server::ServerClock::system();
/// clock.set_skew_ms(-5_000); // the server now runs five seconds slow
/// assert!(clock.now_ms() < clock.real_now_ms());
/// ```
#[derive(Debug)]
pub struct ServerClock {
    inner: Arc<dyn Clock>,
    skew_ms: AtomicI64,
}

impl ServerClock {
    /// A clock over `inner` with no skew.
    pub fn new(inner: Arc<dyn Clock>) -> Self {
        Self {
            inner,
            skew_ms: AtomicI64::new(0),
        }
    }

    /// A clock over the system clock with no skew.
    pub fn system() -> Self {
        Self::new(Arc::new(SystemClock::new()))
    }

    /// The server's notion of now, in unix milliseconds (clock + skew).
    pub fn now_ms(&self) -> i64 {
        self.inner
            .now_unix_ms()
            .saturating_add(self.skew_ms.load(Ordering::Relaxed))
    }

    /// The server's notion of now, in unix seconds (rounded down).
    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Time without skew (for rate-limit buckets, which must not jump with the skew).
    pub fn real_now_ms(&self) -> i64 {
        self.inner.now_unix_ms()
    }

    /// The current skew in milliseconds.
    pub fn skew_ms(&self) -> i64 {
        self.skew_ms.load(Ordering::Relaxed)
    }

    /// Sets the skew (positive: the server runs fast).
    pub fn set_skew_ms(&self, skew_ms: i64) {
        self.skew_ms.store(skew_ms, Ordering::Relaxed);
    }
}

/// Formats unix milliseconds as ISO-8601 UTC with millisecond precision (`2026-01-02T03:04:05.678Z`).
pub fn iso_millis(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Formats unix seconds as ISO-8601 UTC (`2026-01-02T03:04:05Z`).
pub fn iso_secs(secs: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenkeeper::clock::ManualClock;

    #[test]
    fn skew_shifts_now_but_not_real_now() {
        let clock = ServerClock::new(Arc::new(ManualClock::new(1_800_000_000_000)));
        clock.set_skew_ms(-90_500);
        assert_eq!(clock.now_ms(), 1_800_000_000_000 - 90_500);
        assert_eq!(clock.now_secs(), 1_799_999_909);
        assert_eq!(clock.real_now_ms(), 1_800_000_000_000);
    }

    #[test]
    fn formats_iso_8601_utc() {
        assert_eq!(iso_secs(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(iso_millis(1_800_000_000_123), "2027-01-15T08:00:00.123Z");
    }
}
