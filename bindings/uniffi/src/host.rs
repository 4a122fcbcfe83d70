//! What the host app supplies: its own token source and credential store (foreign traits), and
//! the adapters that plug them into the core.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokenkeeper::source as core;
use tokenkeeper::store as core_store;

use crate::error::TokenKeeperError;
use crate::secret::Secret;
use crate::time::unix_ms;

/// Why the SDK asks for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum FetchReason {
    /// First token of the session.
    Initial,
    /// Planned renewal before expiry.
    Scheduled,
    /// The token already expired (or the engine said so).
    Emergency,
    /// The app called `renewToken()`.
    Forced,
    /// A server rejected the current token.
    Rejected,
}

impl From<core::FetchReason> for FetchReason {
    fn from(r: core::FetchReason) -> Self {
        match r {
            core::FetchReason::Initial => Self::Initial,
            core::FetchReason::Scheduled => Self::Scheduled,
            core::FetchReason::Emergency => Self::Emergency,
            core::FetchReason::Forced => Self::Forced,
            core::FetchReason::Rejected => Self::Rejected,
        }
    }
}

/// What a session is for: channel/room, user, role and extra backend parameters (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SessionSpec {
    /// Channel (Agora), room (ZEGO) or audience.
    pub channel: String,
    /// User id or account (Agora uid as text, ZEGO user id).
    pub user: String,
    /// Role such as `publisher`/`subscriber`. Default: none (the backend decides).
    #[uniffi(default = None)]
    pub role: Option<String>,
    /// Extra non-secret parameters passed to the token source. Default: empty.
    #[uniffi(default)]
    pub params: HashMap<String, String>,
}

impl From<SessionSpec> for core::SessionSpec {
    fn from(s: SessionSpec) -> Self {
        Self {
            channel: s.channel,
            user: s.user,
            role: s.role,
            params: s.params.into_iter().collect(),
        }
    }
}

impl From<&core::SessionSpec> for SessionSpec {
    fn from(s: &core::SessionSpec) -> Self {
        Self {
            channel: s.channel.clone(),
            user: s.user.clone(),
            role: s.role.clone(),
            params: s
                .params
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// One request from the SDK to a host [`TokenSource`]. Safe to log: secrets are [`Secret`]s.
#[derive(Debug, Clone, uniffi::Record)]
pub struct FetchRequest {
    /// Why the token is needed.
    pub reason: FetchReason,
    /// Which session it is for.
    pub session: SessionSpec,
    /// 1 for the first attempt, 2 for the first retry, …
    pub attempt: u32,
    /// The stored credentials (e.g. a refresh token) for this session, if any.
    pub credentials: Option<Arc<Secret>>,
    /// The token being replaced, if any.
    pub previous_token: Option<Arc<Secret>>,
    /// The SDK abandons the fetch after this long; use it as your HTTP timeout.
    pub timeout: Duration,
}

impl From<core::FetchRequest> for FetchRequest {
    fn from(r: core::FetchRequest) -> Self {
        Self {
            reason: r.reason.into(),
            session: r.session.as_ref().into(),
            attempt: r.attempt,
            credentials: r.credentials.map(|c| Secret::wrap(c.expose())),
            previous_token: r.previous.map(|t| Secret::wrap(t.expose())),
            timeout: r.timeout,
        }
    }
}

/// A token returned by a host [`TokenSource`], with what the backend said about its lifetime.
/// Safe to log: secrets are [`Secret`]s.
///
/// Expiry is the earliest of the token's own expiry (decoded by the SDK), `expires_at` and
/// `expires_in` after the response. All hints default to none.
#[derive(Debug, Clone, uniffi::Record)]
pub struct FetchedToken {
    /// The access token.
    pub token: Arc<Secret>,
    /// Absolute expiry, server clock.
    #[uniffi(default = None)]
    pub expires_at: Option<SystemTime>,
    /// Lifetime from the response (OAuth `expires_in`).
    #[uniffi(default = None)]
    pub expires_in: Option<Duration>,
    /// Issue time, server clock.
    #[uniffi(default = None)]
    pub issued_at: Option<SystemTime>,
    /// The server's current time (HTTP `Date`, a `serverTime` field); corrects device clock
    /// skew.
    #[uniffi(default = None)]
    pub server_time: Option<SystemTime>,
    /// New long-lived credentials (a rotated refresh token), saved to the credential store
    /// before the token is handed out.
    #[uniffi(default = None)]
    pub rotated_credentials: Option<Arc<Secret>>,
}

impl From<FetchedToken> for core::FetchedToken {
    fn from(t: FetchedToken) -> Self {
        Self {
            token: t.token.to_token(),
            expires_at_ms: t.expires_at.map(unix_ms),
            expires_in: t.expires_in,
            issued_at_ms: t.issued_at.map(unix_ms),
            server_time_ms: t.server_time.map(unix_ms),
            rotated: t.rotated_credentials.map(|c| c.to_credentials()),
        }
    }
}

/// A token source implemented by the host app: fetch the token from your backend with your own
/// HTTP stack and auth (OkHttp, URLSession, …).
///
/// Throw [`TokenKeeperError`] to say what happened: `RetryLater` (the SDK retries with backoff),
/// `ReauthRequired` or `Forbidden` (the session stops and reports it), `Misconfigured`.
/// [`error_for_http_status`](crate::error_for_http_status) classifies an HTTP status the way the built-in source does. Any
/// other exception counts as a temporary failure.
///
/// The SDK calls `fetch` at most once at a time per session.
#[uniffi::export(foreign)]
#[async_trait::async_trait]
pub trait TokenSource: Send + Sync {
    /// Fetches a fresh token for `request.session`.
    async fn fetch(&self, request: FetchRequest) -> Result<FetchedToken, TokenKeeperError>;
}

/// Plugs a host [`TokenSource`] into the core.
pub(crate) struct HostSource(pub(crate) Arc<dyn TokenSource>);

impl fmt::Debug for HostSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HostSource")
    }
}

#[async_trait::async_trait]
impl core::TokenSource for HostSource {
    async fn fetch(
        &self,
        request: core::FetchRequest,
    ) -> Result<core::FetchedToken, core::SourceError> {
        Ok(self.0.fetch(request.into()).await?.into())
    }
}

/// Persistent storage for long-lived credentials (e.g. a refresh token), implemented by the host
/// over the Android Keystore / iOS Keychain. Keys are non-secret names; values are [`Secret`]s
/// (store `value.expose()`, wrap what you load back in a `Secret`).
///
/// Called from SDK worker threads (never the UI thread). A thrown error means the operation did
/// not happen: a failed `save` stops the SDK from handing out the token that came with the
/// rotated credentials.
#[uniffi::export(foreign)]
pub trait CredentialStore: Send + Sync {
    /// The value stored under `key`, or null when there is none.
    fn load(&self, key: String) -> Result<Option<Arc<Secret>>, TokenKeeperError>;
    /// Stores (replaces) `value` under `key`.
    fn save(&self, key: String, value: Arc<Secret>) -> Result<(), TokenKeeperError>;
    /// Removes `key` (no error when absent).
    fn delete(&self, key: String) -> Result<(), TokenKeeperError>;
}

/// Plugs a host [`CredentialStore`] into the core. The host's calls are blocking (Keychain and
/// Keystore APIs are synchronous), so they run on the runtime's blocking pool.
pub(crate) struct HostStore(pub(crate) Arc<dyn CredentialStore>);

impl fmt::Debug for HostStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HostStore")
    }
}

