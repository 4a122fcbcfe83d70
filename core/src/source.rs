//! The [`TokenSource`] abstraction: where a session gets its tokens from.
//!
//! The lifecycle engine decides *when* to fetch; a source decides *how*. The HTTP and OAuth
//! sources live in `tokenkeeper::sources` (feature `http`); a host app can implement
//! [`TokenSource`] itself and fetch with its own HTTP stack.
//!
//! ```
//! use std::time::Duration;
//! use tokenkeeper::source::{FetchRequest, FetchedToken, SourceError, Token, TokenSource};
//!
//! #[derive(Debug)]
//! struct MyBackend;
//!
//! #[async_trait::async_trait]
//! impl TokenSource for MyBackend {
//!     async fn fetch(&self, request: FetchRequest) -> Result<FetchedToken, SourceError> {
//!         // Call your backend with request.session.channel / .user / .role here.
//!         let token = format!("tok-for-{}", request.session.channel);
//!         Ok(FetchedToken::new(Token::new(token)).with_expires_in(Duration::from_secs(3600)))
//!     }
//! }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

/// An access token (secret). Cheap to clone (shared bytes).
///
/// `Debug` shows at most a 6-character prefix and the length (only the length for secrets
/// shorter than 24 characters); there is deliberately no `Display`.
///
/// ```
/// use tokenkeeper::source::Token;
/// let t = Token::new("007eJxTYBBa0secretsecretsecret");
/// assert_eq!(format!("{t:?}"), "Token(\"007eJx…\", len 30)");
/// assert_eq!(format!("{:?}", Token::new("short")), "Token(len 5)");
/// assert_eq!(t.expose(), "007eJxTYBBa0secretsecretsecret");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<str>);

impl Token {
    /// Wraps a token string.
    pub fn new(token: impl Into<Arc<str>>) -> Self {
        Self(token.into())
    }

    /// The token text, to hand to the RTC engine or put in a header. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the token is empty (an empty token is always refused by the engine).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Formats a redacted view of a secret: a short prefix and the length.
/// Formats a secret for `Debug` the way [`Token`] does, for types outside this crate (the
/// bindings) that hold a token as plain text: `Redacted(&text)` in a hand-written `Debug`.
///
/// ```
/// use tokenkeeper::source::Redacted;
/// assert_eq!(format!("{:?}", Redacted("007eJxTYBBa0secretsecretsecret")), "\"007eJx…\" (len 30)");
/// assert_eq!(format!("{:?}", Redacted("short")), "(len 5)");
/// ```
pub struct Redacted<'a>(pub &'a str);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted(f, "", self.0)
    }
}

pub(crate) fn redacted(f: &mut fmt::Formatter<'_>, name: &str, secret: &str) -> fmt::Result {
    // A 6-character prefix tells formats apart ("007eJx", "04AAAA", "eyJhbG") and reveals
    // nothing of a real token; a short secret shows only its length.
    if secret.chars().count() < 24 {
        return write!(f, "{name}(len {})", secret.len());
    }
    let prefix: String = secret.chars().take(6).collect();
    if name.is_empty() {
        return write!(f, "\"{prefix}…\" (len {})", secret.len());
    }
    write!(f, "{name}(\"{prefix}…\", len {})", secret.len())
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted(f, "Token", &self.0)
    }
}

/// Long-lived credentials a source uses to get tokens (an OAuth refresh token, an API key…):
/// an opaque secret text the source interprets (plain, or JSON of its own).
///
/// Zeroized on drop; `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials(Zeroizing<String>);

impl Credentials {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Zeroizing::new(secret.into()))
    }

    /// The secret text. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials(len {})", self.0.len())
    }
}

/// Why the engine asks for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FetchReason {
    /// First token of the session (first `token()` call, or `prefetch`).
    Initial,
    /// Planned renewal: the current token is still valid but within the renewal lead.
    Scheduled,
    /// The current token already expired, or the host reported `token_expired()`.
    Emergency,
    /// The host asked with `renew_token()`.
    Forced,
    /// A server rejected the current token (`token_rejected()`).
    Rejected,
}

