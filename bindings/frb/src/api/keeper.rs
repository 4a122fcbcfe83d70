//! `TokenKeeper` (one per app) and `TokenSession` (one per channel/room/credential).

use std::sync::Arc;

use flutter_rust_bridge::{DartFnFuture, frb};
use tokenkeeper::lifecycle::{Keeper, Session};

use crate::api::config::{RenewalPolicy, SessionOptions};
use crate::api::error::TokenKeeperError;
use crate::api::events::{IssuedToken, SessionCounters, SessionEvent, SessionState};
use crate::api::source::{DartCredentialStore, DartTokenSource, FetchOutcome, TokenRequest};
use crate::events::EventSink;
use crate::frb_generated::StreamSink;

/// Keeps the tokens of all your sessions alive. Create one per app (or per signed-in user) and
/// keep it for the app's life; disposing it closes every session.
///
/// ```dart
/// final keeper = TokenKeeper(policy: const RenewalPolicy());
/// final session = keeper.openSession(
///   options: SessionOptions(channel: 'live-42', user: '1001'),
///   fetch: myBackend.fetchToken, // Future<FetchOutcome> Function(TokenRequest)
/// );
/// final first = await session.token();
/// ```
#[frb(opaque)]
#[derive(Debug)]
pub struct TokenKeeper {
    inner: Keeper,
}

impl TokenKeeper {
    /// A keeper with `policy` (`null`: every default) and no credential store (rotated
    /// credentials stay in memory).
    ///
    /// # Errors
    /// `misconfigured` naming the policy field that is invalid (e.g. a negative duration).
    #[frb(sync)]
    pub fn new(policy: Option<RenewalPolicy>) -> Result<TokenKeeper, TokenKeeperError> {
        Self::build(policy, None)
    }

    /// A keeper whose sessions load and save long-lived credentials (refresh tokens) through
    /// your secure storage. Rotated credentials are saved **before** the token that came with
    /// them is handed out; a failed save (the function throws) is reported as `storeFailed`
    /// and retried.
    ///
    /// `load` returns the stored value or `null`; `save` stores (replaces) it; `delete`
    /// removes it. Exception messages from these functions appear in errors: keep secrets out
    /// of them.
    ///
    /// # Errors
    /// `misconfigured` naming the policy field that is invalid.
    #[frb(sync)]
    pub fn with_credential_store(
        policy: Option<RenewalPolicy>,
        load: impl Fn(String) -> DartFnFuture<anyhow::Result<Option<String>>> + Send + Sync + 'static,
        save: impl Fn(String, String) -> DartFnFuture<anyhow::Result<()>> + Send + Sync + 'static,
        delete: impl Fn(String) -> DartFnFuture<anyhow::Result<()>> + Send + Sync + 'static,
    ) -> Result<TokenKeeper, TokenKeeperError> {
        Self::build(
            policy,
            Some(Arc::new(DartCredentialStore { load, save, delete })),
        )
    }

    fn build(
        policy: Option<RenewalPolicy>,
        store: Option<Arc<dyn tokenkeeper::store::CredentialStore>>,
    ) -> Result<TokenKeeper, TokenKeeperError> {
        let mut builder = Keeper::builder().runtime(crate::runtime::handle());
        if let Some(policy) = policy {
            builder = builder.policy(policy.to_core()?);
        }
        if let Some(store) = store {
            builder = builder.store(store);
        }
        Ok(TokenKeeper {
            inner: builder.build()?,
        })
    }

    /// Opens a session that gets its tokens from `fetch`, your Dart function. Nothing is
    /// fetched until the first `token()` call (or at once with `prefetch: true`).
    ///
    /// `fetch` is called at most once at a time per session, with a timeout
    /// (`RenewalPolicy.fetchTimeout`). Return `FetchOutcome(token: …)` or
    /// `FetchOutcome(failure: …)` — or wrap a function that returns a `FetchedToken` and throws
    /// `TokenSourceException` with `tokenSource(...)`. An exception that escapes it counts as a
    /// network failure and is retried.
    ///
    /// # Errors
    /// `misconfigured` when `options` are invalid (empty channel, bad policy field).
    #[frb(sync)]
    pub fn open_session(
        &self,
        options: SessionOptions,
        fetch: impl Fn(TokenRequest) -> DartFnFuture<anyhow::Result<FetchOutcome>>
        + Send
        + Sync
        + 'static,
    ) -> Result<TokenSession, TokenKeeperError> {
        let config = options.to_core()?;
        let session = self
            .inner
            .open_session(config, Arc::new(DartTokenSource::new(fetch)));
        Ok(TokenSession { inner: session })
    }

    /// Call when the app returns to the foreground (`AppLifecycleState.resumed`): every session
    /// re-checks its deadlines against the wall clock at once and pending backoffs are cut short.
    #[frb(sync)]
    pub fn resumed(&self) {
        self.inner.resumed();
    }

