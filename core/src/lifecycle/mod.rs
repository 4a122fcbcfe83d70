//! Keeper, sessions, renewal policy, backoff.
//!
//! A [`Keeper`] (one per app) holds many [`Session`]s (one per channel, room or credential) and
//! takes app-wide signals. Each session owns one token's life:
//!
//! ```text
//! Idle ──token()──▶ Fetching ──ok──▶ Valid ──renew_at──▶ Renewing ──ok──▶ Valid …
//!                      │                 │ expiry / token_expired() / token_rejected()
//!                      │                 ▼
//!                      └──retry──▶   Expired ──emergency fetch──▶ Valid
//! any fetch ──fatal (re-auth, revoked, misconfigured)──▶ Failed      close() ──▶ Closed
//! ```
//!
//! **Time.** The engine reads time and sleeps only through the keeper's [`Clock`]; every
//! deadline is a wall-clock instant, re-checked on each `token()` call and on
//! [`Keeper::resumed`], so a phone that slept two hours never hands out a stale token. With
//! [`crate::clock::ManualClock`] on tokio's paused time, days of renewals run in seconds.
//!
//! **Defaults** are in [`Policy`]: renew 30 s before expiry (up to 3 s earlier at random;
//! half-life for tokens of at most 60 s), 10 s fetch timeout, backoff 1 s doubling to 30 s with
//! jitter. While a token is still valid, retries are paced to fit before its expiry and never
//! scheduled past it (not even for a `Retry-After`), and the lead grows when fetches are slow or
//! failing; without a valid token, backoff and `Retry-After` apply in full (see [`Policy`],
//! "Deadline-aware retry"). `Session::token()` waits up to 30 s across failed attempts.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tokenkeeper::lifecycle::{Keeper, SessionConfig};
//! use tokenkeeper::source::{FetchRequest, FetchedToken, SessionSpec, SourceError, Token, TokenSource};
//!
//! #[derive(Debug)]
//! struct Backend;
//! #[async_trait::async_trait]
//! impl TokenSource for Backend {
//!     async fn fetch(&self, r: FetchRequest) -> Result<FetchedToken, SourceError> {
//!         Ok(FetchedToken::new(Token::new(format!("t-{}-{}", r.session.channel, r.attempt)))
//!             .with_expires_in(Duration::from_secs(600)))
//!     }
//! }
//!
//! # async fn run() -> Result<(), tokenkeeper::Error> {
//! let keeper = Keeper::builder().build()?; // uses the current tokio runtime, or owns one
//! let session = keeper.open_session(SessionConfig::new(SessionSpec::new("live-42", "1001")), Arc::new(Backend));
//! let token = session.token().await?;
//! let mut events = session.subscribe();
//! while let Some(event) = events.recv().await {
//!     // EventKind::Issued → engine.renewToken(session.current()…)
//!     let _ = event;
//! }
//! # Ok(()) }
//! ```

mod event;
mod expiry;
mod policy;
mod session;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::runtime::Handle;

use self::event::EventHub;
pub use self::event::{
    Counters, Event, EventKind, EventListener, EventStream, ListenerId, SessionState,
};
pub use self::policy::Policy;
use self::session::Shared;
pub use self::session::{IssuedToken, Session, SessionConfig};
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::source::TokenSource;
use crate::store::CredentialStore;

/// Builds a [`Keeper`]. Every setting is optional.
#[derive(Default)]
pub struct KeeperBuilder {
    runtime: Option<Handle>,
    clock: Option<Arc<dyn Clock>>,
    policy: Option<Policy>,
    store: Option<Arc<dyn CredentialStore>>,
}

impl fmt::Debug for KeeperBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeeperBuilder")
            .field("runtime", &self.runtime.is_some())
            .field("clock", &self.clock)
            .field("policy", &self.policy)
            .field("store", &self.store)
            .finish()
    }
}

impl KeeperBuilder {
    /// Runs session tasks on this runtime (it needs timers: `enable_time()` or `enable_all()`).
    /// Default: the runtime current at `build()`, or, when
    /// there is none (a call from a foreign thread), a single-threaded runtime the keeper owns on
    /// its own thread (`tokenkeeper`), stopped when the keeper drops.
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// The clock. Default [`SystemClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The default policy of sessions. Default [`Policy::default`].
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Where rotated credentials are saved (and loaded on a session's first fetch). Default:
    /// none (credentials kept in memory only).
    pub fn store(mut self, store: Arc<dyn CredentialStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Builds the keeper.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] (`runtime`) if no runtime was given, none is current, and one
    /// cannot be started.
    pub fn build(self) -> Result<Keeper, Error> {
        let (runtime, owned) = match self.runtime.or_else(|| Handle::try_current().ok()) {
            Some(h) => (h, None),
            None => {
                let (h, stop) = start_owned_runtime()?;
                (h, Some(stop))
            }
        };
        Ok(Keeper {
            inner: Arc::new(KeeperInner {
                runtime,
                owned: Mutex::new(owned),
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock::new())),
                policy: Arc::new(self.policy.unwrap_or_default()),
                store: self.store,
                sessions: Mutex::new(Registry {
                    map: HashMap::new(),
                    sweep_at: 64,
                }),
                next_id: AtomicU64::new(1),
                events: Arc::new(EventHub::default()),
                shut_down: AtomicBool::new(false),
            }),
        })
    }
}

