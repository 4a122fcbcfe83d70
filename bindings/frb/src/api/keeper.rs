//! `Keeper` (one per app) and `Session` (one per channel/room/credential): the same objects,
//! with the same method names, as on every other platform. Every method is a one-line delegate
//! to the core (`tokenkeeper::lifecycle`).

use std::sync::Arc;

use flutter_rust_bridge::{DartFnFuture, frb};
use tokenkeeper::lifecycle as core;
use tokenkeeper::source::Credentials;

use crate::api::config::{Policy, SessionConfig, SessionSpec};
use crate::api::error::TokenKeeperError;
use crate::api::events::{Counters, IssuedToken, SessionEvent, SessionState, SessionStatus};
use crate::api::http::HttpSourceConfig;
use crate::api::source::{DartCredentialStore, DartTokenSource, FetchOutcome, FetchRequest};
use crate::frb_generated::StreamSink;
use crate::sink::DartTokenSink;
use crate::streams::StreamTarget;

/// Keeps the tokens of all your sessions alive. Create one per app (or per signed-in user) and
/// keep it for the app's life; `shutdown()` (or disposing it) closes every session.
///
/// ```dart
/// final keeper = Keeper(policy: const Policy());
/// final session = keeper.openSession(
///   config: SessionConfig(spec: const SessionSpec(channel: 'live-42', user: '1001')),
///   source: tokenSource(myBackend.fetchToken),
///   sink: (t) => engine.renewToken(t.token),
/// );
/// await engine.joinChannel(token: (await session.token()).token, …);
/// ```
#[frb(opaque)]
#[derive(Debug)]
pub struct Keeper {
    inner: core::Keeper,
}

impl Keeper {
    /// A keeper with `policy` (`null`: every default, see `defaultPolicy()`) and no credential
    /// store (rotated credentials stay in memory).
    ///
    /// # Errors
    /// `misconfigured` naming the policy field that is invalid (e.g. a negative duration).
    #[frb(sync)]
    pub fn new(policy: Option<Policy>) -> Result<Keeper, TokenKeeperError> {
        Self::build(policy, None)
    }

    /// A keeper whose sessions load and save long-lived credentials (refresh tokens) through
    /// your secure storage. Rotated credentials are saved **before** the token that came with
    /// them is handed out; a failed save is reported (`storeFailed` event) and retried.
    ///
    /// `load` returns the stored value or `null`; `save` stores (replaces) it; `delete` removes
    /// it. The first line of an exception they throw appears in events and errors (redacted):
    /// keep secrets out of it.
    ///
    /// # Errors
    /// `misconfigured` naming the policy field that is invalid.
    #[frb(sync)]
    pub fn with_credential_store(
        policy: Option<Policy>,
        load: impl Fn(String) -> DartFnFuture<anyhow::Result<Option<String>>> + Send + Sync + 'static,
        save: impl Fn(String, String) -> DartFnFuture<anyhow::Result<()>> + Send + Sync + 'static,
        delete: impl Fn(String) -> DartFnFuture<anyhow::Result<()>> + Send + Sync + 'static,
    ) -> Result<Keeper, TokenKeeperError> {
        Self::build(
            policy,
            Some(Arc::new(DartCredentialStore { load, save, delete })),
        )
    }

    fn build(
        policy: Option<Policy>,
        store: Option<Arc<dyn tokenkeeper::store::CredentialStore>>,
    ) -> Result<Keeper, TokenKeeperError> {
        let mut builder = core::Keeper::builder().runtime(crate::runtime::handle());
        if let Some(policy) = policy {
            builder = builder.policy(policy.to_core()?);
        }
        if let Some(store) = store {
            builder = builder.store(store);
        }
        Ok(Keeper {
            inner: builder.build()?,
        })
    }

