//! Shared server state: the store, faults, counters, rooms, and the audit queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::clock::ServerClock;
use crate::config::{RateLimit, ServerConfig};
use crate::error::ApiError;
use crate::room::Rooms;
use crate::store::{AuditEntry, Decision, Store};

/// Runtime fault injection and tunables (`GET`/`PUT /admin/faults`). Per instance.
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
    /// New [`Faults::clock_skew_ms`] (within ±10 years).
    pub clock_skew_ms: Option<i64>,
    /// New [`Faults::token_ttl_secs`] (1..=max token TTL).
    pub token_ttl_secs: Option<u64>,
    /// New [`Faults::room_warn_before_ms`] (at most one day).
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

/// Counters (`GET /admin/stats`). Per instance.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub tokens_issued: AtomicU64,
    pub refreshes: AtomicU64,
    pub denied: AtomicU64,
    pub rate_limited: AtomicU64,
    pub errors_injected: AtomicU64,
    pub bad_requests: AtomicU64,
    pub unauthenticated: AtomicU64,
    pub auth_throttled: AtomicU64,
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
    pub store_errors: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A message to the audit writer task.
#[derive(Debug)]
pub(crate) enum AuditMsg {
    Entry(AuditEntry),
    /// Write everything queued so far, then acknowledge.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Audit entries queued at most; past that, entries are dropped and counted
/// (`audit_dropped`), so a flood cannot grow the server's memory.
pub(crate) const AUDIT_QUEUE: usize = 65_536;
/// Largest number of rows written in one batch.
const AUDIT_BATCH: usize = 4096;

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct AppState {
    pub config: ServerConfig,
    pub clock: ServerClock,
    pub store: Arc<dyn Store>,
    pub faults: RwLock<Faults>,
    pub counters: Counters,
    pub rooms: Rooms,
    pub audit_tx: RwLock<Option<tokio::sync::mpsc::Sender<AuditMsg>>>,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Random id of this instance (room kicks it published itself are not applied twice).
    pub instance_id: String,
    /// Addresses that failed to authenticate here lately (address → last failure, unix ms).
    /// Only for these is the shared failure bucket read before a credential is checked, which
    /// spares the database a read per request from well-behaved clients. A load balancer
    /// spreads an attacker's attempts over every instance, so each one learns the address
    /// after its first failure there.
    pub recent_failures: parking_lot::Mutex<std::collections::HashMap<std::net::IpAddr, i64>>,
}

/// Addresses remembered in [`AppState::recent_failures`] at most (then the map starts over).
const RECENT_FAILURES_MAX: usize = 65_536;
/// How long a failure keeps an address under watch: 15 minutes.
const RECENT_FAILURE_MS: i64 = 15 * 60 * 1000;

pub(crate) type Shared = Arc<AppState>;

impl AppState {
    /// Queues an audit entry (never blocks; its text fields are bounded first).
    pub fn audit(&self, entry: AuditEntry) {
        let sent = self
            .audit_tx
            .read()
            .as_ref()
            .map(|tx| tx.try_send(AuditMsg::Entry(entry.bounded())).is_ok())
            .unwrap_or(false);
        if !sent {
            bump(&self.counters.audit_dropped);
        }
    }

    /// Waits until every queued audit entry is written.
    pub async fn flush_audit(&self) {
        let (ack_tx, ack_rx) = tokio::sync::oneshot::channel();
        let tx = self.audit_tx.read().clone();
        if let Some(tx) = tx {
            if tx.send(AuditMsg::Flush(ack_tx)).await.is_ok() {
                let _ = ack_rx.await;
            }
        }
    }

    /// The current faults (a copy).
    pub fn faults(&self) -> Faults {
        self.faults.read().clone()
    }

    /// Takes one request from `key`'s bucket; a store failure is a `500` naming the cause.
    pub async fn take(&self, key: &str, limit: RateLimit) -> Result<Decision, ApiError> {
        self.store
            .take(key, limit, self.clock.real_now_ms())
            .await
            .map_err(|e| self.store_error(e))
    }

    /// Logs a store failure and turns it into a `500` (the cause stays in the log).
    pub fn store_error(&self, e: crate::store::StoreError) -> ApiError {
        bump(&self.counters.store_errors);
        tracing::error!(error = %e, "store error");
        ApiError::internal(
            "the server's database failed; retry later (the cause is in the server log)",
        )
    }

