//! In-memory token buckets (the SQLite store's rate limiter; one instance owns them).

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::config::RateLimit;
use crate::store::Decision;

/// Most buckets kept; past that the map is cleared (every key starts with a full bucket).
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last_ms: i64,
    denied_streak: u64,
}

/// Token buckets by key.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Whole seconds until one token is back (at least 1; 60 when the rate is not positive).
pub(crate) fn retry_after_secs(tokens: f64, per_sec: f64) -> u64 {
    if !(per_sec.is_finite() && per_sec > 0.0) {
        return 60;
    }
    let wait = ((1.0 - tokens) / per_sec).ceil();
    if wait.is_finite() && wait >= 1.0 {
        // Saturating float-to-int cast, bounded to a day.
        (wait as u64).min(86_400)
    } else {
        1
    }
}

/// Refills a bucket of `burst` at `per_sec` for the time between `last_ms` and `now_ms`
/// (a clock that went back refills nothing).
pub(crate) fn refill(tokens: f64, last_ms: i64, now_ms: i64, limit: RateLimit) -> f64 {
    let burst = f64::from(limit.burst.max(1));
    let elapsed_ms = now_ms.saturating_sub(last_ms).max(0);
    // i64 → f64 loses precision only past 2^53 ms (285,000 years).
    let added = (elapsed_ms as f64 / 1000.0) * limit.per_sec.max(0.0);
    (tokens + added).min(burst)
}

impl RateLimiter {
    /// Takes one token from `key`'s bucket.
    pub fn check(&self, key: &str, limit: RateLimit, now_ms: i64) -> Decision {
        let burst = f64::from(limit.burst.max(1));
        let mut buckets = self.buckets.lock();
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            buckets.clear();
        }
        let b = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            last_ms: now_ms,
            denied_streak: 0,
        });
        b.tokens = refill(b.tokens, b.last_ms, now_ms, limit);
        b.last_ms = b.last_ms.max(now_ms);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            b.denied_streak = 0;
            Decision::Allowed
        } else {
            b.denied_streak = b.denied_streak.saturating_add(1);
            Decision::Denied {
                retry_after_secs: retry_after_secs(b.tokens, limit.per_sec),
                first: b.denied_streak == 1,
            }
        }
    }

    /// `Some(retry_after_secs)` when `key`'s bucket holds less than one request now.
    pub fn blocked(&self, key: &str, limit: RateLimit, now_ms: i64) -> Option<u64> {
        let buckets = self.buckets.lock();
        let b = buckets.get(key)?;
        let tokens = refill(b.tokens, b.last_ms, now_ms, limit);
        (tokens < 1.0).then(|| retry_after_secs(tokens, limit.per_sec))
    }

    /// Drops buckets untouched since `before_ms`.
    pub fn forget_older_than(&self, before_ms: i64) {
        self.buckets.lock().retain(|_, b| b.last_ms >= before_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        per_sec: 2.0,
        burst: 3,
    };

    fn denied(retry: u64, first: bool) -> Decision {
        Decision::Denied {
            retry_after_secs: retry,
            first,
        }
    }

    #[test]
    fn bucket_allows_the_burst_then_asks_to_retry_after_the_refill_time() {
        let rl = RateLimiter::default();
        for _ in 0..3 {
            assert_eq!(rl.check("alice", LIMIT, 10_000), Decision::Allowed);
        }
        assert_eq!(rl.check("alice", LIMIT, 10_000), denied(1, true));
        assert_eq!(rl.check("alice", LIMIT, 10_000), denied(1, false));
        // other users have their own bucket
        assert_eq!(rl.check("bob", LIMIT, 10_000), Decision::Allowed);
    }

    #[test]
    fn bucket_refills_at_the_sustained_rate() {
        let rl = RateLimiter::default();
        for _ in 0..3 {
            assert_eq!(rl.check("alice", LIMIT, 0), Decision::Allowed);
        }
        assert_eq!(rl.check("alice", LIMIT, 400), denied(1, true)); // 0.8 tokens
        assert_eq!(rl.check("alice", LIMIT, 500), Decision::Allowed); // 0.8 + 0.2 = 1.0
        assert_eq!(rl.check("alice", LIMIT, 500), denied(1, true)); // a new streak
        // a long pause refills to the burst, not beyond
        for _ in 0..3 {
            assert_eq!(rl.check("alice", LIMIT, 60_000), Decision::Allowed);
        }
        assert!(matches!(
            rl.check("alice", LIMIT, 60_000),
            Decision::Denied { .. }
        ));
    }

    #[test]
    fn slow_limit_reports_whole_seconds_to_wait() {
        let rl = RateLimiter::default();
        let slow = RateLimit {
            per_sec: 0.25,
            burst: 1,
        };
        assert_eq!(rl.check("alice", slow, 0), Decision::Allowed);
        assert_eq!(rl.check("alice", slow, 0), denied(4, true));
        assert_eq!(rl.check("alice", slow, 2_000), denied(2, false));
    }

    #[test]
    fn extreme_clock_values_neither_panic_nor_refill_backwards() {
        let rl = RateLimiter::default();
        assert_eq!(rl.check("a", LIMIT, i64::MIN), Decision::Allowed);
        assert_eq!(rl.check("a", LIMIT, i64::MAX), Decision::Allowed);
        // the clock jumps back: no refill, no panic
        assert_eq!(rl.check("a", LIMIT, i64::MIN), Decision::Allowed);
        assert_eq!(rl.check("a", LIMIT, 0), Decision::Allowed);
        assert!(matches!(rl.check("a", LIMIT, 0), Decision::Denied { .. }));
        assert_eq!(retry_after_secs(0.0, f64::NAN), 60);
        assert_eq!(retry_after_secs(0.0, 1e-30), 86_400);
    }
}