fn start_owned_runtime() -> Result<(Handle, tokio::sync::oneshot::Sender<()>), Error> {
    let misconfigured = |e: std::io::Error| Error::Misconfigured {
        setting: "runtime".into(),
        message: format!("no tokio runtime given or current, and starting one failed: {e}"),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("tokenkeeper")
        .build()
        .map_err(misconfigured)?;
    let handle = rt.handle().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("tokenkeeper".into())
        .spawn(move || {
            rt.block_on(async {
                let _ = stopped.await;
            });
            // Dropping the runtime here cancels every remaining session task.
        })
        .map_err(misconfigured)?;
    Ok((handle, stop))
}

struct KeeperInner {
    runtime: Handle,
    owned: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    clock: Arc<dyn Clock>,
    policy: Arc<Policy>,
    store: Option<Arc<dyn CredentialStore>>,
    sessions: Mutex<Registry>,
    next_id: AtomicU64,
    events: Arc<EventHub>,
    shut_down: AtomicBool,
}

struct Registry {
    map: HashMap<u64, Weak<Shared>>,
    /// Sweep dropped entries when the map reaches this size.
    sweep_at: usize,
}

/// One per app: opens sessions, takes app-wide signals, stops everything when dropped.
///
/// ```
/// use tokenkeeper::lifecycle::Keeper;
/// // Outside any runtime the keeper starts and owns one.
/// let keeper = Keeper::builder().build().unwrap();
/// assert_eq!(keeper.session_count(), 0);
/// ```
pub struct Keeper {
    inner: Arc<KeeperInner>,
}

impl fmt::Debug for Keeper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keeper")
            .field("sessions", &self.session_count())
            .field("owns_runtime", &self.inner.owned.lock().is_some())
            .field("policy", &self.inner.policy)
            .finish()
    }
}

impl Keeper {
    /// A builder with every default.
    pub fn builder() -> KeeperBuilder {
        KeeperBuilder::default()
    }

    /// Opens a session fetching from `source`. Nothing is fetched until the first `token()` call
    /// (or at once with [`SessionConfig::prefetch`]). Returns a closed session if the keeper was
    /// shut down.
    pub fn open_session(&self, config: SessionConfig, source: Arc<dyn TokenSource>) -> Session {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let policy = config
            .policy
            .clone()
            .map_or_else(|| self.inner.policy.clone(), Arc::new);
        let shared = Arc::new(Shared::new(
            id,
            config,
            source,
            self.inner.clock.clone(),
            policy,
            self.inner.store.clone(),
            self.inner.events.clone(),
        ));
        {
            let mut registry = self.inner.sessions.lock();
            // Forget dropped sessions now and then (amortised O(1) per open).
            if registry.map.len() >= registry.sweep_at {
                registry.map.retain(|_, s| s.strong_count() > 0);
                registry.sweep_at = (registry.map.len() * 2).max(64);
            }
            registry.map.insert(id, Arc::downgrade(&shared));
        }
        tracing::debug!(session = id, spec = %shared.spec(), "session opened");
        let session = Session::new(shared.clone());
        if self.inner.shut_down.load(Ordering::Acquire) {
            shared.close();
        } else {
            self.inner.runtime.spawn(shared.drive());
        }
        session
    }

    fn each_session(&self, f: impl Fn(&Shared)) {
        let sessions: Vec<Arc<Shared>> = self
            .inner
            .sessions
            .lock()
            .map
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for s in sessions {
            f(&s);
        }
    }

    /// The app came back to the foreground (or the device woke): every session re-checks its
    /// wall-clock deadlines at once (renewing or refetching what went stale) and a pending
    /// backoff is cut short (never below a server's `Retry-After`).
    pub fn resumed(&self) {
        tracing::info!("app resumed: re-checking all sessions");
        self.each_session(Shared::nudge);
    }

    /// Connectivity came back: pending backoffs are cut short (never below a `Retry-After`).
    pub fn network_available(&self) {
        tracing::info!("network available: retrying now");
        self.each_session(Shared::nudge);
    }

    /// Closes every session and stops the keeper's own runtime, if it has one. Also done on drop.
    pub fn shutdown(&self) {
        self.inner.shut_down.store(true, Ordering::Release);
        self.each_session(Shared::close);
        self.inner.sessions.lock().map.clear();
        if let Some(stop) = self.inner.owned.lock().take() {
            let _ = stop.send(());
        }
        self.inner.events.close();
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.inner
            .sessions
            .lock()
            .map
            .values()
            .filter(|s| s.upgrade().is_some_and(|s| !s.is_closed()))
            .count()
    }

    /// Registers a listener for the events of every session of this keeper.
    pub fn add_listener(&self, listener: Arc<dyn EventListener>) -> ListenerId {
        self.inner.events.add(listener)
    }

    /// Removes a keeper-wide listener.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.inner.events.remove(id)
    }

    /// A stream of every session's events from now on.
    pub fn subscribe(&self) -> EventStream {
        self.inner.events.subscribe()
    }

    /// The keeper's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The keeper's default policy.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.shutdown();
    }
}
