//! The two objects apps hold: [`Keeper`] (one per app) and [`Session`] (one per token).
//! Every method is a one-line delegate to the core; async ones run on the SDK runtime.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use tokenkeeper::lifecycle as core;

use crate::config::{Policy, SessionConfig};
use crate::error::TokenKeeperError;
use crate::events::{
    Counters, EventListener, EventSubscription, HostListener, ListenerRegistration, ListenerTarget,
    SessionState, SessionStatus, StatusSubscription,
};
use crate::host::{
    CredentialStore, FetchReason, HostSink, HostSource, HostStore, SessionSpec, TokenSink,
    TokenSource,
};
use crate::http::HttpSourceConfig;
use crate::runtime;
use crate::secret::Secret;
use crate::time::instant;

/// A token the session accepted. Safe to log: the token is a [`Secret`]. Two issued tokens are
/// equal when all their fields are.
//
// Eq and Hash are exported because Swift's generator drops `Equatable`/`Hashable` from records
// that hold an object (the `Secret`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, uniffi::Record)]
#[uniffi::export(Eq, Hash)]
pub struct IssuedToken {
    /// The token to hand to the RTC engine: `token.expose()`.
    pub token: Arc<Secret>,
    /// When it expires (device clock, corrected for server clock skew).
    pub expires_at: SystemTime,
    /// When the session received it (device clock).
    pub received_at: SystemTime,
    /// Why it was fetched.
    pub reason: FetchReason,
}

impl From<core::IssuedToken> for IssuedToken {
    fn from(t: core::IssuedToken) -> Self {
        Self {
            token: Secret::wrap(t.token.expose()),
            expires_at: instant(t.expires_at_ms),
            received_at: instant(t.received_at_ms),
            reason: t.reason.into(),
        }
    }
}

fn issued(
    r: Result<core::IssuedToken, tokenkeeper::error::Error>,
) -> Result<IssuedToken, TokenKeeperError> {
    r.map(Into::into).map_err(Into::into)
}

/// One per app: opens sessions and takes app-wide signals (resumed, network back).
///
/// # Example (Kotlin)
/// ```kotlin
/// val keeper = Keeper(Policy(renewLead = Duration.ofSeconds(60)), credentialStore = KeystoreStore(context))
/// val session = keeper.openSession(
///     SessionConfig(SessionSpec("live-42", "1001")), MyBackendSource(),
///     sink = tokenSink { engine.renewToken(it.token.expose()) })
/// engine.joinChannel(session.token().token.expose(), "live-42", 1001, options)
/// ```
#[derive(uniffi::Object)]
pub struct Keeper {
    inner: core::Keeper,
}

impl fmt::Debug for Keeper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

#[uniffi::export]
impl Keeper {
    /// Creates a keeper. `policy`: the default for its sessions (default: `Policy()`).
    /// `credential_store`: where rotated credentials are saved and loaded (default: memory only).
    ///
    /// # Errors
    /// [`TokenKeeperError::Internal`] when the SDK runtime cannot start.
    #[uniffi::constructor(default(policy = None, credential_store = None))]
    pub fn new(
        policy: Option<Policy>,
        credential_store: Option<Arc<dyn CredentialStore>>,
    ) -> Result<Arc<Self>, TokenKeeperError> {
        let mut builder = core::Keeper::builder().runtime(runtime::handle()?);
        if let Some(policy) = policy {
            builder = builder.policy(policy.into());
        }
        if let Some(store) = credential_store {
            builder = builder.store(Arc::new(HostStore(store)));
        }
        Ok(Arc::new(Self {
            inner: builder.build()?,
        }))
    }

    /// Opens a session that gets its tokens from the host's `source`. Nothing is fetched before
    /// the first `token()` (unless `config.prefetch`). With a `sink` (the engine's "renew
    /// token" call) every renewed token reaches the engine by itself: the app joins with
    /// `token()` and never forwards a token again.
    #[uniffi::method(default(sink = None))]
    pub fn open_session(
        &self,
        config: SessionConfig,
        source: Arc<dyn TokenSource>,
        sink: Option<Arc<dyn TokenSink>>,
    ) -> Arc<Session> {
        Session::wrap(
            self.inner
                .open_session(with_sink(config, sink), Arc::new(HostSource(source))),
        )
    }

