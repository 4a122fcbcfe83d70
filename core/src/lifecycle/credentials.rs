//! Per-key credential state, owned by the keeper and shared by every session that names the key
//! (an RTC session and a chat session of one user), and by an OAuth source with a store.
//!
//! Rules, each one a way refresh tokens were lost:
//! - **One refresh in flight per key**: a fetch that uses the credentials holds the key for its
//!   whole length, so no second request ever replays a refresh token the first one consumed.
//! - **The store is the truth, unless we hold something newer**: before each fetch the store is
//!   read again (under its cross-process lock, if it has one), so two processes sharing a key,
//!   or a host that saved new credentials after a sign-in, never send a consumed token. Only
//!   credentials we rotated but could not save yet win over the store.
//! - **Saves are ordered and the latest wins**: one save at a time per key, each writing the
//!   newest value; a save the engine stopped waiting for still finishes before the next starts,
//!   so a slow store can never leave an older refresh token behind a newer one.
//! - **A failing store withholds nothing**: the server already rotated, so the token is handed
//!   out, the credentials stay in memory, and the save is retried in the background.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::OwnedMutexGuard;

use crate::clock::Clock;
use crate::source::Credentials;
use crate::store::{CredentialStore, StoreError, StoreLock};

/// First and largest pause between background save retries: 1 s doubling to 60 s.
const SAVE_RETRY_INITIAL: Duration = Duration::from_secs(1);
const SAVE_RETRY_MAX: Duration = Duration::from_secs(60);
/// A store write that has not answered after this long no longer holds up the next one: 30 s
/// (a stuck keychain daemon). If it lands after a newer write, the newest is written again.
const SAVE_WRITE_LIMIT: Duration = Duration::from_secs(30);

pub(crate) struct CredentialSlot {
    key: Option<Arc<str>>,
    store: Option<Arc<dyn CredentialStore>>,
    clock: Arc<dyn Clock>,
    /// Where background saves run; `None`: the runtime current at the call.
    runtime: Option<Handle>,
    state: Mutex<SlotState>,
    /// Held by the fetch that uses the credentials: one at a time.
    fetch: Arc<tokio::sync::Mutex<()>>,
    /// Held by the one save in progress.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// Sessions to tell when the host sets new credentials.
    watchers: Mutex<Vec<Weak<dyn CredentialWatcher>>>,
}

#[derive(Default)]
struct SlotState {
    value: Option<Credentials>,
    /// Bumped by every change of `value`.
    version: u64,
    /// The newest version known to be in the store.
    saved: u64,
    /// Whether the store was read at least once.
    loaded: bool,
    retrying: bool,
    /// The newest version whose failed save was reported to the sessions.
    reported: u64,
}

/// A session using the key: told when the host replaces the credentials (the user signed in
/// again) and when rotated credentials could not be saved.
pub(crate) trait CredentialWatcher: Send + Sync {
    fn credentials_replaced(&self);
    fn save_failed(&self, message: &str);
}

impl fmt::Debug for CredentialSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("CredentialSlot")
            .field("key", &self.key)
            .field("held", &state.value.is_some())
            .field("unsaved", &(state.version > state.saved))
            .finish()
    }
}

/// What a fetch holds while it uses the credentials.
pub(crate) struct FetchGuard {
    pub(crate) credentials: Option<Credentials>,
    /// The version handed out, to recognise the answer that rejects it.
    pub(crate) version: u64,
    _fetch: OwnedMutexGuard<()>,
    _store_lock: Option<StoreLock>,
}

impl CredentialSlot {
    pub(crate) fn new(
        key: Option<&str>,
        store: Option<Arc<dyn CredentialStore>>,
        clock: Arc<dyn Clock>,
        runtime: Option<Handle>,
    ) -> Arc<Self> {
        let store = if key.is_some() { store } else { None };
        Arc::new(Self {
            key: key.map(Arc::from),
            store,
            clock,
            runtime,
            state: Mutex::new(SlotState::default()),
            fetch: Arc::default(),
            writer: Arc::default(),
            watchers: Mutex::new(Vec::new()),
        })
    }

    /// Whether fetches use credentials (a key, or credentials held in memory): those never run
    /// in parallel.
    pub(crate) fn in_use(&self) -> bool {
        self.key.is_some() || self.state.lock().value.is_some()
    }

    /// The credentials held in memory.
    #[cfg_attr(not(feature = "http"), allow(dead_code))] // used by the OAuth source
    pub(crate) fn current(&self) -> Option<Credentials> {
        self.state.lock().value.clone()
    }

    pub(crate) fn watch(&self, watcher: Weak<dyn CredentialWatcher>) {
        let mut watchers = self.watchers.lock();
        watchers.retain(|w| w.strong_count() > 0);
        watchers.push(watcher);
    }