impl HostStore {
    async fn call<T: Send + 'static>(
        &self,
        op: impl FnOnce(&dyn CredentialStore) -> Result<T, TokenKeeperError> + Send + 'static,
    ) -> Result<T, core_store::StoreError> {
        let host = Arc::clone(&self.0);
        match tokio::task::spawn_blocking(move || op(host.as_ref())).await {
            Ok(result) => result.map_err(|e| core_store::StoreError::new(e.to_string())),
            Err(_) => Err(core_store::StoreError::new(
                "the host credential store panicked or was cancelled",
            )),
        }
    }
}

#[async_trait::async_trait]
impl core_store::CredentialStore for HostStore {
    async fn load(&self, key: &str) -> Result<Option<core::Credentials>, core_store::StoreError> {
        let key = key.to_owned();
        Ok(self
            .call(move |s| s.load(key))
            .await?
            .map(|secret| secret.to_credentials()))
    }

    async fn save(
        &self,
        key: &str,
        credentials: &core::Credentials,
    ) -> Result<(), core_store::StoreError> {
        let (key, value) = (key.to_owned(), Secret::wrap(credentials.expose()));
        self.call(move |s| s.save(key, value)).await
    }

    async fn delete(&self, key: &str) -> Result<(), core_store::StoreError> {
        let key = key.to_owned();
        self.call(move |s| s.delete(key)).await
    }
}

/// The engine's "renew token" call, implemented by the host: Agora
/// `engine.renewToken(token.token.expose())`, ZEGO `engine.renewToken(roomID, token)`, a
/// WebSocket re-auth message. The session calls it once for every token after the one the app
/// joined with, in order, never with an expired token, from an SDK thread (one call at a time).
///
/// Throw to say the engine did not take the token: it is retried, and a fresh token the engine
/// keeps refusing is treated as rejected (a new one is fetched). A call that blocks longer than
/// the policy's fetch timeout counts as failed.
#[uniffi::export(foreign)]
pub trait TokenSink: Send + Sync {
    /// Hands `token` to the engine.
    ///
    /// # Errors
    /// Whatever the host throws: the apply is retried.
    fn apply(&self, token: crate::keeper::IssuedToken) -> Result<(), TokenKeeperError>;
}

/// Plugs a host [`TokenSink`] into the core. The host's call may block (engines are
/// synchronous), so it runs on the runtime's blocking pool.
pub(crate) struct HostSink(pub(crate) Arc<dyn TokenSink>);

#[async_trait::async_trait]
impl tokenkeeper::lifecycle::TokenSink for HostSink {
    async fn apply(
        &self,
        token: &tokenkeeper::lifecycle::IssuedToken,
    ) -> Result<(), tokenkeeper::lifecycle::SinkError> {
        let (host, token) = (Arc::clone(&self.0), token.clone().into());
        match tokio::task::spawn_blocking(move || host.apply(token)).await {
            Ok(result) => result.map_err(|e| tokenkeeper::lifecycle::SinkError::new(e.to_string())),
            Err(_) => Err(tokenkeeper::lifecycle::SinkError::new(
                "the host token sink panicked or was cancelled",
            )),
        }
    }
}