    /// Opens a session that gets its tokens from the built-in HTTP source (your backend's token
    /// endpoint, see [`HttpSourceConfig`]).
    ///
    /// # Errors
    /// [`TokenKeeperError::Misconfigured`] naming the setting (bad URL, placeholder, pointer or
    /// JSON body), or when the library was built without the `http` feature.
    #[uniffi::method(default(sink = None))]
    pub fn open_http_session(
        &self,
        config: SessionConfig,
        http: HttpSourceConfig,
        sink: Option<Arc<dyn TokenSink>>,
    ) -> Result<Arc<Session>, TokenKeeperError> {
        Ok(Session::wrap(self.inner.open_session(
            with_sink(config, sink),
            crate::http::build(http)?,
        )))
    }

    /// The app came to the foreground (or the device woke): sessions re-check their deadlines
    /// at once. Call from `onResume` / `sceneWillEnterForeground`.
    pub fn resumed(&self) {
        self.inner.resumed();
    }

    /// Connectivity came back or changed: pending retries run now, and a fetch stuck on the
    /// old network is retried beside it.
    pub fn network_available(&self) {
        self.inner.network_available();
    }

    /// New credentials for `key` (the user signed in again): saved to the credential store and
    /// used by the next fetch of every session naming the key; sessions stopped with
    /// `ReauthRequired` resume.
    pub fn set_credentials(&self, key: String, credentials: Arc<Secret>) {
        self.inner
            .set_credentials(&key, credentials.to_credentials());
    }

    /// Waits until every event emitted so far reached the listeners, at most `timeout`;
    /// `false` if a listener is still busy. For tests and orderly shutdown.
    pub fn flush_listeners(&self, timeout: std::time::Duration) -> bool {
        self.inner.flush_listeners(timeout)
    }

    /// Closes every session. Also done when the keeper is released.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> u64 {
        self.inner.session_count() as u64
    }

    /// Calls `listener` for every event of every session of this keeper.
    pub fn add_listener(
        self: Arc<Self>,
        listener: Arc<dyn EventListener>,
    ) -> Arc<ListenerRegistration> {
        let id = self.inner.add_listener(Arc::new(HostListener(listener)));
        Arc::new(ListenerRegistration {
            target: ListenerTarget::Keeper(Arc::downgrade(&self)),
            id,
        })
    }

    /// Events of every session from now on.
    pub fn subscribe(&self) -> Arc<EventSubscription> {
        EventSubscription::new(self.inner.subscribe())
    }
}

fn with_sink(config: SessionConfig, sink: Option<Arc<dyn TokenSink>>) -> core::SessionConfig {
    let config: core::SessionConfig = config.into();
    match sink {
        Some(sink) => config.with_sink(Arc::new(HostSink(sink))),
        None => config,
    }
}

impl Keeper {
    pub(crate) fn remove_listener(&self, id: core::ListenerId) -> bool {
        self.inner.remove_listener(id)
    }
}

/// One token's life. `token()` waits for a valid token, `current()` returns the cached one,
/// `renewToken()` forces a renewal (call it from the engine's "token will expire" callback).
/// Closing (or releasing) the session stops its renewals.
#[derive(uniffi::Object)]
pub struct Session {
    inner: core::Session,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl Session {
    fn wrap(inner: core::Session) -> Arc<Self> {
        Arc::new(Self { inner })
    }

    pub(crate) fn remove_listener(&self, id: core::ListenerId) -> bool {
        self.inner.remove_listener(id)
    }
}

#[uniffi::export]
impl Session {
    /// A valid token: the cached one if still valid, otherwise waits for one (concurrent callers
    /// share one fetch). Failed attempts do not end the wait: the session retries by itself, and
    /// this returns once a token arrives, a fatal error occurs, the session closes, or
    /// `Policy.tokenWait` (default 30 s) passed. With a sink, this is the token to join with:
    /// the engine is then taken to hold it.
    ///
    /// # Errors
    /// `RetryLater` (no token within the wait limit; carries the last failure), `StoreFailed`,
    /// `NotYetValid`, at once: `ReauthRequired`, `Forbidden`, `Misconfigured`, `Rejected`;
    /// `Closed`.
    pub async fn token(&self) -> Result<IssuedToken, TokenKeeperError> {
        let s = self.inner.clone();
        runtime::run(async move { issued(s.token().await) }).await
    }

    /// The cached token if it is valid now; never blocks, never fetches.
    pub fn current(&self) -> Option<IssuedToken> {
        self.inner.current().map(Into::into)
    }

    /// Renews now (the engine's "token will expire" callback) and returns a token newer than the
    /// current one, waiting like `token()` across failed attempts. Also clears a fatal state.
    ///
    /// # Errors
    /// As [`Session::token`].
    pub async fn renew_token(&self) -> Result<IssuedToken, TokenKeeperError> {
        let s = self.inner.clone();
        runtime::run(async move { issued(s.renew_token().await) }).await
    }