    /// Call when connectivity comes back: pending backoffs are cut short (never below a
    /// server's `Retry-After`).
    #[frb(sync)]
    pub fn network_available(&self) {
        self.inner.network_available();
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

    /// [`TokenKeeper::events`] into any [`EventSink`] (how Rust tests observe what Dart would
    /// receive).
    #[frb(ignore)]
    pub fn events_into(&self, sink: impl EventSink) {
        crate::events::forward(self.inner.subscribe(), sink);
    }
}

/// One token's life: fetches it, renews it before expiry, retries, reports every step.
///
/// Wire it to your RTC engine:
///
/// ```dart
/// // Agora: onTokenPrivilegeWillExpire → renew → engine.renewToken
/// onTokenPrivilegeWillExpire: (connection, token) async {
///   final issued = await session.renewToken();
///   await engine.renewToken(issued.token);
/// },
/// // ZEGO: onRoomTokenWillExpire → renew → engine.renewToken(roomID, token)
/// ```
#[frb(opaque)]
#[derive(Debug)]
pub struct TokenSession {
    inner: Session,
}

impl TokenSession {
    /// A valid token: the cached one if still valid (checked against the wall clock on every
    /// call), otherwise waits for one (concurrent callers share one fetch). Failed attempts do
    /// not end the wait: the session retries by itself, and this returns once a token arrives,
    /// a fatal error occurs, the session closes, or 30 s passed (`RenewalPolicy.tokenWait`).
    ///
    /// # Errors
    /// `retryLater` (no token within the wait limit; carries the last failure), `storeFailed`,
    /// `notYetValid`, a fatal kind at once (`reauthRequired`, `revoked`, `misconfigured`,
    /// `rejected`), `closed`.
    pub async fn token(&self) -> Result<IssuedToken, TokenKeeperError> {
        Ok(self.inner.token().await?.into())
    }

    /// The cached token if it is valid now; never waits, never fetches.
    #[frb(sync)]
    pub fn current(&self) -> Option<IssuedToken> {
        self.inner.current().map(Into::into)
    }

    /// Renews now and returns a token newer than the current one, waiting like `token()` across
    /// failed attempts: call it from the engine's "token will expire" callback. Also clears a
    /// fatal state. Shares an in-flight fetch.
    ///
    /// # Errors
    /// As `token()`.
    pub async fn renew_token(&self) -> Result<IssuedToken, TokenKeeperError> {
        Ok(self.inner.renew_token().await?.into())
    }

    /// The engine reported a token expired (Agora `onRequestToken`, ZEGO token error): drops
    /// it and fetches at once, waiting like `token()`. `token`: the token the engine names, if
    /// it does (a report about a token that is no longer current changes nothing). Two freshly
    /// issued tokens reported expired in a row stop the session with `rejected`.
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
    /// `token`: the rejected token, if known. Two fresh tokens rejected in a row stop the
    /// session with `rejected` instead of looping; a healthy renewal in between resets the count.
    ///
    /// # Errors
    /// As `token()`.
    pub async fn token_rejected(
        &self,
        token: Option<String>,
    ) -> Result<IssuedToken, TokenKeeperError> {
        Ok(self.inner.token_rejected(token.as_deref()).await?.into())
    }

    /// New credentials for this session's key (the user signed in again): used by the next
    /// fetch of every session sharing the key and saved to the credential store; a session
    /// stopped with `reauthRequired` resumes.
    #[frb(sync)]
    pub fn set_credentials(&self, credentials: String) {
        self.inner
            .set_credentials(tokenkeeper::source::Credentials::new(credentials));
    }

    /// Closes the session: stops renewing, cancels an in-flight fetch, ends its event stream.
    #[frb(sync)]
    pub fn close(&self) {
        self.inner.close();
    }

    /// The current state.
    #[frb(sync)]
    pub fn state(&self) -> SessionState {
        self.inner.state().into()
    }

    /// Counters: fetches, renewals, failures, latency, time without a valid token.
    #[frb(sync)]
    pub fn counters(&self) -> SessionCounters {
        self.inner.counters().into()
    }

    /// The keeper-unique id (as in `SessionEvent.sessionId`).
    #[frb(sync)]
    pub fn id(&self) -> u64 {
        self.inner.id()
    }

    /// The channel or room.
    #[frb(sync)]
    pub fn channel(&self) -> String {
        self.inner.spec().channel.clone()
    }

    /// The user.
    #[frb(sync)]
    pub fn user(&self) -> String {
        self.inner.spec().user.clone()
    }

    /// This session's events from now on. The stream ends when the session closes.
    pub fn events(&self, sink: StreamSink<SessionEvent>) {
        self.events_into(sink);
    }

    /// [`TokenSession::events`] into any [`EventSink`] (how Rust tests observe what Dart would
    /// receive).
    #[frb(ignore)]
    pub fn events_into(&self, sink: impl EventSink) {
        crate::events::forward(self.inner.subscribe(), sink);
    }
}
