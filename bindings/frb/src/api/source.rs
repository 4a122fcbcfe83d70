//! The Dart-implemented token source and credential store.
//!
//! The app fetches tokens with its own HTTP client and keeps refresh tokens in its own secure
//! storage; the core decides *when*. Dart functions are passed in as callbacks and called on
//! the core's schedule (at most one fetch in flight per session).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flutter_rust_bridge::DartFnFuture;
use tokenkeeper::source::{self as core, Credentials, RetryKind, SourceError};
use tokenkeeper::store::{CredentialStore, StoreError};

use crate::api::config::SessionSpec;
use crate::redact::{Redacted, SecretLen, host_text};

/// Why a token is being fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FetchReason {
    /// First token of the session.
    Initial,
    /// Planned renewal: the current token is still valid but expires soon.
    Scheduled,
    /// The current token already expired, or `tokenExpired()` was called.
    Emergency,
    /// `renewToken()` was called (e.g. from the engine's "will expire" callback).
    Forced,
    /// A server rejected the current token (`tokenRejected()`).
    Rejected,
}

impl From<core::FetchReason> for FetchReason {
    fn from(reason: core::FetchReason) -> Self {
        match reason {
            core::FetchReason::Initial => Self::Initial,
            core::FetchReason::Scheduled => Self::Scheduled,
            core::FetchReason::Emergency => Self::Emergency,
            core::FetchReason::Forced => Self::Forced,
            core::FetchReason::Rejected => Self::Rejected,
        }
    }
}

/// One request from the session to your token source (`FetchRequest` on every platform).
///
/// Holds secrets (`credentials`, `previousToken`): use them in the request to your backend,
/// never log them.
#[derive(Clone, PartialEq)]
pub struct FetchRequest {
    /// Why the token is needed.
    pub reason: FetchReason,
    /// Which session it is for: channel, user, role and extra parameters.
    pub session: SessionSpec,
    /// 1 for the first attempt, 2 for the first retry after a failure, …
    pub attempt: u32,
    /// The latest long-lived credentials (e.g. refresh token): loaded from the credential store
    /// on the first fetch, then the last rotated ones. `null` when there are none.
    pub credentials: Option<String>,
    /// The token being replaced, if any (for backends that renew in place).
    pub previous_token: Option<String>,
    /// The session abandons the fetch after this long; use it as your HTTP timeout.
    pub timeout: chrono::Duration,
}

impl fmt::Debug for FetchRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchRequest")
            .field("reason", &self.reason)
            .field("session", &self.session)
            .field("attempt", &self.attempt)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|c| SecretLen(c)),
            )
            .field(
                "previous_token",
                &self.previous_token.as_ref().map(|t| Redacted(t)),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl From<core::FetchRequest> for FetchRequest {
    fn from(r: core::FetchRequest) -> Self {
        Self {
            reason: r.reason.into(),
            session: r.session.as_ref().into(),
            attempt: r.attempt,
            credentials: r.credentials.map(|c| c.expose().to_owned()),
            previous_token: r.previous.map(|t| t.expose().to_owned()),
            timeout: chrono::Duration::from_std(r.timeout).unwrap_or(chrono::Duration::MAX),
        }
    }
}

/// A token your source fetched, with what your backend said about its lifetime. The session
/// uses the earliest of the token's own expiry (decoded from Agora/ZEGO/JWT tokens), `expiresAt`
/// and fetch time + `expiresIn`.
#[derive(Clone, PartialEq)]
pub struct FetchedToken {
    /// The access token.
    pub token: String,
    /// Absolute expiry in the server's clock.
    pub expires_at: Option<DateTime<Utc>>,
    /// Lifetime relative to the response (OAuth `expires_in`).
    pub expires_in: Option<chrono::Duration>,
    /// When the server issued it (server clock).
    pub issued_at: Option<DateTime<Utc>>,
    /// The server's current time when it answered (HTTP `Date`, a `serverTime` field); corrects
    /// device clock skew.
    pub server_time: Option<DateTime<Utc>>,
    /// New long-lived credentials (a rotated refresh token). Saved in the credential store
    /// **before** the token is handed out.
    pub rotated_credentials: Option<String>,
}

impl fmt::Debug for FetchedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchedToken")
            .field("token", &Redacted(&self.token))
            .field("expires_at", &self.expires_at)
            .field("expires_in", &self.expires_in)
            .field("issued_at", &self.issued_at)
            .field("server_time", &self.server_time)
            .field(
                "rotated_credentials",
                &self.rotated_credentials.as_ref().map(|c| SecretLen(c)),
            )
            .finish()
    }
}