    /// Takes the key for one fetch: waits for any other fetch using it, takes the store's
    /// cross-process lock, and reads the store again unless we hold newer credentials. Store
    /// calls give up after `timeout`.
    ///
    /// # Errors
    /// The store could not be read and no credentials are held in memory.
    pub(crate) async fn begin_fetch(&self, timeout: Duration) -> Result<FetchGuard, StoreError> {
        let fetch = self.fetch.clone().lock_owned().await;
        let (Some(store), Some(key)) = (&self.store, &self.key) else {
            let state = self.state.lock();
            return Ok(FetchGuard {
                credentials: state.value.clone(),
                version: state.version,
                _fetch: fetch,
                _store_lock: None,
            });
        };
        let store_lock = match self.bounded(timeout, store.lock(key)).await {
            Ok(lock) => lock,
            Err(e) => {
                tracing::warn!(key = %key, error = %e.message, "credential store lock failed; going on without it");
                None
            }
        };
        let unsaved = {
            let state = self.state.lock();
            state.version > state.saved
        };
        if !unsaved {
            match self.bounded(timeout, store.load(key)).await {
                Ok(stored) => self.adopt(stored),
                Err(e) => {
                    let state = self.state.lock();
                    if !state.loaded && state.value.is_none() {
                        return Err(StoreError::new(format!("loading `{key}`: {}", e.message)));
                    }
                    tracing::warn!(key = %key, error = %e.message, "credential store unreadable; using the credentials in memory");
                }
            }
        }
        let state = self.state.lock();
        Ok(FetchGuard {
            credentials: state.value.clone(),
            version: state.version,
            _fetch: fetch,
            _store_lock: store_lock,
        })
    }

    /// Takes what the store holds as the truth (we hold nothing unsaved).
    fn adopt(&self, stored: Option<Credentials>) {
        let mut state = self.state.lock();
        state.loaded = true;
        if state.value != stored {
            if state.value.is_some() {
                tracing::info!(key = ?self.key, "credentials changed in the store; using the stored ones");
            }
            state.value = stored;
            state.version += 1;
            state.saved = state.version;
        }
    }

    /// Records rotated credentials (in memory at once) and returns their version.
    pub(crate) fn rotate(&self, credentials: Credentials) -> u64 {
        let mut state = self.state.lock();
        if state.value.as_ref() != Some(&credentials) {
            state.value = Some(credentials);
            state.version += 1;
        }
        state.version
    }

    /// Records credentials rotated by a fetch that was handed `version`, unless the host
    /// replaced them since (the user signed in again, maybe as someone else): the host's win.
    /// `false` when the rotation was dropped.
    pub(crate) fn rotate_from(&self, version: u64, credentials: Credentials) -> bool {
        let mut state = self.state.lock();
        if state.version != version {
            return false;
        }
        if state.value.as_ref() != Some(&credentials) {
            state.value = Some(credentials);
            state.version += 1;
        }
        true
    }

    /// Whether the credentials changed since a fetch was handed `version` (the host set new
    /// ones while it ran): what the server said about the old ones no longer matters.
    pub(crate) fn replaced_since(&self, version: u64) -> bool {
        self.state.lock().version != version
    }

    /// The credentials of `version` were refused (re-authentication needed): the next fetch
    /// reads the store, where the host may have put new ones after a sign-in.
    pub(crate) fn rejected(&self, version: u64) {
        let mut state = self.state.lock();
        if state.version == version {
            state.saved = state.version;
        }
    }

    /// The host replaced the credentials (the user signed in again): kept in memory at once,
    /// saved in the background, and every session using the key resumes.
    pub(crate) fn replace(self: &Arc<Self>, credentials: Credentials, timeout: Duration) {
        self.rotate(credentials);
        self.save_in_background(timeout, None);
        for w in self.watchers() {
            w.credentials_replaced();
        }
    }

