//! What a session reports: its state and status, the tokens it issued, its events and counters.

use std::fmt;

use chrono::{DateTime, Utc};
use tokenkeeper::lifecycle as core;

use crate::api::config::SessionSpec;
use crate::api::error::TokenKeeperError;
use crate::api::source::FetchReason;
use crate::redact::Redacted;

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Opened, nothing fetched yet (the first `token()` fetches).
    Idle,
    /// Fetching (or retrying) a first token; no valid token.
    Fetching,
    /// Holding a valid token; next renewal scheduled.
    Valid,
    /// Holding a valid token while renewing it (including retries).
    Renewing,
    /// Holding a token that becomes valid later (JWT `nbf` in the future).
    NotYetValid,
    /// The token expired (or was rejected); an emergency fetch is in progress or retrying.
    Expired,
    /// Stopped after a fatal error (re-auth, forbidden, misconfigured, repeated rejection):
    /// `SessionStatus.error` says which. `renewToken()` or `setCredentials()` resume it.
    Failed,
    /// Closed; no more fetches. Final.
    Closed,
}

impl From<core::SessionState> for SessionState {
    fn from(s: core::SessionState) -> Self {
        match s {
            core::SessionState::Idle => Self::Idle,
            core::SessionState::Fetching => Self::Fetching,
            core::SessionState::Valid => Self::Valid,
            core::SessionState::Renewing => Self::Renewing,
            core::SessionState::NotYetValid => Self::NotYetValid,
            core::SessionState::Expired => Self::Expired,
            core::SessionState::Failed => Self::Failed,
            core::SessionState::Closed => Self::Closed,
        }
    }
}

/// Where a session is and what it holds: what `Session.status()` returns and
/// `Session.watchStatus()` streams (the current value first, then every change).
///
/// Tells "closed" from "failed": a failed session has `state == SessionState.failed` and the
/// `error` that stopped it; a closed one has `state == SessionState.closed` and no error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatus {
    /// Where the session is.
    pub state: SessionState,
    /// When the current valid token expires (device clock), if there is one.
    pub expires_at: Option<DateTime<Utc>>,
    /// What stopped the session, in state `failed`.
    pub error: Option<TokenKeeperError>,
}

impl From<core::Status> for SessionStatus {
    fn from(s: core::Status) -> Self {
        Self {
            state: s.state.into(),
            expires_at: s.expires_at_ms.map(instant),
            error: s.error.map(Into::into),
        }
    }
}

/// A token the session accepted. With a sink, the session hands it to your engine itself; the
/// only token your code passes on is the first one, from `token()`, to join.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The token. Never log it.
    pub token: String,
    /// When it expires (device clock, corrected for server clock skew).
    pub expires_at: DateTime<Utc>,
    /// When the session received it (device clock).
    pub received_at: DateTime<Utc>,
    /// Why it was fetched.
    pub reason: FetchReason,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &Redacted(&self.token))
            .field("expires_at", &self.expires_at)
            .field("received_at", &self.received_at)
            .field("reason", &self.reason)
            .finish()
    }
}

impl From<core::IssuedToken> for IssuedToken {
    fn from(t: core::IssuedToken) -> Self {
        Self {
            token: t.token.expose().to_owned(),
            expires_at: instant(t.expires_at_ms),
            received_at: instant(t.received_at_ms),
            reason: t.reason.into(),
        }
    }
}