/// How a fetch failed, from your source's point of view. The session decides from it whether
/// to retry (and when) or stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FetchFailureKind {
    /// No connection, DNS, TLS or reset: retried with backoff.
    Network,
    /// No answer in time: retried with backoff.
    Timeout,
    /// The backend answered with an HTTP error status (`httpStatus` required): classified by
    /// the core: 408/425/5xx retry, 429 retry honouring `retryAfter`, 401 `reauthRequired`,
    /// 403 and 404/410 `forbidden`, other 4xx `misconfigured`.
    HttpStatus,
    /// The user must sign in again (e.g. OAuth `invalid_grant`): retries stop.
    ReauthRequired,
    /// The backend refuses this user/channel (banned, not the owner): retries stop.
    Forbidden,
    /// The stream ended or access was revoked: retries stop (`ErrorKind.forbidden`).
    Revoked,
    /// A setting is wrong (`setting` names it, e.g. `client_secret`): retries stop.
    Misconfigured,
}

/// A failed fetch, as your source reports it. `message` must not contain secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchFailure {
    /// What kind of failure.
    pub kind: FetchFailureKind,
    /// What happened, for logs and the QA screen (no secrets).
    pub message: String,
    /// `httpStatus` kind: the status code.
    pub http_status: Option<u16>,
    /// A server-requested wait (HTTP `Retry-After`).
    pub retry_after: Option<chrono::Duration>,
    /// `misconfigured` (or an HTTP 4xx): the setting to check, e.g. `tokenUrl`.
    pub setting: Option<String>,
}

/// What your source's fetch function returns: exactly one of `token` or `failure`.
///
/// The Dart package builds it for you from a returned `FetchedToken` or a thrown
/// `TokenSourceException` when you wrap your function with `tokenSource(...)`
/// (`package:tokenkeeper/tokenkeeper.dart`).
#[derive(Debug, Clone, PartialEq)]
pub struct FetchOutcome {
    /// The token, on success.
    pub token: Option<FetchedToken>,
    /// The failure, otherwise.
    pub failure: Option<FetchFailure>,
}

/// Converts what the Dart fetch function produced into the core's result. An exception that
/// escaped the Dart function (`Err`) counts as a retryable network failure; its text is cut to
/// its first line and redacted, so no stack trace (or token) reaches the logs.
pub(crate) fn outcome_to_core(
    outcome: Result<FetchOutcome, anyhow::Error>,
) -> Result<core::FetchedToken, SourceError> {
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            return Err(SourceError::network(format!(
                "the Dart token source threw: {}",
                host_text(&e)
            )));
        }
    };
    match (outcome.token, outcome.failure) {
        (Some(t), None) => fetched_to_core(t),
        (None, Some(f)) => Err(failure_to_core(f)),
        (Some(_), Some(_)) => Err(SourceError::Misconfigured {
            setting: "FetchOutcome".into(),
            message: "the token source returned both a token and a failure; return exactly one"
                .into(),
        }),
        (None, None) => Err(SourceError::Misconfigured {
            setting: "FetchOutcome".into(),
            message: "the token source returned neither a token nor a failure; return exactly one"
                .into(),
        }),
    }
}

