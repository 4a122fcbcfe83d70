//! Credentials and stores: ordered saves, one credential state per key, failing stores, late
//! answers and two processes sharing a file store. The backend here behaves like an OAuth
//! server with reuse detection: each refresh token works once, and replaying one revokes the
//! whole family (every later refresh fails).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokenkeeper::clock::{Clock, ManualClock};
use tokenkeeper::lifecycle::{EventKind, Keeper, SessionConfig};
use tokenkeeper::source::{
    Credentials, FetchRequest, FetchedToken, SessionSpec, SourceError, Token, TokenSource,
};
use tokenkeeper::store::{CredentialStore, MemoryStore, StoreError};

use crate::lifecycle_support::{T0, policy, record};

/// An OAuth-like backend: one valid refresh token at a time, rotation on every refresh, reuse
/// revokes the family.
pub(crate) struct RotatingBackend {
    clock: ManualClock,
    state: Mutex<BackendState>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Virtual time each answer takes, by call number (1-based); default none.
    latency: Box<dyn Fn(u64) -> Duration + Send + Sync>,
}

#[derive(Debug, Default)]
pub(crate) struct BackendState {
    pub(crate) valid: Option<String>,
    pub(crate) issued: u64,
    pub(crate) calls: u64,
    pub(crate) reuses: u64,
    pub(crate) revoked: bool,
}

impl std::fmt::Debug for RotatingBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatingBackend")
            .field("state", &*self.state.lock())
            .finish()
    }
}

impl RotatingBackend {
    pub(crate) fn new(clock: &ManualClock, first: &str) -> Arc<Self> {
        Self::with_latency(clock, first, |_| Duration::ZERO)
    }

    pub(crate) fn with_latency(
        clock: &ManualClock,
        first: &str,
        latency: impl Fn(u64) -> Duration + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            clock: clock.clone(),
            state: Mutex::new(BackendState {
                valid: Some(first.to_owned()),
                ..BackendState::default()
            }),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            latency: Box::new(latency),
        })
    }

    pub(crate) fn state(&self) -> parking_lot::MutexGuard<'_, BackendState> {
        self.state.lock()
    }

    /// The refresh token the server would accept now.
    pub(crate) fn valid(&self) -> Option<String> {
        self.state.lock().valid.clone()
    }
}