    fn watchers(&self) -> Vec<Arc<dyn CredentialWatcher>> {
        self.watchers
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Saves the newest credentials, waiting at most `wait` for the store; `true` when they are
    /// in the store. `hold` (the fetch's hold on the key) is released once the save is done, or
    /// after `timeout`: no other fetch, in this process or another, reads the store before the
    /// rotation is in it. The save goes on in the background after `wait`; one that fails or
    /// does not answer within `timeout` is reported to every session using the key and retried
    /// until it succeeds or newer credentials replace it.
    pub(crate) async fn persist(
        self: &Arc<Self>,
        wait: Duration,
        timeout: Duration,
        hold: Option<FetchGuard>,
    ) -> bool {
        if self.store.is_none() {
            return true;
        }
        let save = self.save_in_background(timeout, hold);
        if wait.is_zero() {
            return false;
        }
        tokio::select! {
            saved = save => saved.unwrap_or(false),
            () = self.clock.sleep(wait) => false,
        }
    }

    /// Starts a save of the newest version (after any in progress). The handle resolves to
    /// whether it succeeded within `timeout`.
    fn save_in_background(
        self: &Arc<Self>,
        timeout: Duration,
        hold: Option<FetchGuard>,
    ) -> tokio::task::JoinHandle<bool> {
        let version = self.state.lock().version;
        let slot = self.clone();
        // Its own task: a save never stops half-way, so saves stay in order.
        let mut save = self.spawn(async move { slot.save_latest().await });
        let slot = self.clone();
        self.spawn(async move {
            let outcome = tokio::select! {
                r = &mut save => Some(r),
                () = slot.clock.sleep(timeout) => None,
            };
            drop(hold);
            let failure = match outcome {
                Some(Ok(Ok(()))) => return true,
                Some(Ok(Err(e))) => e.message,
                Some(Err(_)) => "the credential store panicked".to_owned(),
                None => {
                    format!("no answer within {timeout:?} (policy fetch_timeout); still trying")
                }
            };
            slot.save_failed(version, &failure);
            false
        })
    }

    /// Reports a failed save of `version` once, and keeps retrying in the background.
    fn save_failed(self: &Arc<Self>, version: u64, message: &str) {
        let first = {
            let mut state = self.state.lock();
            let first = state.reported < version && state.saved < version;
            state.reported = state.reported.max(version);
            first
        };
        if first {
            let message = format!(
                "saving `{}`: {message}",
                self.key.as_deref().unwrap_or_default()
            );
            tracing::warn!(error = %message, "rotated credentials not saved; kept in memory, retrying the save");
            for w in self.watchers() {
                w.save_failed(&message);
            }
        }
        self.retry_in_background();
    }

    /// One save of the newest value, after any save in progress (waited for up to
    /// [`SAVE_WRITE_LIMIT`]).
    async fn save_latest(self: &Arc<Self>) -> Result<(), StoreError> {
        let (Some(store), Some(key)) = (self.store.clone(), self.key.clone()) else {
            return Ok(());
        };
        let _writer = self.writer.clone().lock_owned().await;
        let (value, version) = {
            let state = self.state.lock();
            if state.saved >= state.version {
                return Ok(());
            }
            (state.value.clone(), state.version)
        };
        // Its own task: a write we stop waiting for may still land, and is accounted for then.
        let slot = self.clone();
        let write = self.spawn(async move {
            let result = match &value {
                Some(credentials) => store.save(&key, credentials).await,
                None => store.delete(&key).await,
            };
            if result.is_ok() {
                slot.landed(version);
            }
            result
        });
        tokio::select! {
            r = write => r.unwrap_or_else(|_| Err(StoreError::new("the credential store panicked"))),
            () = self.clock.sleep(SAVE_WRITE_LIMIT) => Err(StoreError::new(format!(
                "no answer within {SAVE_WRITE_LIMIT:?}; later saves no longer wait for it"
            ))),
        }
    }

    /// A write of `version` reached the store. One that lands after a newer one put an older
    /// value back: the newest is written again.
    fn landed(self: &Arc<Self>, version: u64) {
        let stale = {
            let mut state = self.state.lock();
            let stale = state.saved > version;
            state.saved = version;
            stale
        };
        if stale {
            tracing::warn!(key = ?self.key, "a late credential write landed after a newer one; writing the newest again");
            self.retry_in_background();
        } else {
            tracing::debug!(key = ?self.key, "credentials saved");
        }
    }

    fn retry_in_background(self: &Arc<Self>) {
        {
            let mut state = self.state.lock();
            if state.retrying {
                return;
            }
            state.retrying = true;
        }
        // Holds the slot: unsaved credentials outlive the sessions that use the key, so the
        // next session naming it gets them (not the consumed ones in the store).
        let slot = self.clone();
        self.spawn(async move {
            let mut pause = SAVE_RETRY_INITIAL;
            loop {
                slot.clock.sleep(pause).await;
                let result = slot.save_latest().await;
                let mut state = slot.state.lock();
                if result.is_ok() || state.saved >= state.version {
                    state.retrying = false;
                    tracing::info!(key = ?slot.key, "credentials saved after a retry");
                    return;
                }
                drop(state);
                pause = (pause * 2).min(SAVE_RETRY_MAX);
            }
        });
    }

    fn spawn<T: Send + 'static>(
        &self,
        task: impl Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        match &self.runtime {
            Some(runtime) => runtime.spawn(task),
            None => tokio::spawn(task),
        }
    }

    async fn bounded<T>(
        &self,
        timeout: Duration,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::select! {
            r = op => r,
            () = self.clock.sleep(timeout) => Err(StoreError::new(format!(
                "no answer within {timeout:?} (policy fetch_timeout)"
            ))),
        }
    }
}
