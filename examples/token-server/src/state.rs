//! Shared server state: the in-memory directory (users, streams), faults, counters, rate limiter.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::ServerClock;
use crate::config::{RateLimit, ServerConfig};
use crate::db::{AuditEntry, AuditMsg, Db};
use crate::room::Rooms;

/// Hex sha256 of a credential (how keys, codes and refresh tokens are stored and looked up).
pub(crate) fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A user as cached in memory.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub id: String,
    pub uid: u32,
    pub banned: bool,
}

/// A stream as cached in memory.
#[derive(Debug, Clone)]
pub(crate) struct Stream {
    pub owner: String,
    pub live: bool,
}

/// Users and streams, read on every token request, written only by admin calls (write-through
/// to SQLite).
#[derive(Debug, Default)]
pub(crate) struct Directory {
    pub users: HashMap<String, User>,
    /// sha256(api key) → user id.
    pub keys: HashMap<String, String>,
    /// Agora uid → user id.
    pub uids: HashMap<u32, String>,
    pub streams: HashMap<String, Stream>,
}

/// Runtime fault injection and tunables (`GET`/`PUT /admin/faults`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Faults {
    /// Fraction (0..=1) of token requests answered with an injected `503` (with `Retry-After: 1`)
    /// or `500`, half each. Default 0.
    pub error_rate: f64,
    /// Added latency of every token request, in ms. Default 0.
    pub latency_ms: u64,
    /// Server clock skew in ms (positive: fast). Default 0.
    pub clock_skew_ms: i64,
    /// Default RTC token lifetime in seconds.
    pub token_ttl_secs: u64,
    /// Room warning lead in ms.
    pub room_warn_before_ms: u64,
    /// Per-user rate limit of the RTC endpoint (`null`: off).
    pub rate_limit: Option<RateLimit>,
}

/// A partial update of [`Faults`]: only the fields present change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsUpdate {
    /// New [`Faults::error_rate`] (0..=1).
    pub error_rate: Option<f64>,
    /// New [`Faults::latency_ms`] (at most 60 000).
    pub latency_ms: Option<u64>,
    /// New [`Faults::clock_skew_ms`].
    pub clock_skew_ms: Option<i64>,
    /// New [`Faults::token_ttl_secs`] (1..=max token TTL).
    pub token_ttl_secs: Option<u64>,
    /// New [`Faults::room_warn_before_ms`].
    pub room_warn_before_ms: Option<u64>,
    /// `null` turns rate limiting off; absent leaves it unchanged.
    #[serde(default, deserialize_with = "double_option")]
    pub rate_limit: Option<Option<RateLimit>>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<RateLimit>>, D::Error> {
    Option::<RateLimit>::deserialize(d).map(Some)
}

/// Counters (`GET /admin/stats`).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub tokens_issued: AtomicU64,
    pub refreshes: AtomicU64,
    pub denied: AtomicU64,
    pub rate_limited: AtomicU64,
    pub errors_injected: AtomicU64,
    pub bad_requests: AtomicU64,
    pub unauthenticated: AtomicU64,
    pub oauth_tokens_issued: AtomicU64,
    pub oauth_refreshes: AtomicU64,
    pub oauth_invalid_client: AtomicU64,
    pub oauth_invalid_grant: AtomicU64,
    pub oauth_reuse_detected: AtomicU64,
    pub room_tokens_issued: AtomicU64,
    pub room_joins: AtomicU64,
    pub room_renewals: AtomicU64,
    pub room_warnings: AtomicU64,
    pub room_renew_rejected: AtomicU64,
    pub audit_dropped: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Per-user token buckets.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    buckets: Mutex<HashMap<String, (f64, i64)>>,
}