#[async_trait::async_trait]
impl TokenSource for RotatingBackend {
    async fn fetch(&self, request: FetchRequest) -> Result<FetchedToken, SourceError> {
        let n = {
            let mut s = self.state.lock();
            s.calls += 1;
            s.calls
        };
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let sent = request.credentials.map(|c| c.expose().to_owned());
        // The server decides when the request arrives; the answer takes `latency`.
        let answer = {
            let mut s = self.state.lock();
            if s.revoked || sent.is_none() || sent != s.valid {
                if !s.revoked && sent.is_some() {
                    s.reuses += 1;
                    s.revoked = true; // reuse detection: the family is gone
                    s.valid = None;
                }
                Err(SourceError::ReauthRequired {
                    message: "invalid_grant: refresh token reused or revoked".into(),
                })
            } else {
                s.issued += 1;
                let next = format!("rt-{}", s.issued + 1);
                s.valid = Some(next.clone());
                Ok(
                    FetchedToken::new(Token::new(format!("access-{}", s.issued)))
                        .with_expires_in(Duration::from_secs(600))
                        .with_rotated(Credentials::new(next)),
                )
            }
        };
        self.clock.sleep((self.latency)(n)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        answer
    }
}

fn keeper(clock: &ManualClock, store: Arc<dyn CredentialStore>) -> Keeper {
    Keeper::builder()
        .clock(Arc::new(clock.clone()))
        .policy(policy())
        .store(store)
        .build()
        .unwrap()
}

fn config(channel: &str) -> SessionConfig {
    SessionConfig::new(SessionSpec::new(channel, "1001")).with_credentials_key("oauth:1001")
}

async fn stored(store: &dyn CredentialStore) -> Option<String> {
    store
        .load("oauth:1001")
        .await
        .unwrap()
        .map(|c| c.expose().to_owned())
}

/// A store whose first save takes 15 s and finishes on a thread of its own (as the file store
/// and host stores do: giving up on it does not stop it).
#[derive(Debug)]
struct SlowFirstSave {
    inner: Arc<MemoryStore>,
    clock: ManualClock,
    saves: AtomicUsize,
}

#[async_trait::async_trait]
impl CredentialStore for SlowFirstSave {
    async fn load(&self, key: &str) -> Result<Option<Credentials>, StoreError> {
        self.inner.load(key).await
    }
    async fn save(&self, key: &str, credentials: &Credentials) -> Result<(), StoreError> {
        let first = self.saves.fetch_add(1, Ordering::SeqCst) == 0;
        let (inner, clock) = (self.inner.clone(), self.clock.clone());
        let (key, credentials) = (key.to_owned(), credentials.clone());
        let job = tokio::spawn(async move {
            if first {
                clock.sleep(Duration::from_secs(15)).await;
            }
            inner.save(&key, &credentials).await
        });
        job.await.unwrap()
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
}

/// #13: a save that times out still lands later, and must not land after a newer one.
#[tokio::test(start_paused = true)]
async fn a_late_save_never_overwrites_a_newer_refresh_token() {
    let clock = ManualClock::new(T0);
    let memory = Arc::new(MemoryStore::new());
    memory
        .save("oauth:1001", &Credentials::new("rt-1"))
        .await
        .unwrap();
    let store = Arc::new(SlowFirstSave {
        inner: memory.clone(),
        clock: clock.clone(),
        saves: AtomicUsize::new(0),
    });
    let keeper = keeper(&clock, store);
    let backend = RotatingBackend::new(&clock, "rt-1");
    let session = keeper.open_session(config("live-42"), backend.clone());
    session
        .token()
        .await
        .expect("handed out after the save timed out");
    session.renew_token().await.expect("renewed with rt-2");
    clock.sleep(Duration::from_secs(30)).await;
    assert_eq!(backend.valid().as_deref(), Some("rt-3"));
    assert_eq!(stored(memory.as_ref()).await.as_deref(), Some("rt-3"));
}

/// #14: an RTC session and a chat session of one user share the refresh token.
#[tokio::test(start_paused = true)]
async fn sessions_sharing_a_credentials_key_never_replay_each_others_refresh_token() {
    let clock = ManualClock::new(T0);
    let store = Arc::new(MemoryStore::new());
    store
        .save("oauth:1001", &Credentials::new("rt-1"))
        .await
        .unwrap();
    let keeper = keeper(&clock, store.clone());
    let backend = RotatingBackend::with_latency(&clock, "rt-1", |_| Duration::from_millis(200));
    let rtc = keeper.open_session(config("live-42"), backend.clone());
    let chat = keeper.open_session(config("chat-1001"), backend.clone());
    rtc.token().await.unwrap();
    chat.token().await.unwrap();
    rtc.renew_token().await.unwrap();
    chat.renew_token().await.unwrap();
    // Both at once, ten times: one refresh at a time per key.
    for _ in 0..10 {
        let (a, b) = tokio::join!(rtc.renew_token(), chat.renew_token());
        a.unwrap();
        b.unwrap();
    }
    let (reuses, revoked, issued) = {
        let state = backend.state();
        (state.reuses, state.revoked, state.issued)
    };
    assert_eq!((reuses, revoked, issued), (0, false, 24));
    assert_eq!(backend.max_in_flight.load(Ordering::SeqCst), 1);
    assert_eq!(stored(store.as_ref()).await, backend.valid());
}

/// A store that fails its first `failures` saves (a locked keychain), then works.
#[derive(Debug)]
struct LockedKeychain {
    inner: MemoryStore,
    failures: AtomicUsize,
}

impl LockedKeychain {
    /// A keychain holding `rt-1` for user 1001 whose next `failures` saves fail.
    async fn holding_rt1(failures: usize) -> Arc<Self> {
        let store = Self {
            inner: MemoryStore::new(),
            failures: AtomicUsize::new(failures),
        };
        store
            .inner
            .save("oauth:1001", &Credentials::new("rt-1"))
            .await
            .unwrap();
        Arc::new(store)
    }
}

#[async_trait::async_trait]
impl CredentialStore for LockedKeychain {
    async fn load(&self, key: &str) -> Result<Option<Credentials>, StoreError> {
        self.inner.load(key).await
    }
    async fn save(&self, key: &str, credentials: &Credentials) -> Result<(), StoreError> {
        if self.failures.load(Ordering::SeqCst) > 0 {
            self.failures.fetch_sub(1, Ordering::SeqCst);
            return Err(StoreError::new(
                "keychain locked (device not unlocked since boot)",
            ));
        }
        self.inner.save(key, credentials).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
}

/// #15: a locked keychain withholds nothing, and the save is retried until it lands.
#[tokio::test(start_paused = true)]
async fn a_locked_keychain_withholds_no_token_and_the_save_lands_once_it_unlocks() {
    let clock = ManualClock::new(T0);
    let store = LockedKeychain::holding_rt1(30).await;
    let keeper = keeper(&clock, store.clone());
    let backend = RotatingBackend::new(&clock, "rt-1");
    let session = keeper.open_session(config("live-42"), backend.clone());
    let events = record(&session);
    for _ in 0..5 {
        session
            .renew_token()
            .await
            .expect("every rotation is handed out");
    }
    assert_eq!(backend.state().issued, 5);
    assert!(keeper.flush_listeners(Duration::from_secs(5)));
    let failed = events
        .lock()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::StoreFailed { .. }))
        .count();
    assert_eq!(failed, 5, "each unsaved rotation is reported");
    // The background retries (1 s doubling to 60 s) get through once the keychain unlocks.
    clock.sleep(Duration::from_secs(30 * 60)).await;
    assert_eq!(stored(store.as_ref()).await, backend.valid());
    assert_eq!(backend.state().reuses, 0);
}

/// #16: a refresh whose answer comes after the fetch timeout still has its rotation kept.
#[tokio::test(start_paused = true)]
async fn a_refresh_answered_after_the_fetch_timeout_keeps_its_rotated_token() {
    let clock = ManualClock::new(T0);
    let store = Arc::new(MemoryStore::new());
    store
        .save("oauth:1001", &Credentials::new("rt-1"))
        .await
        .unwrap();
    let keeper = keeper(&clock, store.clone());
    let backend = RotatingBackend::with_latency(&clock, "rt-1", |n| {
        Duration::from_secs(if n == 1 { 12 } else { 0 })
    });
    let session = keeper.open_session(config("live-42"), backend.clone());
    let t = session.token().await.expect("the late answer is used");
    assert_eq!(t.token.expose(), "access-1");
    assert_eq!(stored(store.as_ref()).await.as_deref(), Some("rt-2"));
    session.renew_token().await.expect("rt-2 works");
    assert_eq!(backend.state().reuses, 0);
}

/// #16: two processes (two keepers, two file stores on one directory) share a key.
#[cfg(feature = "http")]
#[tokio::test(start_paused = true)]
async fn two_processes_sharing_a_file_store_key_never_log_each_other_out() {
    use tokenkeeper::sources::FileStore;
    let clock = ManualClock::new(T0);
    let dir = tempfile::tempdir().unwrap();
    FileStore::new(dir.path())
        .save("oauth:1001", &Credentials::new("rt-1"))
        .await
        .unwrap();
    let backend = RotatingBackend::new(&clock, "rt-1");
    let a = keeper(&clock, Arc::new(FileStore::new(dir.path())));
    let b = keeper(&clock, Arc::new(FileStore::new(dir.path())));
    let (sa, sb) = (
        a.open_session(config("live-42"), backend.clone()),
        b.open_session(config("live-42"), backend.clone()),
    );
    sb.token().await.unwrap();
    sa.token().await.unwrap();
    for _ in 0..5 {
        sb.renew_token().await.unwrap();
        sa.renew_token().await.unwrap();
    }
    assert_eq!(backend.state().reuses, 0);
    assert_eq!(stored(&FileStore::new(dir.path())).await, backend.valid());
}

/// #16: the same with both processes refreshing at the same moment (real time, real locks).
#[cfg(feature = "http")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_refreshing_at_once_take_turns_through_the_file_lock() {
    use tokenkeeper::sources::FileStore;
    let clock = ManualClock::new(T0);
    let dir = tempfile::tempdir().unwrap();
    FileStore::new(dir.path())
        .save("oauth:1001", &Credentials::new("rt-1"))
        .await
        .unwrap();
    let backend = RotatingBackend::with_latency(&clock, "rt-1", |_| Duration::from_millis(5));
    let a = keeper(&clock, Arc::new(FileStore::new(dir.path())));
    let b = keeper(&clock, Arc::new(FileStore::new(dir.path())));
    let (sa, sb) = (
        a.open_session(config("live-42"), backend.clone()),
        b.open_session(config("live-42"), backend.clone()),
    );
    for _ in 0..10 {
        let (x, y) = tokio::join!(sa.renew_token(), sb.renew_token());
        x.unwrap();
        y.unwrap();
    }
    assert_eq!(backend.state().reuses, 0);
    assert_eq!(backend.max_in_flight.load(Ordering::SeqCst), 1);
}