    /// Opens a session that gets its tokens from `source`, your Dart function (wrap one that
    /// returns a `FetchedToken` and throws `TokenSourceException` with `tokenSource(...)`), and
    /// hands every token after the first to `sink`, your engine's "renew token" call. Nothing is
    /// fetched until the first `token()` call (or at once with `prefetch: true`).
    ///
    /// `source` is called at most once at a time per session, with a timeout
    /// (`Policy.fetchTimeout`, 10 s). An exception that escapes it counts as a network failure
    /// and is retried.
    ///
    /// `sink` (Agora `(t) => engine.renewToken(t.token)`, ZEGO
    /// `(t) => engine.renewToken(roomID, t.token)`): join with `token()` and never pass a token
    /// to the engine again. The session calls `sink` once for every later token, in order, never
    /// with an expired one, one call at a time, on the isolate that opened the session. A sink
    /// that throws (synchronously or from its `Future`) is retried (`applyFailed` event), never
    /// an uncaught error; an engine that refuses a fresh token 3 times in a row, over at least
    /// 5 s, gets a new one. A call that takes longer than `Policy.fetchTimeout` counts as failed.
    ///
    /// Where Dart differs: on the other platforms the sink is an optional argument of
    /// `openSession`. flutter_rust_bridge cannot pass an optional Dart function to Rust, so the
    /// session without a sink has its own name, `openSessionWithoutSink`.
    ///
    /// # Errors
    /// `misconfigured` when `config` is invalid (empty channel, bad policy field).
    #[frb(sync)]
    pub fn open_session(
        &self,
        config: SessionConfig,
        source: impl Fn(FetchRequest) -> DartFnFuture<anyhow::Result<FetchOutcome>>
        + Send
        + Sync
        + 'static,
        sink: impl Fn(IssuedToken) -> DartFnFuture<anyhow::Result<()>> + Send + Sync + 'static,
    ) -> Result<Session, TokenKeeperError> {
        let config = config.to_core()?.with_sink(Arc::new(DartTokenSink(sink)));
        Ok(Session::wrap(self.inner.open_session(
            config,
            Arc::new(DartTokenSource::new(source)),
        )))
    }

    /// `openSession` without a sink: you pass every token to your engine yourself (the result of
    /// `renewToken()`, or `issued` events, never both).
    ///
    /// # Errors
    /// As `openSession`.
    #[frb(sync)]
    pub fn open_session_without_sink(
        &self,
        config: SessionConfig,
        source: impl Fn(FetchRequest) -> DartFnFuture<anyhow::Result<FetchOutcome>>
        + Send
        + Sync
        + 'static,
    ) -> Result<Session, TokenKeeperError> {
        Ok(Session::wrap(self.inner.open_session(
            config.to_core()?,
            Arc::new(DartTokenSource::new(source)),
        )))
    }

    /// Opens a session that gets its tokens from the built-in HTTP source (your backend's token
    /// endpoint, see `HttpSourceConfig`; Rust's HTTP client instead of a Dart function) and
    /// hands every token after the first to `sink`, as `openSession` does.
    ///
    /// # Errors
    /// `misconfigured` naming the setting (`channel`, a policy field, `method`, `jsonBody`, the
    /// endpoint URL), or when the library was built without the `http` feature.
    #[frb(sync)]
    pub fn open_http_session(
        &self,
        config: SessionConfig,
        http: HttpSourceConfig,
        sink: impl Fn(IssuedToken) -> DartFnFuture<anyhow::Result<()>> + Send + Sync + 'static,
    ) -> Result<Session, TokenKeeperError> {
        let config = config.to_core()?.with_sink(Arc::new(DartTokenSink(sink)));
        Ok(Session::wrap(
            self.inner
                .open_session(config, crate::api::http::build(&http)?),
        ))
    }

    /// `openHttpSession` without a sink: you pass every token to your engine yourself.
    ///
    /// # Errors
    /// As `openHttpSession`.
    #[frb(sync)]
    pub fn open_http_session_without_sink(
        &self,
        config: SessionConfig,
        http: HttpSourceConfig,
    ) -> Result<Session, TokenKeeperError> {
        Ok(Session::wrap(self.inner.open_session(
            config.to_core()?,
            crate::api::http::build(&http)?,
        )))
    }

    /// Call when the app returns to the foreground (`AppLifecycleState.resumed`; the
    /// `listenToAppLifecycle()` helper does it): every session re-checks its deadlines against
    /// the wall clock at once and pending backoffs are cut short.
    #[frb(sync)]
    pub fn resumed(&self) {
        self.inner.resumed();
    }

    /// Call when connectivity comes back or changes (the `listenToConnectivity()` helper does
    /// it): pending retries run now (never before a server's `Retry-After`), and a fetch stuck
    /// on the old network is retried beside it.
    #[frb(sync)]
    pub fn network_available(&self) {
        self.inner.network_available();
    }