    /// The failed-authentication throttle keys of `peer` and `subject` (an OAuth client id
    /// or a key's name).
    fn auth_keys(peer: Option<std::net::IpAddr>, subject: Option<&str>) -> Vec<String> {
        let mut keys = Vec::with_capacity(2);
        if let Some(ip) = peer {
            keys.push(format!("authfail:ip:{ip}"));
        }
        if let Some(s) = subject {
            keys.push(format!("authfail:sub:{s}"));
        }
        keys
    }

    /// `Err(429)` while `peer` or `subject` has no failed-authentication allowance left.
    /// Checked before a credential is compared, so a right guess is refused too and guessing
    /// gains nothing.
    pub async fn check_auth_throttle(
        &self,
        peer: Option<std::net::IpAddr>,
        subject: Option<&str>,
    ) -> Result<(), ApiError> {
        let limit = self.config.auth_failure_limit;
        let now = self.clock.real_now_ms();
        let watched = peer.is_some_and(|ip| {
            self.recent_failures
                .lock()
                .get(&ip)
                .is_some_and(|t| now.saturating_sub(*t) < RECENT_FAILURE_MS)
        });
        let peer = if watched { peer } else { None };
        for key in Self::auth_keys(peer, subject) {
            let blocked = self
                .store
                .blocked(&key, limit, self.clock.real_now_ms())
                .await
                .map_err(|e| self.store_error(e))?;
            if let Some(retry_after_secs) = blocked {
                bump(&self.counters.auth_throttled);
                return Err(auth_throttled(retry_after_secs));
            }
        }
        Ok(())
    }

    /// Counts a failed authentication from `peer` and for `subject`.
    pub async fn note_auth_failure(
        &self,
        peer: Option<std::net::IpAddr>,
        subject: Option<&str>,
    ) -> Result<(), ApiError> {
        let limit = self.config.auth_failure_limit;
        if let Some(ip) = peer {
            let mut recent = self.recent_failures.lock();
            if recent.len() >= RECENT_FAILURES_MAX && !recent.contains_key(&ip) {
                recent.clear();
            }
            recent.insert(ip, self.clock.real_now_ms());
        }
        for key in Self::auth_keys(peer, subject) {
            self.take(&key, limit).await?;
        }
        Ok(())
    }
}

/// The `429` of an exhausted failed-authentication throttle.
pub(crate) fn auth_throttled(retry_after_secs: u64) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "too_many_failed_attempts",
        format!("too many failed authentications from this address or for this client; check the credential and retry after {retry_after_secs} s"),
    )
    .with_retry_after(retry_after_secs)
}

impl AppState {
    /// Applies injected latency and errors to a token request.
    pub async fn inject_faults(&self) -> Result<(), ApiError> {
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
            let (fail, unavailable) = {
                let mut rng = rand::thread_rng();
                (rng.r#gen::<f64>() < error_rate, rng.r#gen::<bool>())
            };
            if fail {
                bump(&self.counters.errors_injected);
                return Err(if unavailable {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "injected_unavailable",
                        "injected fault: service unavailable (error_rate in /admin/faults); retry later",
                    )
                    .with_retry_after(1)
                } else {
                    ApiError::new(
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

/// Starts the audit writer: entries arrive over a bounded channel and are written in batches,
/// so the token endpoints never wait on the database. Ends when every sender is dropped.
pub(crate) fn spawn_audit_writer(
    store: Arc<dyn Store>,
) -> (
    tokio::sync::mpsc::Sender<AuditMsg>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<AuditMsg>(AUDIT_QUEUE);
    let task = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut entries = Vec::new();
            let mut acks = Vec::new();
            let mut next = Some(first);
            while let Some(m) = next.take() {
                match m {
                    AuditMsg::Entry(e) => entries.push(e),
                    AuditMsg::Flush(ack) => acks.push(ack),
                }
                if entries.len() < AUDIT_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if !entries.is_empty() {
                if let Err(e) = store.write_audit(&entries).await {
                    tracing::error!(error = %e, rows = entries.len(), "audit batch not written");
                }
            }
            for ack in acks {
                let _ = ack.send(());
            }
        }
    });
    (tx, task)
}