/// What happened in a [`SessionEvent`] (the same kinds on every platform). The fields of the
/// event that carry data for each kind are listed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A new token was accepted (`reason`, `expiresAt`, `renewAt`, `fetchLatency`). With a sink
    /// it is handed to the engine next (`applied`); without one, pass it to your engine.
    Issued,
    /// The accepted token is valid only from `startsAt`; it is held until then.
    NotYetValid,
    /// A held not-yet-valid token became valid (`expiresAt`).
    BecameValid,
    /// Scheduled renewal started: the current token expires at `expiresAt`.
    WillExpire,
    /// The token expired (at `expiresAt`) before a replacement arrived.
    Expired,
    /// A fetch failed (`reason`, `attempt`, `error`); the next attempt is at `nextRetryAt`.
    FetchFailed,
    /// A server or the engine rejected the current token (`fresh`: it had just been issued).
    Rejected,
    /// The sink handed a new token to the engine (`expiresAt`: that token's expiry).
    Applied,
    /// The sink could not hand a token to the engine (`attempt`, `message`: what your sink
    /// threw, first line). It is retried; a fresh token the engine keeps refusing is treated as
    /// rejected and a new one fetched.
    ApplyFailed,
    /// Rotated credentials could not be saved (`message`); the token was handed out anyway,
    /// the credentials stay in memory and the save is retried. Check your secure storage.
    StoreFailed,
    /// Fatal: the user must sign in again (`message`). No more fetches until
    /// `setCredentials()` or `renewToken()`.
    ReauthRequired,
    /// Fatal: access forbidden or revoked (`message`: banned, stream ended). Leave the channel.
    Forbidden,
    /// Fatal for another reason (`error`: misconfigured, repeated rejection).
    Failed,
    /// The session was closed. Its event stream ends after this event; a failed session's
    /// stream does not end (it can resume).
    Closed,
}

/// One change in a session. Fields that do not apply to `kind` are `null`.
///
/// Where Dart differs from the other platforms: one class with a `kind` and nullable fields
/// rather than one class per kind, because flutter_rust_bridge generates sealed classes for
/// enums with data only through freezed and build_runner, which this package does not use.
///
/// ```dart
/// session.events().listen((e) {
///   switch (e.kind) {
///     case EventKind.fetchFailed: log('attempt ${e.attempt} failed: ${e.error!.message}');
///     case EventKind.forbidden: leaveChannel(e.message);
///     default: break;
///   }
/// });
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SessionEvent {
    /// The session's keeper-unique id (`Session.id()`).
    pub session_id: u64,
    /// The session's channel, user, role and parameters.
    pub session: SessionSpec,
    /// When it happened (device clock).
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: EventKind,
    /// `issued`, `fetchFailed`: why the fetch was made.
    pub reason: Option<FetchReason>,
    /// `issued`, `becameValid`, `willExpire`, `applied`: when the token expires; `expired`:
    /// when it expired.
    pub expires_at: Option<DateTime<Utc>>,
    /// `issued`: when the next renewal starts.
    pub renew_at: Option<DateTime<Utc>>,
    /// `issued`: how long the fetch took.
    pub fetch_latency: Option<chrono::Duration>,
    /// `notYetValid`: when the held token becomes valid.
    pub starts_at: Option<DateTime<Utc>>,
    /// `fetchFailed`: consecutive failed attempts so far (1, 2, …); `applyFailed`: consecutive
    /// failed hand-overs of this token.
    pub attempt: Option<u32>,
    /// `fetchFailed`: when the next attempt is due.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// `fetchFailed`, `failed`: the error (its `kind` says what to do).
    pub error: Option<TokenKeeperError>,
    /// `rejected`: whether the token had just been issued.
    pub fresh: Option<bool>,
    /// `applyFailed`, `storeFailed`: what your callback said; `reauthRequired`, `forbidden`:
    /// what the backend said. Never contains a token or secret.
    pub message: Option<String>,
}