    /// New credentials for `key` (the user signed in again): saved to the credential store and
    /// used by the next fetch of every session naming the key; sessions stopped with
    /// `reauthRequired` resume.
    #[frb(sync)]
    pub fn set_credentials(&self, key: String, credentials: String) {
        self.inner
            .set_credentials(&key, Credentials::new(credentials));
    }

    /// Closes every session and ends every event stream. Also happens when the keeper is
    /// disposed.
    #[frb(sync)]
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    /// Number of open sessions.
    #[frb(sync)]
    pub fn session_count(&self) -> u32 {
        u32::try_from(self.inner.session_count()).unwrap_or(u32::MAX)
    }

    /// Events of every session of this keeper, from now on. The stream ends at `shutdown()`.
    pub fn events(&self, sink: StreamSink<SessionEvent>) {
        self.events_into(sink);
    }

    /// [`Keeper::events`] into any [`StreamTarget`] (how Rust tests observe what Dart would
    /// receive).
    #[frb(ignore)]
    pub fn events_into(&self, target: impl StreamTarget<SessionEvent>) {
        crate::streams::forward_events(self.inner.subscribe(), target);
    }
}

/// One token's life: fetches it, renews it before expiry, retries, hands each new token to your
/// engine (with a sink), reports every step.
///
/// Wire it to your RTC engine (with a sink, every callback is a one-line notification that
/// returns at once; no token is ever passed by your code after joining):
///
/// ```dart
/// // Agora (agora_rtc_engine)
/// engine.registerEventHandler(RtcEngineEventHandler(
///   onTokenPrivilegeWillExpire: (connection, token) => session.onTokenWillExpire(token: token),
///   onRequestToken: (connection) => session.onTokenExpired(),
/// ));
/// // ZEGO (zego_express_engine)
/// ZegoExpressEngine.onRoomTokenWillExpire = (roomID, remainTimeInSecond) =>
///     session.onTokenWillExpire();
/// ```
#[frb(opaque)]
#[derive(Debug)]
pub struct Session {
    inner: core::Session,
}

impl Session {
    fn wrap(inner: core::Session) -> Self {
        Self { inner }
    }

    /// A valid token: the cached one if still valid (checked against the wall clock on every
    /// call), otherwise waits for one (concurrent callers share one fetch). Failed attempts do
    /// not end the wait: the session retries by itself, and this returns once a token arrives,
    /// a fatal error occurs, the session closes, or `Policy.tokenWait` (30 s) passed. With a
    /// sink, this is the token to join with: the engine is then taken to hold it.
    ///
    /// # Errors
    /// `retryLater` (no token within the wait limit; carries the last failure), `storeFailed`,
    /// `notYetValid`, at once: `reauthRequired`, `forbidden`, `misconfigured`, `rejected`;
    /// `closed`.
    pub async fn token(&self) -> Result<IssuedToken, TokenKeeperError> {
        Ok(self.inner.token().await?.into())
    }

    /// The cached token if it is valid now; never waits, never fetches.
    #[frb(sync)]
    pub fn current(&self) -> Option<IssuedToken> {
        self.inner.current().map(Into::into)
    }

    /// Renews now and returns a token newer than the current one, waiting like `token()` across
    /// failed attempts. Shares an in-flight fetch; also clears a fatal state (call it after
    /// fixing what the error named). With a sink the new token reaches the engine by itself.
    ///
    /// # Errors
    /// As `token()`.
    pub async fn renew_token(&self) -> Result<IssuedToken, TokenKeeperError> {
        Ok(self.inner.renew_token().await?.into())
    }

    /// The engine reported a token expired: drops it and fetches at once, waiting like
    /// `token()`. `token`: the token the engine names, if it does (a report about a token that
    /// is no longer current changes nothing and returns the current one). Two freshly issued
    /// tokens reported expired in a row stop the session with `rejected`. With a sink, prefer
    /// `onTokenExpired()`, which returns at once.
    ///
    /// # Errors
    /// As `token()`.
    pub async fn token_expired(
        &self,
        token: Option<String>,
    ) -> Result<IssuedToken, TokenKeeperError> {
        Ok(self.inner.token_expired(token.as_deref()).await?.into())
    }

