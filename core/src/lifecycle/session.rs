//! The public session handle. Every method delegates to the shared state; the async ones run on
//! the keeper's runtime, so they can be awaited from any executor.
//!
//! # Which call for which engine callback
//!
//! | engine says | call | returns |
//! |---|---|---|
//! | before joining | [`Session::token`] | a valid token (one fetch shared by all callers) |
//! | "token will expire" (Agora `onTokenPrivilegeWillExpire`, ZEGO `onRoomTokenWillExpire`) | [`Session::renew_token`] | a token newer than the current one: pass it to `renewToken` |
//! | "token expired / request token" (Agora `onRequestToken`) | [`Session::token_expired`] with the token if the engine names it | a fresh token: pass it to `renewToken` |
//! | a server refused the token (WebSocket close 4001, HTTP 401 from an SFU) | [`Session::token_rejected`] with the token | a fresh token |
//! | the user signed in again | [`Session::set_credentials`] | — (a session stopped for re-authentication resumes) |
//!
//! **With a sink** ([`SessionConfig::with_sink`]) the session hands every renewed token to the
//! engine itself, and the engine's callbacks become notifications that return at once:
//!
//! | engine says | call |
//! |---|---|
//! | before joining | `engine.join(session.token().await?)` (the only token the app ever passes) |
//! | "token will expire" | [`Session::on_token_will_expire`] |
//! | "token expired / request token" | [`Session::on_token_expired`] |
//! | a server refused the token | [`Session::on_token_rejected`] |
//!
//! The three calls that return a token wait like `token()`: across failed attempts, up to
//! [`Policy::token_wait`](super::Policy::token_wait) (30 s), and return at once on a fatal error
//! or close. A report naming a token that is no longer current (a late callback about the
//! previous token) changes nothing and returns the current token.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::event::{Counters, EventListener, EventStream, ListenerId, SessionState, Status};
use super::policy::Policy;
use super::requests::Report;
use super::shared::Shared;
use super::sink::{EngineReport, TokenSink};
use crate::error::Error;
use crate::source::{Credentials, FetchReason, SessionSpec, Token};

/// How to open a session ([`crate::lifecycle::Keeper::open_session`]).
///
/// ```
/// use tokenkeeper::lifecycle::SessionConfig;
/// use tokenkeeper::source::SessionSpec;
/// let config = SessionConfig::new(SessionSpec::new("live-42", "1001")).with_credentials_key("oauth:1001");
/// assert!(!config.prefetch);
/// ```
#[derive(Clone)]
pub struct SessionConfig {
    /// What the session is for.
    pub spec: SessionSpec,
    /// Key of this session's credentials (e.g. a refresh token) in the keeper's credential
    /// store. Sessions naming the same key share one credential state: one refresh at a time,
    /// rotations seen by all. `None`: the session keeps rotated credentials in memory only.
    pub credentials_key: Option<String>,
    /// Overrides the keeper's policy for this session.
    pub policy: Option<Policy>,
    /// Fetch the first token right away instead of on the first `token()` call. Default `false`.
    pub prefetch: bool,
    /// Where every renewed token goes (the engine's "renew token" call). With a sink the app
    /// joins with [`Session::token`] and never forwards a token again: see [`TokenSink`].
    /// Default: none (the app forwards tokens itself).
    pub sink: Option<Arc<dyn TokenSink>>,
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("spec", &self.spec)
            .field("credentials_key", &self.credentials_key)
            .field("policy", &self.policy)
            .field("prefetch", &self.prefetch)
            .field("sink", &self.sink.is_some())
            .finish()
    }
}

impl SessionConfig {
    /// A config for `spec` with the keeper's policy, no credentials key, no prefetch.
    pub fn new(spec: SessionSpec) -> Self {
        Self {
            spec,
            credentials_key: None,
            policy: None,
            prefetch: false,
            sink: None,
        }
    }

    /// Sets the credentials key.
    pub fn with_credentials_key(mut self, key: impl Into<String>) -> Self {
        self.credentials_key = Some(key.into());
        self
    }

    /// Sets a per-session policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Fetches the first token at once.
    pub fn with_prefetch(mut self, prefetch: bool) -> Self {
        self.prefetch = prefetch;
        self
    }

    /// Hands every renewed token to `sink` (see [`SessionConfig::sink`]).
    pub fn with_sink(mut self, sink: Arc<dyn TokenSink>) -> Self {
        self.sink = Some(sink);
        self
    }
}

/// A token the session accepted, with what the session knows about it. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The token (redacted in `Debug`).
    pub token: Token,
    /// When it expires, as the device's wall clock read when it arrived (unix ms, corrected for
    /// server clock skew). The session itself times expiry on a clock that counts sleep and
    /// never jumps, so a later change of the device clock does not move the real expiry.
    pub expires_at_ms: i64,
    /// When the session received it (device wall clock, unix ms).
    pub received_at_ms: i64,
    /// Why it was fetched.
    pub reason: FetchReason,
}