impl FetchReason {
    /// Lower-case name for logs and events: `initial`, `scheduled`, `emergency`, `forced`,
    /// `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::Scheduled => "scheduled",
            Self::Emergency => "emergency",
            Self::Forced => "forced",
            Self::Rejected => "rejected",
        }
    }
}

/// What a session is for: the channel/room and the user, plus any extra parameters the backend
/// needs. Identifies the session in events and logs (contains no secrets).
///
/// ```
/// use tokenkeeper::source::SessionSpec;
/// let spec = SessionSpec::new("live-42", "1001").with_role("publisher").with_param("region", "eu");
/// assert_eq!(spec.to_string(), "live-42/1001");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SessionSpec {
    /// Channel (Agora), room (ZEGO, Digital Samba) or audience the token is for.
    pub channel: String,
    /// User id or account (Agora uid as text, ZEGO user id, JWT subject).
    pub user: String,
    /// Role, e.g. `publisher` / `subscriber`; `None` lets the backend decide.
    pub role: Option<String>,
    /// Extra non-secret parameters passed through to the source.
    pub params: BTreeMap<String, String>,
}

impl SessionSpec {
    /// A spec for `channel` and `user`, no role, no extra parameters.
    pub fn new(channel: impl Into<String>, user: impl Into<String>) -> Self {
        Self {
            channel: channel.into(),
            user: user.into(),
            role: None,
            params: BTreeMap::new(),
        }
    }

    /// Sets the role.
    pub fn with_role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// Adds an extra parameter.
    pub fn with_param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }
}

impl fmt::Display for SessionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.channel, self.user)
    }
}

/// One request from the engine to a [`TokenSource`].
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// Why the token is needed.
    pub reason: FetchReason,
    /// Which session it is for.
    pub session: Arc<SessionSpec>,
    /// 1 for the first attempt, 2 for the first retry after a failure, …
    pub attempt: u32,
    /// The latest credentials: loaded from the store on the first fetch, then the last rotated
    /// ones. `None` when the session has no credentials key or nothing is stored yet.
    pub credentials: Option<Credentials>,
    /// The token being replaced, if any (for backends that renew in place).
    pub previous: Option<Token>,
    /// The engine abandons the fetch after this long (the policy's fetch timeout); a source may
    /// use it for its own HTTP timeout.
    pub timeout: Duration,
}

/// What a source returns: the token plus what it knows about its lifetime.
///
/// Expiry is the **earliest** of: the token's own expiry (decoded from the token by
/// [`crate::formats`]), `expires_at_ms`, and fetch time + `expires_in`. When none is known, the
/// policy's `assumed_lifetime` applies.
#[derive(Clone)]
pub struct FetchedToken {
    /// The access token.
    pub token: Token,
    /// Absolute expiry in the **server's** clock, unix milliseconds (corrected for skew).
    pub expires_at_ms: Option<i64>,
    /// Lifetime relative to the response (e.g. OAuth `expires_in`).
    pub expires_in: Option<Duration>,
    /// When the server issued it, server clock, unix milliseconds.
    pub issued_at_ms: Option<i64>,
    /// The server's current time when it answered (e.g. HTTP `Date`, a `serverTime` field), unix
    /// milliseconds. Used to correct device clock skew; the most trusted time hint.
    pub server_time_ms: Option<i64>,
    /// New long-lived credentials (e.g. a rotated OAuth refresh token). Saved through the
    /// credential store **before** the token is handed out.
    pub rotated: Option<Credentials>,
}

impl FetchedToken {
    /// A token with no lifetime hints (the engine decodes the token itself).
    pub fn new(token: Token) -> Self {
        Self {
            token,
            expires_at_ms: None,
            expires_in: None,
            issued_at_ms: None,
            server_time_ms: None,
            rotated: None,
        }
    }

