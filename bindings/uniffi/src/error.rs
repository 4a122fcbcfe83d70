//! The one error type crossing the FFI: flat, each variant saying what the app should do.
//!
//! Core errors are detailed; they are mapped to these variants in one place
//! (the `From` impls below), which is also where
//! the message shown to the app is chosen. Messages never hold a token or a secret.

use std::time::{Duration, SystemTime};

use tokenkeeper::source::{RetryKind, SourceError};

/// What went wrong, phrased as what the app should do about it.
///
/// In Kotlin these are subclasses of `TokenKeeperException`; in Swift cases of
/// `TokenKeeperError`; in Python subclasses of `TokenKeeperError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum TokenKeeperError {
    /// A temporary failure (network, timeout, HTTP 5xx, 429). The session keeps retrying by
    /// itself; a caller that cannot wait may try again after `retry_after` (when known).
    #[error("temporary failure, retry later: {reason}")]
    RetryLater {
        /// What failed, without secrets.
        reason: String,
        /// When the next attempt is due (or the server's `Retry-After`), if known.
        retry_after: Option<Duration>,
    },
    /// The user's credentials are no longer accepted (HTTP 401, OAuth `invalid_grant`): sign the
    /// user in again, then call `setCredentials()` (or `renewToken()`). The session stops
    /// retrying until then.
    #[error("re-authentication required: {reason}")]
    ReauthRequired {
        /// What the backend said, without secrets.
        reason: String,
    },
    /// Access was refused or revoked (HTTP 403, user banned, stream ended: 404/410): leave the
    /// channel. The session stops retrying; `renewToken()` tries again if access may be back.
    #[error("access forbidden: {reason}")]
    Forbidden {
        /// What the backend said, without secrets.
        reason: String,
    },
    /// A setting is wrong (bad URL, wrong client credentials, wrong secret length). The message
    /// names the setting; fix it and create the keeper again.
    #[error("misconfigured: {reason}")]
    Misconfigured {
        /// Which setting is wrong and how to fix it.
        reason: String,
    },
    /// A token could not be decoded or is unusable (malformed, expires before it could be
    /// renewed). Check what the backend returns.
    #[error("invalid token: {reason}")]
    InvalidToken {
        /// What is wrong with the token (never the token itself).
        reason: String,
    },
    /// The backend's fresh tokens were rejected twice in a row by the RTC server: the app id,
    /// certificate, channel or uid differ between the backend and the app. Retries stopped; fix
    /// that, then call `renewToken()`.
    #[error("fresh tokens rejected repeatedly: {reason}")]
    Rejected {
        /// Context, without secrets.
        reason: String,
    },
    /// The token only becomes valid at `starts_at` (a scheduled meeting); the session holds
    /// it and becomes valid by itself then. Wait, or show a countdown.
    #[error("token not valid before {starts_at:?}")]
    NotYetValid {
        /// When the token becomes valid (device clock).
        starts_at: SystemTime,
    },
    /// The credentials could not be read from the credential store (a locked keychain), and no
    /// others are held. The session retries; check the keychain/keystore.
    #[error("could not save rotated credentials: {reason}")]
    StoreFailed {
        /// What the store said.
        reason: String,
    },
    /// The session or keeper was closed; open a new one to continue.
    #[error("closed: {reason}")]
    Closed {
        /// What was closed.
        reason: String,
    },
    /// A host callback (token source, credential store) failed or threw unexpectedly. The
    /// session treats it as temporary and retries.
    #[error("host callback failed: {reason}")]
    HostCallback {
        /// The host's own message.
        reason: String,
    },
    /// A bug in tokenkeeper. Please report it with the message.
    #[error("internal error: {reason}")]
    Internal {
        /// What failed.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for TokenKeeperError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::HostCallback { reason: e.reason }
    }
}

impl From<tokenkeeper::formats::FormatError> for TokenKeeperError {
    fn from(e: tokenkeeper::formats::FormatError) -> Self {
        Self::InvalidToken {
            reason: e.to_string(),
        }
    }
}

impl From<tokenkeeper::error::Error> for TokenKeeperError {
    fn from(e: tokenkeeper::error::Error) -> Self {
        use tokenkeeper::error::Error as E;
        match e {
            E::RetryLater {
                retry_after,
                message,
            } => Self::RetryLater {
                reason: message,
                retry_after,
            },
            E::ReauthRequired { message } => Self::ReauthRequired { reason: message },
            E::Forbidden { reason } => Self::Forbidden { reason },
            E::Misconfigured { setting, message } => Self::Misconfigured {
                reason: format!("`{setting}`: {message}"),
            },
            E::Rejected { message } => Self::Rejected { reason: message },
            E::NotYetValid { starts_at_ms } => Self::NotYetValid {
                starts_at: crate::time::instant(starts_at_ms),
            },
            E::StoreFailed { message } => Self::StoreFailed { reason: message },
            E::Closed => Self::Closed {
                reason: "the session was closed; open a new one".into(),
            },
        }
    }
}

/// What a host token source's error means to the core: the variant the host threw decides
/// whether the session retries (`RetryLater`, unexpected exceptions) or stops.
impl From<TokenKeeperError> for SourceError {
    fn from(e: TokenKeeperError) -> Self {
        match e {
            TokenKeeperError::RetryLater {
                reason,
                retry_after,
            } => Self::RetryLater {
                kind: RetryKind::Network,
                retry_after,
                message: reason,
            },
            TokenKeeperError::ReauthRequired { reason } => Self::ReauthRequired { message: reason },
            TokenKeeperError::Forbidden { reason } => Self::Forbidden { reason },
            TokenKeeperError::Misconfigured { reason } => Self::Misconfigured {
                setting: "token source".into(),
                message: reason,
            },
            TokenKeeperError::InvalidToken { reason } => Self::RetryLater {
                kind: RetryKind::BadToken,
                retry_after: None,
                message: reason,
            },
            TokenKeeperError::Closed { reason } => Self::Revoked { reason },
            TokenKeeperError::Rejected { reason } => Self::Forbidden { reason },
            TokenKeeperError::NotYetValid { starts_at } => Self::RetryLater {
                kind: RetryKind::BadToken,
                retry_after: None,
                message: format!("token not valid before {starts_at:?}"),
            },
            TokenKeeperError::StoreFailed { reason }
            | TokenKeeperError::HostCallback { reason }
            | TokenKeeperError::Internal { reason } => {
                Self::network(format!("host token source failed: {reason}"))
            }
        }
    }
}

/// Classifies an HTTP error status the way the built-in HTTP source does, for host token
/// sources to throw: 408/425/429/5xx → `RetryLater` (with `retry_after`), 401 →
/// `ReauthRequired`, 403 → `Forbidden`, 404/410 → `Forbidden` (revoked), other 4xx →
/// `Misconfigured`.
///
/// # Example (Kotlin)
/// ```kotlin
/// if (!response.isSuccessful) throw errorForHttpStatus(response.code.toUShort(), null, response.message)
/// ```
#[uniffi::export]
pub fn error_for_http_status(
    status: u16,
    retry_after: Option<Duration>,
    message: String,
) -> TokenKeeperError {
    tokenkeeper::error::Error::from_source(&SourceError::from_http_status(
        status,
        retry_after,
        "token source",
        message,
    ))
    .into()
}
