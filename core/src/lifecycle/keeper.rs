//! The [`Keeper`]: one per app. Opens sessions, owns the per-key credential state, listens for
//! device sleep and clock changes once for all sessions, and takes app-wide signals.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::StreamExt;
use parking_lot::Mutex;
use tokio::runtime::Handle;

use super::credentials::{CredentialSlot, CredentialWatcher};
use super::dispatch::Dispatcher;
use super::event::{EventHub, EventListener, EventStream, ListenerId};
use super::policy::Policy;
use super::session::{Session, SessionConfig};
use super::shared::{KeeperParts, Shared};
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::source::{Credentials, TokenSource};
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
    /// Default: the runtime current at `build()`, or, when there is none (a call from a foreign
    /// thread), a single-threaded runtime the keeper owns on its own thread (`tokenkeeper`),
    /// stopped when the keeper drops.
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

    /// Where rotated credentials are saved (and read before each fetch that uses them).
    /// Default: none (credentials kept in memory only).
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
        let inner = Arc::new(KeeperInner {
            runtime,
            owned: Mutex::new(owned),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock::new())),
            policy: Arc::new(self.policy.unwrap_or_default()),
            store: self.store,
            sessions: Mutex::new(Registry {
                map: HashMap::new(),
                sweep_at: 64,
            }),
            slots: Mutex::new(HashMap::new()),
            set_by_host: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            events: Arc::new(EventHub::default()),
            dispatcher: Arc::new(Dispatcher::default()),
            shut_down: AtomicBool::new(false),
            watcher: Mutex::new(None),
        });
        // Subscribed now, so a change right after `build()` is not missed.
        let changes = {
            let _runtime = inner.runtime.enter();
            inner.clock.discontinuities()
        };
        let watcher = inner
            .runtime
            .spawn(watch_clock(Arc::downgrade(&inner), changes));
        *inner.watcher.lock() = Some(watcher.abort_handle());
        Ok(Keeper { inner })
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

/// Re-checks every session when the device wakes or the wall clock is set: one listener per
/// keeper, no periodic wakeups where the kernel reports these moments (Linux, Android).
async fn watch_clock(keeper: Weak<KeeperInner>, mut changes: crate::clock::Discontinuities) {
    while changes.next().await.is_some() {
        let Some(keeper) = keeper.upgrade() else {
            return;
        };
        tracing::info!("device woke or the clock was set: re-checking every session");
        keeper.each_session(|s| s.nudge(false));
    }
}

pub(crate) struct KeeperInner {
    runtime: Handle,
    owned: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    clock: Arc<dyn Clock>,
    policy: Arc<Policy>,
    store: Option<Arc<dyn CredentialStore>>,
    sessions: Mutex<Registry>,
    /// One credential state per key, shared by the sessions that name it.
    slots: Mutex<HashMap<String, Weak<CredentialSlot>>>,
    /// The states of the keys the host set with `set_credentials`, kept for the keeper's life:
    /// credentials set before any session names the key must reach that session's first fetch.
    set_by_host: Mutex<HashMap<String, Arc<CredentialSlot>>>,
    next_id: AtomicU64,
    events: Arc<EventHub>,
    dispatcher: Arc<Dispatcher>,
    shut_down: AtomicBool,
    watcher: Mutex<Option<tokio::task::AbortHandle>>,
}

impl KeeperInner {
    fn each_session(&self, f: impl Fn(&Shared)) {
        let sessions: Vec<Arc<Shared>> = self
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

    /// The credential state of `key`, shared by every session naming it.
    fn slot(&self, key: &str) -> Arc<CredentialSlot> {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get(key).and_then(Weak::upgrade) {
            return slot;
        }
        slots.retain(|_, s| s.strong_count() > 0);
        let slot = CredentialSlot::new(
            Some(key),
            self.store.clone(),
            self.clock.clone(),
            Some(self.runtime.clone()),
        );
        slots.insert(key.to_owned(), Arc::downgrade(&slot));
        slot
    }
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
        let slot = config
            .credentials_key
            .as_deref()
            .map(|k| self.inner.slot(k));
        let parts = KeeperParts {
            clock: self.inner.clock.clone(),
            policy,
            runtime: self.inner.runtime.clone(),
            events: self.inner.events.clone(),
            dispatcher: self.inner.dispatcher.clone(),
        };
        let shared = Arc::new(Shared::new(id, config, source, slot.clone(), parts));
        if let Some(slot) = slot {
            let watcher: Arc<dyn CredentialWatcher> = shared.clone();
            slot.watch(Arc::downgrade(&watcher));
        }
        {
            let mut registry = self.inner.sessions.lock();
            // Forget dropped sessions now and then (amortised O(1) per open).
            if registry.map.len() >= registry.sweep_at {
                registry.map.retain(|_, s| s.strong_count() > 0);
                registry.sweep_at = (registry.map.len() * 2).max(64);
            }
            registry.map.insert(id, Arc::downgrade(&shared));
        }
        tracing::debug!(session = id, spec = %shared.spec, "session opened");
        let session = Session::new(shared.clone());
        if self.inner.shut_down.load(Ordering::Acquire) {
            shared.close();
        } else {
            self.inner.runtime.spawn(shared.clone().supervise());
            if let Some(sink) = shared.sink.clone() {
                self.inner.runtime.spawn(shared.apply_tokens(sink));
            }
        }
        session
    }

    /// The app came back to the foreground (or the device woke): every session re-checks its
    /// deadlines at once (renewing or refetching what went stale) and a pending backoff is cut
    /// short (never below a server's `Retry-After`). On Linux and Android the keeper notices a
    /// wake-up by itself; calling this costs nothing and covers every platform.
    pub fn resumed(&self) {
        tracing::info!("app resumed: re-checking all sessions");
        self.inner.each_session(|s| s.nudge(false));
    }

    /// Connectivity came back or changed: pending backoffs are cut short (never below a
    /// `Retry-After`) and a fetch stuck on the old network is retried beside it.
    pub fn network_available(&self) {
        tracing::info!("network available: retrying now");
        self.inner.each_session(|s| s.nudge(true));
    }

    /// New credentials for `key` (the user signed in again): kept at once, saved to the store in
    /// the background, used by the next fetch of every session naming the key; sessions stopped
    /// with [`Error::ReauthRequired`] resume.
    pub fn set_credentials(&self, key: &str, credentials: Credentials) {
        let _guard = self.inner.runtime.enter();
        let slot = self.inner.slot(key);
        self.inner
            .set_by_host
            .lock()
            .insert(key.to_owned(), Arc::clone(&slot));
        slot.replace(credentials, self.inner.policy.fetch_timeout);
    }

    /// Closes every session and stops the keeper's own runtime, if it has one. Also done on drop.
    pub fn shutdown(&self) {
        self.inner.shut_down.store(true, Ordering::Release);
        self.inner.each_session(Shared::close);
        self.inner.sessions.lock().map.clear();
        if let Some(watcher) = self.inner.watcher.lock().take() {
            watcher.abort();
        }
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

    /// Registers a listener for the events of every session of this keeper (called on the
    /// keeper's event thread, never on the renewal path).
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

    /// Waits until every event emitted so far reached the listeners, at most `timeout`
    /// (`false` if a listener is still busy). For tests and orderly shutdown.
    pub fn flush_listeners(&self, timeout: Duration) -> bool {
        self.inner.dispatcher.flush(timeout)
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