impl RateLimiter {
    /// Takes one token from `key`'s bucket; `Err(retry_after_secs)` when empty.
    pub fn check(&self, key: &str, limit: RateLimit, now_ms: i64) -> Result<(), u64> {
        let burst = f64::from(limit.burst.max(1));
        let mut buckets = self.buckets.lock();
        if buckets.len() > 100_000 {
            buckets.clear();
        }
        let (tokens, last) = match buckets.get_mut(key) {
            Some(b) => b,
            None => buckets.entry(key.to_owned()).or_insert((burst, now_ms)),
        };
        let elapsed = (now_ms - *last).max(0) as f64 / 1000.0;
        *tokens = (*tokens + elapsed * limit.per_sec).min(burst);
        *last = now_ms;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else if limit.per_sec <= 0.0 {
            Err(60)
        } else {
            let wait = (1.0 - *tokens) / limit.per_sec;
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct AppState {
    pub config: ServerConfig,
    pub clock: ServerClock,
    pub db: Db,
    pub dir: RwLock<Directory>,
    pub faults: RwLock<Faults>,
    pub counters: Counters,
    pub limiter: RateLimiter,
    pub rooms: Rooms,
    pub audit_tx: RwLock<Option<mpsc::Sender<AuditMsg>>>,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

pub(crate) type Shared = Arc<AppState>;

impl AppState {
    /// Queues an audit entry (never blocks).
    pub fn audit(&self, entry: AuditEntry) {
        let sent = self
            .audit_tx
            .read()
            .as_ref()
            .map(|tx| tx.send(AuditMsg::Entry(entry)).is_ok())
            .unwrap_or(false);
        if !sent {
            bump(&self.counters.audit_dropped);
        }
    }

    /// Waits until every queued audit entry is in SQLite.
    pub async fn flush_audit(&self) {
        let (ack_tx, ack_rx) = tokio::sync::oneshot::channel();
        let sent = self
            .audit_tx
            .read()
            .as_ref()
            .map(|tx| tx.send(AuditMsg::Flush(ack_tx)).is_ok())
            .unwrap_or(false);
        if sent {
            let _ = ack_rx.await;
        }
    }

    /// The current faults (a copy).
    pub fn faults(&self) -> Faults {
        self.faults.read().clone()
    }
}

impl AppState {
    /// Applies injected latency and errors to a token request.
    pub async fn inject_faults(&self) -> Result<(), crate::error::ApiError> {
        use axum::http::StatusCode;
        use rand::Rng;
        let (latency_ms, error_rate) = {
            let f = self.faults.read();
            (f.latency_ms, f.error_rate)
        };
        if latency_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(latency_ms)).await;
        }
        if error_rate > 0.0 {
            let mut rng = rand::thread_rng();
            if rng.r#gen::<f64>() < error_rate {
                bump(&self.counters.errors_injected);
                return Err(if rng.r#gen::<bool>() {
                    crate::error::ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "injected_unavailable",
                        "injected fault: service unavailable (error_rate in /admin/faults); retry later",
                    )
                    .with_retry_after(1)
                } else {
                    crate::error::ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "injected_internal",
                        "injected fault: internal error (error_rate in /admin/faults); retry later",
                    )
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        per_sec: 2.0,
        burst: 3,
    };

    #[test]
    fn bucket_allows_the_burst_then_asks_to_retry_after_the_refill_time() {
        let rl = RateLimiter::default();
        for _ in 0..3 {
            assert_eq!(rl.check("alice", LIMIT, 10_000), Ok(()));
        }
        assert_eq!(rl.check("alice", LIMIT, 10_000), Err(1));
        // other users have their own bucket
        assert_eq!(rl.check("bob", LIMIT, 10_000), Ok(()));
    }

    #[test]
    fn bucket_refills_at_the_sustained_rate() {
        let rl = RateLimiter::default();
        for _ in 0..3 {
            rl.check("alice", LIMIT, 0).unwrap();
        }
        assert!(rl.check("alice", LIMIT, 400).is_err()); // 0.8 tokens
        assert_eq!(rl.check("alice", LIMIT, 500), Ok(())); // 0.8 + 0.2 = 1.0
        assert!(rl.check("alice", LIMIT, 500).is_err());
        // a long pause refills to the burst, not beyond
        for _ in 0..3 {
            assert_eq!(rl.check("alice", LIMIT, 60_000), Ok(()));
        }
        assert!(rl.check("alice", LIMIT, 60_000).is_err());
    }

    #[test]
    fn slow_limit_reports_whole_seconds_to_wait() {
        let rl = RateLimiter::default();
        let slow = RateLimit {
            per_sec: 0.25,
            burst: 1,
        };
        rl.check("alice", slow, 0).unwrap();
        assert_eq!(rl.check("alice", slow, 0), Err(4));
        assert_eq!(rl.check("alice", slow, 2_000), Err(2));
    }
}