/// A handle to one session. Cheap to clone; the session closes when [`Session::close`] is called,
/// when the last handle is dropped, or when its keeper shuts down.
///
/// ```no_run
/// # async fn demo(keeper: &tokenkeeper::lifecycle::Keeper, source: std::sync::Arc<dyn tokenkeeper::source::TokenSource>) -> Result<(), tokenkeeper::Error> {
/// use tokenkeeper::lifecycle::SessionConfig;
/// use tokenkeeper::source::SessionSpec;
///
/// let session = keeper.open_session(SessionConfig::new(SessionSpec::new("live-42", "1001")), source);
/// let first = session.token().await?;          // fetches on first use
/// // engine.join_channel(first.token.expose(), …);
/// // engine "will expire"  → engine.renew_token(session.renew_token().await?.token.expose())
/// // engine "request token" → engine.renew_token(session.token_expired(None).await?.token.expose())
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Session {
    handle: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.handle.shared.id)
            .field("spec", &self.handle.shared.spec)
            .field("state", &self.state())
            .finish()
    }
}

/// Aborts a task on the keeper's runtime when the caller stops waiting for it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            handle: Arc::new(Handle { shared }),
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Runs `call` on the keeper's runtime: awaitable from any executor, not just tokio.
    async fn on_runtime<F, Fut>(&self, call: F) -> Result<IssuedToken, Error>
    where
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = Result<IssuedToken, Error>> + Send + 'static,
    {
        let mut task = AbortOnDrop(self.shared().runtime.spawn(call(self.shared().clone())));
        match (&mut task.0).await {
            Ok(result) => result,
            Err(_) => Err(Error::Closed),
        }
    }

    /// A valid token: the cached one if still valid, otherwise waits for one. Concurrent callers
    /// share one fetch; a failed attempt does not end the wait, since the session retries by
    /// itself: `token()` returns as soon as a valid token arrives, a fatal error occurs or the
    /// session closes, and at the latest after [`Policy::token_wait`] (default 30 s).
    ///
    /// ```no_run
    /// # async fn demo(session: &tokenkeeper::lifecycle::Session) {
    /// // A cold session whose first two fetches fail: returns the third fetch's token.
    /// match session.token().await {
    ///     Ok(issued) => { /* engine.join_channel(issued.token.expose(), …) */ }
    ///     Err(tokenkeeper::Error::RetryLater { .. }) => { /* still no token after 30 s */ }
    ///     Err(fatal) => { /* re-auth, revoked, misconfigured, closed */ let _ = fatal; }
    /// }
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::RetryLater`] (carrying the last failure) when no valid token arrived within
    /// [`Policy::token_wait`], [`Error::StoreFailed`] when the credentials could not be loaded,
    /// [`Error::NotYetValid`] for a held scheduled token, a fatal error after
    /// re-auth/revocation/misconfiguration/repeated rejection (at once), [`Error::Closed`].
    pub async fn token(&self) -> Result<IssuedToken, Error> {
        let token = match self.current() {
            Some(t) => t,
            None => self.on_runtime(|s| async move { s.token().await }).await?,
        };
        // With a sink, this is the token the app joins with: the engine holds it.
        self.shared().engine_joined(&token);
        Ok(token)
    }

    /// The cached token if it is valid now; never blocks, never fetches.
    #[inline]
    pub fn current(&self) -> Option<IssuedToken> {
        self.shared().current()
    }

    /// Renews now (the engine's "token will expire" callback) and returns a token newer than the
    /// one current at the call, waiting like [`Session::token`]. Shares a renewal already in
    /// flight, never goes below a server's pending `Retry-After`, and clears a fatal state
    /// (call it after fixing what the error named).
    ///
    /// # Errors
    /// As [`Session::token`]; [`Error::NotYetValid`] when the renewal is a token that starts
    /// later (the current one is kept until then).
    pub async fn renew_token(&self) -> Result<IssuedToken, Error> {
        self.on_runtime(|s| async move { s.renew().await }).await
    }

    /// The engine reported a token expired ("request token"): the token is dropped and a fresh
    /// one fetched at once, waiting like [`Session::token`]. `token`: the token the engine
    /// reports about, if it says; a report about a token that is no longer current (a late
    /// callback) is ignored and returns the current token.
    ///
    /// An engine that reports freshly issued tokens expired twice in a row stops the session
    /// with [`Error::Rejected`] instead of fetching in a loop.
    ///
    /// # Errors
    /// As [`Session::token`].
    pub async fn token_expired(&self, token: Option<&str>) -> Result<IssuedToken, Error> {
        let about = token.map(str::to_owned);
        self.on_runtime(|s| async move { s.report(Report::Expired, about.as_deref()).await })
            .await
    }

    /// A server rejected a token: it is dropped and a fresh one fetched at once, waiting like
    /// [`Session::token`]. `token`: the rejected token, if known (a rejection of a token that is
    /// no longer current is ignored). If tokens are rejected within
    /// [`Policy::fresh_rejection_window`] of issue twice in a row, the session stops with
    /// [`Error::Rejected`] instead of looping; a healthy renewal in between resets the count.
    ///
    /// # Errors
    /// As [`Session::token`].
    pub async fn token_rejected(&self, token: Option<&str>) -> Result<IssuedToken, Error> {
        let about = token.map(str::to_owned);
        self.on_runtime(|s| async move { s.report(Report::Rejected, about.as_deref()).await })
            .await
    }

    /// The engine's "token will expire" callback (Agora `onTokenPrivilegeWillExpire(token)`,
    /// ZEGO `onRoomTokenWillExpire`), as a notification: renews unless a fresher token is
    /// already applied or on its way, and returns at once. With a sink the new token reaches the
    /// engine by itself; without one, forward it from an `Issued` listener, or use
    /// [`Session::renew_token`] instead. `token`: the token the engine names, if it does.
    pub fn on_token_will_expire(&self, token: Option<&str>) {
        self.shared().engine_says(EngineReport::WillExpire, token);
    }

    /// The engine's "token expired / request token" callback (Agora `onRequestToken`), as a
    /// notification that returns at once: with a sink, an engine holding an older token than
    /// the session gets the newer one; otherwise the token is dropped and a fresh one fetched
    /// and applied (loop breaker as [`Session::token_expired`]).
    pub fn on_token_expired(&self, token: Option<&str>) {
        self.shared().engine_says(EngineReport::Expired, token);
    }

    /// A server refused a token (a WebSocket close 4001, an SFU's 401), as a notification that
    /// returns at once: like [`Session::on_token_expired`], with the loop breaker of
    /// [`Session::token_rejected`].
    pub fn on_token_rejected(&self, token: Option<&str>) {
        self.shared().engine_says(EngineReport::Rejected, token);
    }

    /// The session's status now (state, current token's expiry, the error that stopped it).
    pub fn status(&self) -> Status {
        self.shared().status_now()
    }

    /// The status now and then each change: what replaying state streams (Kotlin `StateFlow`,
    /// Swift `AsyncStream`, Dart `Stream`) are built on. Ends when the session closes (the last
    /// value is [`SessionState::Closed`]).
    pub fn watch_status(&self) -> tokio::sync::watch::Receiver<Status> {
        self.shared().watch_status()
    }

    /// New credentials for this session's key (the user signed in again): kept at once, saved
    /// to the store in the background, used by the next fetch of every session sharing the key;
    /// sessions stopped with [`Error::ReauthRequired`] resume.
    pub fn set_credentials(&self, credentials: Credentials) {
        let _guard = self.shared().runtime.enter();
        self.shared()
            .credential_slot_or_init()
            .replace(credentials, self.shared().policy.fetch_timeout);
    }

    /// Closes the session: stops its task, cancels an in-flight fetch (one carrying credentials
    /// finishes, so a rotation is kept), ends its streams, forgets its listeners.
    pub fn close(&self) {
        self.shared().close();
    }

    /// A stream of this session's events from now on.
    pub fn subscribe(&self) -> EventStream {
        self.shared().subscribe()
    }

    /// Registers a listener called for each event of this session (on the keeper's event
    /// thread). A listener that captures a `Session` handle keeps the session alive until
    /// [`Session::close`] or keeper shutdown, which also drop the listener.
    pub fn add_listener(&self, listener: Arc<dyn EventListener>) -> ListenerId {
        self.shared().add_listener(listener)
    }

    /// Removes a listener; `false` if it was not registered.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.shared().remove_listener(id)
    }

    /// Waits until every event emitted so far reached the listeners, at most `timeout`
    /// (`false` if a listener is still busy). For tests and orderly shutdown.
    pub fn flush_listeners(&self, timeout: Duration) -> bool {
        self.shared().flush_listeners(timeout)
    }

    /// Counters (fetches, renewals, failures, latency, time without a valid token).
    pub fn counters(&self) -> Counters {
        self.shared().counters()
    }

    /// The current state.
    pub fn state(&self) -> SessionState {
        self.shared().state()
    }

    /// The session's spec.
    pub fn spec(&self) -> &SessionSpec {
        &self.shared().spec
    }

    /// The session's keeper-unique id (as in [`super::Event::session_id`]).
    pub fn id(&self) -> u64 {
        self.shared().id
    }
}
