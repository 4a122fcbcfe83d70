//! The one error type the Dart side sees, mirrored from the core's `tokenkeeper::Error` (what the
//! caller should do) plus decode errors from `inspect`. The kinds are the same as on every other
//! platform (Kotlin `TokenKeeperException`, Swift and Python `TokenKeeperError`).
//!
//! Where Dart differs: the error is one class with a `kind` to switch on and plain fields,
//! instead of one subclass per kind, because flutter_rust_bridge generates sealed classes for
//! enums with data only through freezed and build_runner, which this package does not use. The
//! mapping from the core lives here and only here.

use chrono::{DateTime, Utc};

/// What the caller should do about a [`TokenKeeperError`] (the same kinds on every platform).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No valid token right now; the session keeps retrying by itself (network, timeout, HTTP
    /// 5xx/429). `retryAfter` says when the next attempt is due, when known. Show a
    /// "reconnecting" state; do not loop yourself.
    RetryLater,
    /// The user must sign in again (HTTP 401, OAuth `invalid_grant`). Retries stopped: sign in,
    /// then `setCredentials()` (or `renewToken()`).
    ReauthRequired,
    /// Access is forbidden or was revoked (HTTP 403: banned, not the owner; stream ended: 404,
    /// 410). Retries stopped: leave the channel and tell the user.
    Forbidden,
    /// A setting is wrong; `setting` names it. Retries stopped: fix the configuration.
    Misconfigured,
    /// A token could not be decoded (`inspect`: empty, unknown format, truncated, altered).
    InvalidToken,
    /// The engine or server rejected freshly issued tokens twice in a row (often a wrong App ID,
    /// certificate, channel or uid on one side). Retries stopped; `renewToken()` tries again.
    Rejected,
    /// The token is valid only from `startsAt` (a scheduled meeting); the session holds it and
    /// becomes valid by itself.
    NotYetValid,
    /// The credentials could not be read from your credential store and no others are held. The
    /// session retries; check the keychain/keystore.
    StoreFailed,
    /// The session or its keeper was closed; open a new one to continue.
    Closed,
    /// A callback of yours failed in a way the SDK could not classify. Present for parity with
    /// the other platforms: the Dart API reports exceptions from your token source as
    /// `retryLater` and from your sink as `applyFailed` events (both retried) instead.
    HostCallback,
    /// A bug in tokenkeeper. Please report it with the message.
    Internal,
}

/// A typed tokenkeeper error, thrown in Dart as an exception:
///
/// ```dart
/// try {
///   final issued = await session.token();
/// } on TokenKeeperError catch (e) {
///   switch (e.kind) {
///     case ErrorKind.reauthRequired: session.setCredentials(credentials: await signInAgain());
///     case ErrorKind.retryLater: showReconnecting(e.retryAfter);
///     case ErrorKind.forbidden: leaveChannel(e.message);
///     default: showError(e.message);
///   }
/// }
/// ```
///
/// The message names the cause and the fix and never contains a token or secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TokenKeeperError {
    /// What to do.
    pub kind: ErrorKind,
    /// Cause and fix, in plain words (no secrets).
    pub message: String,
    /// `retryLater`: time until the next automatic attempt (or the server's `Retry-After`),
    /// when known.
    pub retry_after: Option<chrono::Duration>,
    /// `misconfigured`: the setting to fix (e.g. `renewLead`, `client_secret`, `jsonBody`).
    pub setting: Option<String>,
    /// `notYetValid`: when the held token becomes valid.
    pub starts_at: Option<DateTime<Utc>>,
}

impl TokenKeeperError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
            setting: None,
            starts_at: None,
        }
    }

    pub(crate) fn misconfigured(setting: &str, message: impl Into<String>) -> Self {
        Self {
            setting: Some(setting.to_owned()),
            ..Self::new(ErrorKind::Misconfigured, message)
        }
    }
}

impl From<tokenkeeper::Error> for TokenKeeperError {
    fn from(error: tokenkeeper::Error) -> Self {
        use tokenkeeper::Error as E;
        let message = error.to_string();
        match error {
            E::RetryLater { retry_after, .. } => Self {
                retry_after: retry_after.and_then(|d| chrono::Duration::from_std(d).ok()),
                ..Self::new(ErrorKind::RetryLater, message)
            },
            E::ReauthRequired { .. } => Self::new(ErrorKind::ReauthRequired, message),
            E::Forbidden { .. } => Self::new(ErrorKind::Forbidden, message),
            E::Misconfigured { setting, .. } => Self::misconfigured(&setting, message),
            E::Rejected { .. } => Self::new(ErrorKind::Rejected, message),
            E::NotYetValid { starts_at_ms } => Self {
                starts_at: DateTime::from_timestamp_millis(starts_at_ms),
                ..Self::new(ErrorKind::NotYetValid, message)
            },
            E::StoreFailed { .. } => Self::new(ErrorKind::StoreFailed, message),
            E::Closed => Self::new(ErrorKind::Closed, message),
        }
    }
}

impl From<tokenkeeper::formats::FormatError> for TokenKeeperError {
    fn from(error: tokenkeeper::formats::FormatError) -> Self {
        Self::new(ErrorKind::InvalidToken, error.to_string())
    }
}
