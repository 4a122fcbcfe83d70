//! What a session reports: its state, the tokens it issued, its events and counters.

use std::fmt;

use chrono::{DateTime, Utc};
use tokenkeeper::lifecycle as core;

use crate::api::error::{ErrorKind, TokenKeeperError};
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
    /// Stopped after a fatal error (re-auth, revoked, misconfigured, repeated rejection).
    Failed,
    /// Closed; no more fetches.
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

/// A token the session accepted. Hand `token` to your engine (`joinChannel`, `renewToken`).
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The token. Never log it.
    pub token: String,
    /// When it expires (device clock, skew-corrected).
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

/// What happened in a [`SessionEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionEventKind {
    /// A new token was accepted (`reason`, `expiresAt`, `renewAt`, `fetchLatency`). Pass it to
    /// your engine: `engine.renewToken(token)`.
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
    /// A server rejected the current token (`fresh`: it had just been issued).
    Rejected,
    /// The sink handed a new token to the engine (`expiresAt`).
    Applied,
    /// The sink could not hand a token to the engine (`attempt`, `message`); it is retried.
    ApplyFailed,
    /// Rotated credentials could not be saved (`message`); the token was handed out anyway,
    /// the credentials stay in memory and the save is retried. Check your secure storage.
    StoreFailed,
    /// Fatal: the user must sign in again (`message`). No more fetches until `renewToken()`.
    ReauthRequired,
    /// Fatal: access forbidden or revoked (`message`). No more fetches until `renewToken()`.
    Forbidden,
    /// Fatal for another reason (`error`: misconfigured, repeated rejection).
    Failed,
    /// The session was closed. Its event stream ends after this.
    Closed,
}

/// One change in a session. Fields that do not apply to `kind` are `null`.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionEvent {
    /// The session's keeper-unique id (`TokenSession.id`).
    pub session_id: u64,
    /// The session's channel.
    pub channel: String,
    /// The session's user.
    pub user: String,
    /// When it happened (device clock).
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: SessionEventKind,
    /// `issued`, `fetchFailed`: why the fetch was made.
    pub reason: Option<FetchReason>,
    /// `issued`, `becameValid`, `willExpire`: when the token expires; `expired`: when it expired.
    pub expires_at: Option<DateTime<Utc>>,
    /// `issued`: when the next renewal starts.
    pub renew_at: Option<DateTime<Utc>>,
    /// `issued`: how long the fetch took.
    pub fetch_latency: Option<chrono::Duration>,
    /// `notYetValid`: when the held token becomes valid.
    pub starts_at: Option<DateTime<Utc>>,
    /// `fetchFailed`: consecutive failed attempts so far (1, 2, …).
    pub attempt: Option<u32>,
    /// `fetchFailed`: when the next attempt is due.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// `fetchFailed`, `failed`: what to do about the error (as `TokenKeeperError.kind`);
    /// `reauthRequired` and `revoked` events imply theirs.
    pub error_kind: Option<ErrorKind>,
    /// `rejected`: whether the token had just been issued.
    pub fresh: Option<bool>,
    /// `fetchFailed`, `failed`: the error message; `reauthRequired`, `revoked`: what the backend
    /// said. Never contains a token or secret.
    pub message: Option<String>,
}

impl From<core::Event> for SessionEvent {
    fn from(e: core::Event) -> Self {
        use core::EventKind as K;
        let mut out = SessionEvent {
            session_id: e.session_id,
            channel: e.session.channel.clone(),
            user: e.session.user.clone(),
            at: instant(e.at_ms),
            kind: SessionEventKind::Closed,
            reason: None,
            expires_at: None,
            renew_at: None,
            fetch_latency: None,
            starts_at: None,
            attempt: None,
            next_retry_at: None,
            error_kind: None,
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
                out.kind = SessionEventKind::Issued;
                out.reason = Some(reason.into());
                out.expires_at = Some(instant(expires_at_ms));
                out.renew_at = Some(instant(renew_at_ms));
                out.fetch_latency = chrono::Duration::from_std(fetch_latency).ok();
            }
            K::NotYetValid { starts_at_ms } => {
                out.kind = SessionEventKind::NotYetValid;
                out.starts_at = Some(instant(starts_at_ms));
            }
            K::BecameValid { expires_at_ms } => {
                out.kind = SessionEventKind::BecameValid;
                out.expires_at = Some(instant(expires_at_ms));
            }
            K::WillExpire { expires_at_ms } => {
                out.kind = SessionEventKind::WillExpire;
                out.expires_at = Some(instant(expires_at_ms));
            }
            K::Expired { expired_at_ms } => {
                out.kind = SessionEventKind::Expired;
                out.expires_at = Some(instant(expired_at_ms));
            }
            K::FetchFailed {
                reason,
                attempt,
                error,
                next_retry_at_ms,
            } => {
                out.kind = SessionEventKind::FetchFailed;
                out.reason = Some(reason.into());
                out.attempt = Some(attempt);
                out.set_error(error);
                out.next_retry_at = Some(instant(next_retry_at_ms));
            }
            K::Rejected { fresh } => {
                out.kind = SessionEventKind::Rejected;
                out.fresh = Some(fresh);
            }
            K::Applied { expires_at_ms } => {
                out.kind = SessionEventKind::Applied;
                out.expires_at = Some(instant(expires_at_ms));
            }
            K::ApplyFailed { attempt, message } => {
                out.kind = SessionEventKind::ApplyFailed;
                out.attempt = Some(attempt);
                out.message = Some(message);
            }
            K::StoreFailed { message } => {
                out.kind = SessionEventKind::StoreFailed;
                out.message = Some(message);
            }
            K::ReauthRequired { message } => {
                out.kind = SessionEventKind::ReauthRequired;
                out.message = Some(message);
            }
            K::Forbidden { reason } => {
                out.kind = SessionEventKind::Forbidden;
                out.message = Some(reason);
            }
            K::Failed { error } => {
                out.kind = SessionEventKind::Failed;
                out.set_error(error);
            }
            K::Closed => out.kind = SessionEventKind::Closed,
        }
        out
    }
}

impl SessionEvent {
    fn set_error(&mut self, error: tokenkeeper::Error) {
        let error = TokenKeeperError::from(error);
        self.error_kind = Some(error.kind);
        self.message = Some(error.message);
    }
}

/// What a session counted so far (for dashboards and QA screens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCounters {
    /// Fetch attempts started.
    pub fetches: u64,
    /// Tokens accepted after the first one.
    pub renewals: u64,
    /// Failed attempts (errors, timeouts, unusable tokens).
    pub failures: u64,
    /// Fetches made because no valid token was held.
    pub emergency_fetches: u64,
    /// Tokens reported rejected with `tokenRejected()`.
    pub rejections: u64,
    /// Duration of the last completed fetch.
    pub last_fetch_latency: Option<chrono::Duration>,
    /// Total time, after the first token, without a valid token.
    pub expired_total: chrono::Duration,
    /// Saves of rotated credentials that failed or did not answer in time (each retried).
    pub store_failures: u64,
    /// Times the session's driver restarted after a panic (a bug: please report it).
    pub driver_restarts: u64,
}

impl From<core::Counters> for SessionCounters {
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
            expired_total: chrono::Duration::milliseconds(
                i64::try_from(c.expired_ms).unwrap_or(i64::MAX),
            ),
            store_failures: c.store_failures,
            driver_restarts: c.driver_restarts,
        }
    }
}

/// A unix-milliseconds instant as a UTC date-time (out-of-range values clamp to the epoch).
pub(crate) fn instant(unix_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(unix_ms).unwrap_or_default()
}