impl From<core::Event> for SessionEvent {
    fn from(e: core::Event) -> Self {
        use core::EventKind as K;
        let mut out = SessionEvent {
            session_id: e.session_id,
            session: e.session.as_ref().into(),
            at: instant(e.at_ms),
            kind: EventKind::Closed,
            reason: None,
            expires_at: None,
            renew_at: None,
            fetch_latency: None,
            starts_at: None,
            attempt: None,
            next_retry_at: None,
            error: None,
            fresh: None,
            message: None,
        };
        match e.kind {
            K::Issued {
                reason,
                expires_at_ms,
                renew_at_ms,
                fetch_latency,
            } => {
                out.kind = EventKind::Issued;
                out.reason = Some(reason.into());
                out.expires_at = Some(instant(expires_at_ms));
                out.renew_at = Some(instant(renew_at_ms));
                out.fetch_latency = chrono::Duration::from_std(fetch_latency).ok();
            }
            K::NotYetValid { starts_at_ms } => {
                out.kind = EventKind::NotYetValid;
                out.starts_at = Some(instant(starts_at_ms));
            }
            K::BecameValid { expires_at_ms } => {
                out.kind = EventKind::BecameValid;
                out.expires_at = Some(instant(expires_at_ms));
            }
            K::WillExpire { expires_at_ms } => {
                out.kind = EventKind::WillExpire;
                out.expires_at = Some(instant(expires_at_ms));
            }
            K::Expired { expired_at_ms } => {
                out.kind = EventKind::Expired;
                out.expires_at = Some(instant(expired_at_ms));
            }
            K::FetchFailed {
                reason,
                attempt,
                error,
                next_retry_at_ms,
            } => {
                out.kind = EventKind::FetchFailed;
                out.reason = Some(reason.into());
                out.attempt = Some(attempt);
                out.error = Some(error.into());
                out.next_retry_at = Some(instant(next_retry_at_ms));
            }
            K::Rejected { fresh } => {
                out.kind = EventKind::Rejected;
                out.fresh = Some(fresh);
            }
            K::Applied { expires_at_ms } => {
                out.kind = EventKind::Applied;
                out.expires_at = Some(instant(expires_at_ms));
            }
            K::ApplyFailed { attempt, message } => {
                out.kind = EventKind::ApplyFailed;
                out.attempt = Some(attempt);
                out.message = Some(message);
            }
            K::StoreFailed { message } => {
                out.kind = EventKind::StoreFailed;
                out.message = Some(message);
            }
            K::ReauthRequired { message } => {
                out.kind = EventKind::ReauthRequired;
                out.message = Some(message);
            }
            K::Forbidden { reason } => {
                out.kind = EventKind::Forbidden;
                out.message = Some(reason);
            }
            K::Failed { error } => {
                out.kind = EventKind::Failed;
                out.error = Some(error.into());
            }
            K::Closed => out.kind = EventKind::Closed,
        }
        out
    }
}

/// What a session counted so far (for dashboards and QA screens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Fetch attempts started (failed ones included).
    pub fetches: u64,
    /// Tokens accepted after the first one.
    pub renewals: u64,
    /// Failed attempts (errors, timeouts, unusable tokens).
    pub failures: u64,
    /// Fetches made because no valid token was held.
    pub emergency_fetches: u64,
    /// Tokens reported rejected.
    pub rejections: u64,
    /// Duration of the last completed fetch.
    pub last_fetch_latency: Option<chrono::Duration>,
    /// Total time, after the first token, without a valid token.
    pub time_without_token: chrono::Duration,
    /// Saves of rotated credentials that failed or did not answer in time (each retried).
    pub store_failures: u64,
    /// Times the session's driver restarted after a panic (a bug: please report it).
    pub driver_restarts: u64,
    /// Tokens the sink handed to the engine.
    pub applies: u64,
    /// Failed hand-overs to the engine (each retried).
    pub apply_failures: u64,
}

impl From<core::Counters> for Counters {
    fn from(c: core::Counters) -> Self {
        Self {
            fetches: c.fetches,
            renewals: c.renewals,
            failures: c.failures,
            emergency_fetches: c.emergency_fetches,
            rejections: c.rejections,
            last_fetch_latency: c
                .last_fetch_latency
                .and_then(|d| chrono::Duration::from_std(d).ok()),
            time_without_token: chrono::Duration::milliseconds(
                i64::try_from(c.expired_ms).unwrap_or(i64::MAX),
            ),
            store_failures: c.store_failures,
            driver_restarts: c.driver_restarts,
            applies: c.applies,
            apply_failures: c.apply_failures,
        }
    }
}

/// A unix-milliseconds instant as a UTC date-time (out-of-range values clamp to the epoch).
pub(crate) fn instant(unix_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(unix_ms).unwrap_or_default()
}