    /// Sets the relative lifetime.
    pub fn with_expires_in(mut self, expires_in: Duration) -> Self {
        self.expires_in = Some(expires_in);
        self
    }

    /// Sets the absolute expiry (server clock, unix ms).
    pub fn with_expires_at_ms(mut self, unix_ms: i64) -> Self {
        self.expires_at_ms = Some(unix_ms);
        self
    }

    /// Sets the issue time (server clock, unix ms).
    pub fn with_issued_at_ms(mut self, unix_ms: i64) -> Self {
        self.issued_at_ms = Some(unix_ms);
        self
    }

    /// Sets the server's current time (unix ms).
    pub fn with_server_time_ms(mut self, unix_ms: i64) -> Self {
        self.server_time_ms = Some(unix_ms);
        self
    }

    /// Sets rotated credentials.
    pub fn with_rotated(mut self, credentials: Credentials) -> Self {
        self.rotated = Some(credentials);
        self
    }
}

impl fmt::Debug for FetchedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchedToken")
            .field("token", &self.token)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("expires_in", &self.expires_in)
            .field("issued_at_ms", &self.issued_at_ms)
            .field("server_time_ms", &self.server_time_ms)
            .field("rotated", &self.rotated)
            .finish()
    }
}

/// Why a retryable fetch failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryKind {
    /// Connection refused, DNS, TLS, reset…
    Network,
    /// No answer in time.
    Timeout,
    /// HTTP 5xx (the status) or another transient server answer.
    Server(u16),
    /// HTTP 429 or an equivalent quota answer.
    RateLimited,
    /// The source answered but the token was unusable (already expired, expiring within the
    /// renewal lead, or the same token again).
    BadToken,
}

/// A failed fetch, classified by what the engine should do. Messages never contain secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// Transient: retry with backoff (never earlier than `retry_after` when given).
    #[error("token fetch failed, will retry: {message}")]
    RetryLater {
        /// What kind of transient failure.
        kind: RetryKind,
        /// Server-requested wait (HTTP `Retry-After`).
        retry_after: Option<Duration>,
        /// What happened (no secrets).
        message: String,
    },
    /// The user must sign in again (HTTP 401, OAuth `invalid_grant`). Retrying cannot help.
    #[error("re-authentication required: {message}")]
    ReauthRequired {
        /// What happened (no secrets).
        message: String,
    },
    /// The backend refuses to issue this token (HTTP 403: banned user, not the owner…).
    #[error("token refused: {reason}")]
    Forbidden {
        /// Why, as far as the backend said.
        reason: String,
    },
    /// The thing the token was for is gone (stream ended: HTTP 404/410; access revoked).
    #[error("access revoked: {reason}")]
    Revoked {
        /// Why, as far as the backend said.
        reason: String,
    },
    /// The configuration is wrong (OAuth `invalid_client`, wrong secret length, wrong app id).
    #[error("misconfigured `{setting}`: {message}")]
    Misconfigured {
        /// The setting to fix, e.g. `client_secret`, `app_id`.
        setting: String,
        /// What is wrong and how to fix it (no secrets).
        message: String,
    },
}