    /// The engine reported a token expired ("request token"): it is dropped and a fresh one
    /// fetched at once; waits like `token()`. `token`: the token the engine names, if it does
    /// (a report about a token that is no longer current changes nothing). Two freshly issued
    /// tokens reported expired in a row stop the session with `Rejected`.
    ///
    /// # Errors
    /// As [`Session::token`].
    #[uniffi::method(default(token = None))]
    pub async fn token_expired(
        &self,
        token: Option<Arc<Secret>>,
    ) -> Result<IssuedToken, TokenKeeperError> {
        let s = self.inner.clone();
        runtime::run(async move {
            let token = token.map(|t| t.expose());
            issued(s.token_expired(token.as_deref()).await)
        })
        .await
    }

    /// A server rejected a token: it is dropped and a fresh one fetched at once; waits like
    /// `token()`. `token`: the rejected token, if known (a rejection of a token that is no
    /// longer current changes nothing). Two fresh tokens rejected in a row stop the session with
    /// `Rejected`; a healthy renewal in between resets the count.
    ///
    /// # Errors
    /// As [`Session::token`].
    #[uniffi::method(default(token = None))]
    pub async fn token_rejected(
        &self,
        token: Option<Arc<Secret>>,
    ) -> Result<IssuedToken, TokenKeeperError> {
        let s = self.inner.clone();
        runtime::run(async move {
            let token = token.map(|t| t.expose());
            issued(s.token_rejected(token.as_deref()).await)
        })
        .await
    }

    /// New credentials for this session's key (the user signed in again): used by the next
    /// fetch of every session sharing the key and saved to the credential store; a session
    /// stopped with `ReauthRequired` resumes.
    pub fn set_credentials(&self, credentials: Arc<Secret>) {
        self.inner.set_credentials(credentials.to_credentials());
    }

    /// The engine's "token will expire" callback, as a notification that returns at once:
    /// renews unless a fresher token is already applied or on its way. `token`: the token the
    /// engine names (Agora passes it), if any.
    #[uniffi::method(default(token = None))]
    pub fn on_token_will_expire(&self, token: Option<String>) {
        self.inner.on_token_will_expire(token.as_deref());
    }

    /// The engine's "token expired / request token" callback, as a notification that returns at
    /// once. With a sink, an engine holding an older token gets the newer one; otherwise the
    /// token is dropped and a fresh one fetched (and applied). `token`: as the engine names it.
    #[uniffi::method(default(token = None))]
    pub fn on_token_expired(&self, token: Option<String>) {
        self.inner.on_token_expired(token.as_deref());
    }

    /// A server refused a token, as a notification that returns at once (like
    /// `onTokenExpired`, with the rejection loop breaker).
    #[uniffi::method(default(token = None))]
    pub fn on_token_rejected(&self, token: Option<String>) {
        self.inner.on_token_rejected(token.as_deref());
    }

    /// The status now: state, the current token's expiry, the error that stopped the session.
    pub fn status(&self) -> SessionStatus {
        self.inner.status().into()
    }

    /// The status now, then each change (Kotlin `status` StateFlow, Swift `statusUpdates`,
    /// Python `tk.status_updates(session)` wrap this).
    pub fn watch_status(&self) -> Arc<StatusSubscription> {
        StatusSubscription::new(self.inner.watch_status())
    }

    /// Closes the session: stops renewals, cancels an in-flight fetch, ends event streams.
    pub fn close(&self) {
        self.inner.close();
    }

    /// The current state.
    pub fn state(&self) -> SessionState {
        self.inner.state().into()
    }

    /// Fetch, renewal and failure counters.
    pub fn counters(&self) -> Counters {
        self.inner.counters().into()
    }

    /// The session's channel, user and role.
    pub fn spec(&self) -> SessionSpec {
        self.inner.spec().into()
    }

    /// The session's keeper-unique id (as in `SessionEvent.sessionId`).
    pub fn id(&self) -> u64 {
        self.inner.id()
    }

    /// Calls `listener` for each event of this session.
    pub fn add_listener(
        self: Arc<Self>,
        listener: Arc<dyn EventListener>,
    ) -> Arc<ListenerRegistration> {
        let id = self.inner.add_listener(Arc::new(HostListener(listener)));
        Arc::new(ListenerRegistration {
            target: ListenerTarget::Session(Arc::downgrade(&self)),
            id,
        })
    }

    /// This session's events from now on.
    pub fn subscribe(&self) -> Arc<EventSubscription> {
        EventSubscription::new(self.inner.subscribe())
    }
}
