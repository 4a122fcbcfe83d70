//! The public error a session returns: small, flat, and named for what the caller should do.
//!
//! Sources report a detailed [`SourceError`]; the session maps it
//! here in one place ([`Error::from_source`]). No variant ever carries token or secret material.

use std::time::Duration;

use crate::source::SourceError;

/// What went wrong, as "what to do".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No valid token right now; the session keeps retrying by itself (network, timeout, 5xx,
    /// 429, an unusable token from the source). `retry_after` is when the next attempt is due.
    #[error("no valid token yet ({message}); retrying automatically")]
    RetryLater {
        /// Time until the next automatic attempt, when known.
        retry_after: Option<Duration>,
        /// What failed (no secrets).
        message: String,
    },
    /// The user must sign in again (401, OAuth `invalid_grant`). Retries stopped; call
    /// `Session::renew_token()` after re-authenticating.
    #[error("re-authentication required: {message}")]
    ReauthRequired {
        /// What the backend said (no secrets).
        message: String,
    },
    /// Access is forbidden or was revoked (403, stream ended). Retries stopped; leave the
    /// channel or ask the user.
    #[error("access forbidden or revoked: {reason}")]
    Forbidden {
        /// Why, as far as the backend said.
        reason: String,
    },
    /// Configuration is wrong; fix the named setting. Retries stopped.
    #[error("misconfigured `{setting}`: {message}")]
    Misconfigured {
        /// The setting to fix.
        setting: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The server rejected freshly issued tokens twice in a row; retries stopped (often a wrong
    /// app id/certificate, channel or uid on one side). Call `renew_token()` to try again.
    #[error("server rejected fresh tokens repeatedly: {message}")]
    Rejected {
        /// Context (no secrets).
        message: String,
    },
    /// The token is valid only from `starts_at_ms` (unix ms, device clock) — a scheduled meeting.
    /// The session holds it and becomes valid by itself then.
    #[error("token not valid before unix ms {starts_at_ms}")]
    NotYetValid {
        /// When it becomes valid.
        starts_at_ms: i64,
    },
    /// Rotated credentials could not be saved, so the token that came with them was not handed
    /// out. The session retries; check the credential store (keychain/keystore).
    #[error("could not save rotated credentials: {message}")]
    StoreFailed {
        /// What the store said.
        message: String,
    },
    /// The session (or its keeper) was closed.
    #[error("session closed")]
    Closed,
}

impl Error {
    /// The one mapping from a source's detailed error to the public error.
    pub fn from_source(error: &SourceError) -> Self {
        match error {
            SourceError::RetryLater {
                retry_after,
                message,
                ..
            } => Self::RetryLater {
                retry_after: *retry_after,
                message: message.clone(),
            },
            SourceError::ReauthRequired { message } => Self::ReauthRequired {
                message: message.clone(),
            },
            SourceError::Forbidden { reason } | SourceError::Revoked { reason } => {
                Self::Forbidden {
                    reason: reason.clone(),
                }
            }
            SourceError::Misconfigured { setting, message } => Self::Misconfigured {
                setting: setting.clone(),
                message: message.clone(),
            },
        }
    }

    /// Whether the session stopped retrying because of this error (needs the host to act).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::ReauthRequired { .. }
                | Self::Forbidden { .. }
                | Self::Misconfigured { .. }
                | Self::Rejected { .. }
        )
    }
}