fn fetched_to_core(t: FetchedToken) -> Result<core::FetchedToken, SourceError> {
    if t.token.is_empty() {
        return Err(SourceError::RetryLater {
            kind: RetryKind::BadToken,
            retry_after: None,
            message: "the token source returned an empty token".into(),
        });
    }
    let mut out = core::FetchedToken::new(core::Token::new(t.token));
    out.expires_at_ms = t.expires_at.map(|d| d.timestamp_millis());
    out.expires_in = t.expires_in.map(|d| d.to_std().unwrap_or(Duration::ZERO));
    out.issued_at_ms = t.issued_at.map(|d| d.timestamp_millis());
    out.server_time_ms = t.server_time.map(|d| d.timestamp_millis());
    out.rotated = t.rotated_credentials.map(Credentials::new);
    Ok(out)
}

fn failure_to_core(f: FetchFailure) -> SourceError {
    let retry_after = f.retry_after.and_then(|d| d.to_std().ok());
    let setting = f.setting.unwrap_or_default();
    let message = f.message;
    match f.kind {
        FetchFailureKind::Network => SourceError::RetryLater {
            kind: RetryKind::Network,
            retry_after,
            message,
        },
        FetchFailureKind::Timeout => SourceError::RetryLater {
            kind: RetryKind::Timeout,
            retry_after,
            message,
        },
        FetchFailureKind::HttpStatus => match f.http_status {
            Some(status) => SourceError::from_http_status(status, retry_after, &setting, message),
            None => SourceError::Misconfigured {
                setting: "FetchFailure.httpStatus".into(),
                message: format!("kind httpStatus needs httpStatus set ({message})"),
            },
        },
        FetchFailureKind::ReauthRequired => SourceError::ReauthRequired { message },
        FetchFailureKind::Forbidden => SourceError::Forbidden { reason: message },
        FetchFailureKind::Revoked => SourceError::Revoked { reason: message },
        FetchFailureKind::Misconfigured => SourceError::Misconfigured { setting, message },
    }
}

/// The Dart fetch function as a core `TokenSource`.
pub(crate) struct DartTokenSource<F> {
    fetch: F,
}

impl<F> DartTokenSource<F> {
    pub(crate) fn new(fetch: F) -> Self {
        Self { fetch }
    }
}

impl<F> fmt::Debug for DartTokenSource<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DartTokenSource")
    }
}

#[async_trait::async_trait]
impl<F> core::TokenSource for DartTokenSource<F>
where
    F: Fn(FetchRequest) -> DartFnFuture<anyhow::Result<FetchOutcome>> + Send + Sync + 'static,
{
    async fn fetch(&self, request: core::FetchRequest) -> Result<core::FetchedToken, SourceError> {
        outcome_to_core((self.fetch)(request.into()).await)
    }
}

/// Dart functions backing a core `CredentialStore` (Keychain / Keystore via your plugin).
pub(crate) struct DartCredentialStore<L, S, D> {
    pub(crate) load: L,
    pub(crate) save: S,
    pub(crate) delete: D,
}

impl<L, S, D> fmt::Debug for DartCredentialStore<L, S, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DartCredentialStore")
    }
}

fn store_error(op: &str, key: &str, e: &anyhow::Error) -> StoreError {
    StoreError::new(format!(
        "the Dart credential store's {op}(\"{key}\") threw: {}",
        host_text(e)
    ))
}

#[async_trait::async_trait]
impl<L, S, D> CredentialStore for DartCredentialStore<L, S, D>
where
    L: Fn(String) -> DartFnFuture<anyhow::Result<Option<String>>> + Send + Sync + 'static,
    S: Fn(String, String) -> DartFnFuture<anyhow::Result<()>> + Send + Sync + 'static,
    D: Fn(String) -> DartFnFuture<anyhow::Result<()>> + Send + Sync + 'static,
{
    async fn load(&self, key: &str) -> Result<Option<Credentials>, StoreError> {
        match (self.load)(key.to_owned()).await {
            Ok(v) => Ok(v.map(Credentials::new)),
            Err(e) => Err(store_error("load", key, &e)),
        }
    }

    async fn save(&self, key: &str, credentials: &Credentials) -> Result<(), StoreError> {
        (self.save)(key.to_owned(), credentials.expose().to_owned())
            .await
            .map_err(|e| store_error("save", key, &e))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        (self.delete)(key.to_owned())
            .await
            .map_err(|e| store_error("delete", key, &e))
    }
}