    /// A server rejected a token: drops it and fetches at once, waiting like `token()`.
    /// `token`: the rejected token, if known (a stale report changes nothing). Two fresh tokens
    /// rejected in a row stop the session with `rejected` instead of looping; a healthy renewal
    /// in between resets the count. With a sink, prefer `onTokenRejected()`.
    ///
    /// # Errors
    /// As `token()`.
    pub async fn token_rejected(
        &self,
        token: Option<String>,
    ) -> Result<IssuedToken, TokenKeeperError> {
        Ok(self.inner.token_rejected(token.as_deref()).await?.into())
    }

    /// The engine's "token will expire" callback (Agora `onTokenPrivilegeWillExpire`, ZEGO
    /// `onRoomTokenWillExpire`), as a notification that returns at once and never throws:
    /// renews unless a fresher token is already applied or on its way, so the callback and the
    /// session's own schedule never fetch twice. `token`: the token the engine names (Agora
    /// passes it), if any. With a sink the new token reaches the engine by itself.
    #[frb(sync)]
    pub fn on_token_will_expire(&self, token: Option<String>) {
        self.inner.on_token_will_expire(token.as_deref());
    }

    /// The engine's "token expired / request token" callback (Agora `onRequestToken`, a ZEGO
    /// room state with `RoomTokenExpireError`), as a notification that returns at once and
    /// never throws. With a sink, an engine holding an older token than the session just gets
    /// the newer one; otherwise the token is dropped and a fresh one fetched (and applied).
    /// `token`: as the engine names it, if it does.
    #[frb(sync)]
    pub fn on_token_expired(&self, token: Option<String>) {
        self.inner.on_token_expired(token.as_deref());
    }

    /// A server refused a token (a WebSocket close, an SFU's 401), as a notification that
    /// returns at once: like `onTokenExpired`, with the loop breaker of `tokenRejected`.
    #[frb(sync)]
    pub fn on_token_rejected(&self, token: Option<String>) {
        self.inner.on_token_rejected(token.as_deref());
    }

    /// New credentials for this session's key (the user signed in again): used by the next
    /// fetch of every session sharing the key and saved to the credential store; a session
    /// stopped with `reauthRequired` resumes.
    #[frb(sync)]
    pub fn set_credentials(&self, credentials: String) {
        self.inner.set_credentials(Credentials::new(credentials));
    }

    /// The status now: state, the current token's expiry, the error that stopped the session.
    #[frb(sync)]
    pub fn status(&self) -> SessionStatus {
        self.inner.status().into()
    }

    /// The status now, then each change: a replaying state stream (bind it to your UI with a
    /// `StreamBuilder`, no initial value needed). Ends after the `closed` status. A failed
    /// session's stream does not end: its status carries the error, and it can resume.
    pub fn watch_status(&self, sink: StreamSink<SessionStatus>) {
        self.watch_status_into(sink);
    }

    /// [`Session::watch_status`] into any [`StreamTarget`] (how Rust tests observe what Dart
    /// would receive).
    #[frb(ignore)]
    pub fn watch_status_into(&self, target: impl StreamTarget<SessionStatus>) {
        crate::streams::forward_status(self.inner.watch_status(), target);
    }

    /// Closes the session: stops renewing, cancels an in-flight fetch, ends its streams.
    #[frb(sync)]
    pub fn close(&self) {
        self.inner.close();
    }

    /// The current state (as in `status()`).
    #[frb(sync)]
    pub fn state(&self) -> SessionState {
        self.inner.state().into()
    }

    /// Counters: fetches, renewals, failures, applies, latency, time without a valid token.
    #[frb(sync)]
    pub fn counters(&self) -> Counters {
        self.inner.counters().into()
    }

    /// The keeper-unique id (as in `SessionEvent.sessionId`).
    #[frb(sync)]
    pub fn id(&self) -> u64 {
        self.inner.id()
    }

    /// The session's channel, user, role and parameters.
    #[frb(sync)]
    pub fn spec(&self) -> SessionSpec {
        self.inner.spec().into()
    }

    /// This session's events from now on. The stream ends after the `closed` event; events
    /// that stop the session (`reauthRequired`, `forbidden`, `failed`) do not end it.
    pub fn events(&self, sink: StreamSink<SessionEvent>) {
        self.events_into(sink);
    }

    /// [`Session::events`] into any [`StreamTarget`] (how Rust tests observe what Dart would
    /// receive).
    #[frb(ignore)]
    pub fn events_into(&self, target: impl StreamTarget<SessionEvent>) {
        crate::streams::forward_events(self.inner.subscribe(), target);
    }
}