impl SourceError {
    /// Replaces every occurrence of the given secrets in the error's text with `[redacted]`.
    ///
    /// The engine applies this to every failed fetch with the request's previous token and
    /// credentials, so a source that quotes a backend answer echoing them (a common pattern:
    /// `{"error":"token eyJ… expired"}`) cannot leak them into logs or error text. Empty
    /// secrets are ignored.
    ///
    /// ```
    /// use tokenkeeper::source::SourceError;
    /// let e = SourceError::network("backend said: bad token abc123").redact(&["abc123"]);
    /// assert_eq!(e.to_string(), "token fetch failed, will retry: backend said: bad token [redacted]");
    /// ```
    pub fn redact(mut self, secrets: &[&str]) -> Self {
        let text = match &mut self {
            Self::RetryLater { message, .. }
            | Self::ReauthRequired { message }
            | Self::Misconfigured { message, .. } => message,
            Self::Forbidden { reason } | Self::Revoked { reason } => reason,
        };
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            if text.contains(secret) {
                *text = text.replace(secret, "[redacted]");
            }
        }
        self
    }

    /// A network failure (retryable).
    pub fn network(message: impl Into<String>) -> Self {
        Self::RetryLater {
            kind: RetryKind::Network,
            retry_after: None,
            message: message.into(),
        }
    }

    /// A timeout (retryable).
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::RetryLater {
            kind: RetryKind::Timeout,
            retry_after: None,
            message: message.into(),
        }
    }

    /// Classifies an HTTP error status: 408/425/5xx → retry, 429 → rate limited (retry, honouring
    /// `retry_after`), 401 → re-authenticate, 403 → forbidden, 404/410 → revoked, other 4xx →
    /// misconfigured (`setting` names what to check, e.g. `token_url`).
    ///
    /// `message` goes into logs and error text as it is: it must not hold a token or credential
    /// (quote the backend's error field, not a body that may echo the request).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokenkeeper::source::{RetryKind, SourceError};
    /// let e = SourceError::from_http_status(429, Some(Duration::from_secs(7)), "token_url", "quota");
    /// assert!(matches!(e, SourceError::RetryLater { kind: RetryKind::RateLimited, .. }));
    /// assert!(matches!(SourceError::from_http_status(401, None, "", "x"), SourceError::ReauthRequired { .. }));
    /// ```
    pub fn from_http_status(
        status: u16,
        retry_after: Option<Duration>,
        setting: &str,
        message: impl Into<String>,
    ) -> Self {
        let message = format!("HTTP {status}: {}", message.into());
        match status {
            429 => Self::RetryLater {
                kind: RetryKind::RateLimited,
                retry_after,
                message,
            },
            408 | 425 => Self::RetryLater {
                kind: RetryKind::Timeout,
                retry_after,
                message,
            },
            500..=599 => Self::RetryLater {
                kind: RetryKind::Server(status),
                retry_after,
                message,
            },
            401 => Self::ReauthRequired { message },
            403 => Self::Forbidden { reason: message },
            404 | 410 => Self::Revoked { reason: message },
            _ => Self::Misconfigured {
                setting: setting.to_owned(),
                message,
            },
        }
    }

    /// Whether the engine will retry after this error.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RetryLater { .. })
    }

    /// The server-requested wait, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RetryLater { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Where a session gets its tokens. Implemented by the built-in HTTP/OAuth sources and by hosts.
///
/// The engine calls `fetch` at most once at a time per session, with a timeout; a fetch that
/// never returns is dropped after the policy's fetch timeout.
#[async_trait::async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// Fetches a fresh token for `request.session`.
    async fn fetch(&self, request: FetchRequest) -> Result<FetchedToken, SourceError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_secrets() {
        let t = Token::new("abcdefSECRETSECRET");
        let c = Credentials::new("refresh-SECRET");
        let f = FetchedToken::new(t.clone()).with_rotated(c.clone());
        let all = format!("{t:?} {c:?} {f:?}");
        assert!(!all.contains("SECRET"), "{all}");
        assert!(all.contains("len 18"), "{all}");
    }

    #[test]
    fn http_status_classification_matches_what_to_do() {
        let class = |s| SourceError::from_http_status(s, None, "app_id", "m");
        assert!(class(503).is_retryable());
        assert!(class(408).is_retryable());
        assert!(matches!(class(403), SourceError::Forbidden { .. }));
        assert!(matches!(class(404), SourceError::Revoked { .. }));
        assert!(
            matches!(class(400), SourceError::Misconfigured { ref setting, .. } if setting == "app_id")
        );
    }
}