/// #16: a refresh that answers 55 s late still lands before a 10-minute token expires.
#[tokio::test(start_paused = true)]
async fn sessions_with_credentials_renew_early_enough_for_a_stalled_refresh() {
    let clock = ManualClock::new(T0);
    let store = Arc::new(MemoryStore::new());
    store
        .save("oauth:1001", &Credentials::new("rt-1"))
        .await
        .unwrap();
    let keeper = keeper(&clock, store.clone());
    let backend = RotatingBackend::with_latency(&clock, "rt-1", |n| {
        Duration::from_secs(if n == 2 { 55 } else { 0 })
    });
    let session = keeper.open_session(config("live-42"), backend.clone());
    session.token().await.unwrap();
    clock.sleep(Duration::from_secs(700)).await;
    let c = session.counters();
    assert_eq!((c.renewals, c.expired_ms), (1, 0), "{c:?}");
    assert_eq!(
        backend.state().issued,
        2,
        "no second refresh beside the slow one"
    );
    assert_eq!(stored(store.as_ref()).await.as_deref(), Some("rt-3"));
}

/// A rotation the locked keychain could not save outlives the session that fetched it: the
/// user ends the call (the last session naming the key closes) while the keychain is still
/// locked; the next call, minutes later, must refresh with the rotated token, not the consumed
/// one still in the store, and the save lands once the keychain unlocks.
#[tokio::test(start_paused = true)]
async fn an_unsaved_rotation_survives_the_close_of_the_last_session_using_its_key() {
    let clock = ManualClock::new(T0);
    let store = LockedKeychain::holding_rt1(3).await;
    let keeper = keeper(&clock, store.clone());
    let backend = RotatingBackend::new(&clock, "rt-1");
    let session = keeper.open_session(config("live-42"), backend.clone());
    session.token().await.expect("handed out despite the store");
    session.close();
    drop(session);
    clock.sleep(Duration::from_secs(10 * 60)).await;
    let next = keeper.open_session(config("live-43"), backend.clone());
    next.token()
        .await
        .expect("the rotated refresh token is kept");
    assert_eq!(backend.state().reuses, 0, "no consumed token replayed");
    clock.sleep(Duration::from_secs(5 * 60)).await;
    assert_eq!(stored(store.as_ref()).await, backend.valid());
}

/// A keychain whose first save takes `first` (`None`: never returns, a stuck `securityd`);
/// later calls work.
#[derive(Debug)]
struct FirstSaveHangs {
    inner: Arc<MemoryStore>,
    saves: AtomicUsize,
    clock: ManualClock,
    first: Option<Duration>,
}

#[async_trait::async_trait]
impl CredentialStore for FirstSaveHangs {
    async fn load(&self, key: &str) -> Result<Option<Credentials>, StoreError> {
        self.inner.load(key).await
    }
    async fn save(&self, key: &str, credentials: &Credentials) -> Result<(), StoreError> {
        if self.saves.fetch_add(1, Ordering::SeqCst) == 0 {
            match self.first {
                Some(d) => self.clock.sleep(d).await,
                None => futures::future::pending::<()>().await,
            }
        }
        self.inner.save(key, credentials).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
}

/// One save that never returns (or returns minutes late) must not block every later save: the
/// newest rotation still reaches the store and stays there, so the next start does not replay
/// a consumed refresh token.
#[tokio::test(start_paused = true)]
async fn a_save_that_never_returns_does_not_block_later_saves() {
    for first in [None, Some(Duration::from_secs(120))] {
        a_stuck_first_save(first).await;
    }
}

async fn a_stuck_first_save(first: Option<Duration>) {
    let clock = ManualClock::new(T0);
    let store = Arc::new(FirstSaveHangs {
        inner: Arc::new(MemoryStore::new()),
        saves: AtomicUsize::new(0),
        clock: clock.clone(),
        first,
    });
    store
        .inner
        .save("oauth:1001", &Credentials::new("rt-1"))
        .await
        .unwrap();
    let keeper = keeper(&clock, store.clone());
    let backend = RotatingBackend::new(&clock, "rt-1");
    let session = keeper.open_session(config("live-42"), backend.clone());
    session.token().await.unwrap();
    session.renew_token().await.unwrap();
    clock.sleep(Duration::from_secs(10 * 60)).await;
    assert_eq!(stored(store.as_ref()).await, backend.valid());
}
