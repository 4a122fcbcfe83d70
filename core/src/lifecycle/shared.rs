//! A session's shared state: what the handle, the driver task and the fetch tasks all see.
//!
//! Every instant in here is a deadline on the keeper clock's elapsed clock
//! ([`Clock::boot_time`], in ms): it counts device sleep and never jumps, so a wall clock set
//! back an hour or a phone that slept two hours cannot make a session serve an expired token.
//! Wall-clock times appear only in what the host sees (events, [`IssuedToken`]).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::credentials::{CredentialSlot, CredentialWatcher};
use super::dispatch::Dispatcher;
use super::event::{Counters, Event, EventHub, EventKind, EventStream, SessionState};
use super::policy::{Jitter, Policy};
use super::session::{IssuedToken, SessionConfig};
use crate::clock::{Clock, boot_ms};
use crate::error::Error;
use crate::source::{FetchReason, SessionSpec, TokenSource};

/// Network-change reports less than this apart are one change (Android reports one change as
/// a burst of callbacks): 500 ms. A fetch started during the burst already uses the new network.
const FRESH_ATTEMPT: Duration = Duration::from_millis(500);

/// A token the session accepted, with its times on the elapsed clock.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub(crate) issued: IssuedToken,
    /// When it arrived.
    pub(crate) received: i64,
    /// When it becomes valid (its arrival, unless it is a scheduled token).
    pub(crate) starts: i64,
    pub(crate) expires: i64,
    /// Its whole lifetime as far as known (for the renewal lead), ms.
    pub(crate) lifetime_ms: i64,
}

/// One fetch running in its own task.
#[derive(Debug)]
pub(crate) struct Attempt {
    pub(crate) id: u64,
    pub(crate) reason: FetchReason,
    pub(crate) started_mono: Duration,
    pub(crate) started_boot: i64,
    /// The session stops waiting for it then and may start another beside it.
    pub(crate) give_up_at: i64,
    /// Counted as failed (stalled) but still running: its answer is used if it comes.
    pub(crate) abandoned: bool,
    /// The session's token generation when it started: an answer arriving after a newer token
    /// was published is not used.
    pub(crate) generation: u64,
    /// Whether it uses credentials (never cancelled: its rotation must be kept).
    pub(crate) credentialed: bool,
    /// Given up on because the network changed: the next attempt starts at once.
    pub(crate) network_lost: bool,
    pub(crate) task: Option<AbortHandle>,
}

pub(crate) struct Inner {
    pub(crate) state: SessionState,
    /// The current token: published, or held until its start.
    pub(crate) token: Option<Held>,
    /// Whether `token` is the one published for `current()`.
    pub(crate) published: bool,
    /// A renewal that is valid only later, while `token` still is: published at its start.
    pub(crate) successor: Option<Held>,
    /// Bumped by every token published.
    pub(crate) generation: u64,
    pub(crate) renew_at: i64,
    pub(crate) pending: Option<FetchReason>,
    /// Reason of the current fetch cycle (kept across retries), and when it started (awake
    /// clock: a device sleep in between is not renewal time).
    pub(crate) cycle: Option<FetchReason>,
    pub(crate) cycle_started_mono: Duration,
    /// When the current burst of network-change reports (`Keeper::network_available`) began
    /// and when its last report came (awake clock).
    pub(crate) network_burst: Option<(Duration, Duration)>,
    /// Whether the cycle was asked for by an engine report (expired / rejected).
    pub(crate) report_cycle: bool,
    pub(crate) attempt: u32,
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) next_attempt_id: u64,
    pub(crate) next_retry_at: Option<i64>,
    /// Never retry before this (a server `Retry-After`), even when a backoff is cut short.
    pub(crate) retry_floor: i64,
    /// Completed attempts (waiters with no wait limit take the next outcome).
    pub(crate) completed: u64,
    pub(crate) last_error: Option<Error>,
    pub(crate) fatal: Option<Error>,
    /// Reports (rejected, expired) about freshly issued tokens in a row.
    pub(crate) bad_reports: u32,
    pub(crate) expired_reported: bool,
    /// Server time minus the elapsed clock, from the last answer whose server time was
    /// believed: stands in for answers without one (wall-clock steps cannot make it stale).
    pub(crate) server_offset: Option<i64>,
    pub(crate) renewal_ewma_ms: i64,
    pub(crate) latency_ewma_ms: Option<i64>,
    pub(crate) failure_ewma: f64,
    pub(crate) jitter: Jitter,
    pub(crate) counters: Counters,
    pub(crate) invalid_since: Option<i64>,
    pub(crate) ever_issued: bool,
    /// What the engine holds, when the session has a sink.
    pub(crate) engine: super::sink::EngineView,
}

impl Inner {
    /// The published token if it is valid at `now`.
    pub(crate) fn valid(&self, now: i64) -> Option<&Held> {
        self.token
            .as_ref()
            .filter(|t| self.published && now < t.expires)
    }
}

/// The published token, read without the session lock by `current()`.
struct Published {
    issued: IssuedToken,
    expires: i64,
    generation: u64,
}

pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) spec: Arc<SessionSpec>,
    pub(crate) source: Arc<dyn TokenSource>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) policy: Arc<Policy>,
    /// The credentials' state: the keeper's for the session's key, or one of its own, created
    /// when a source first rotates credentials (most sessions never need one).
    credentials: std::sync::OnceLock<Arc<CredentialSlot>>,
    pub(crate) runtime: Handle,
    /// Where renewed tokens go (the host's "apply" action), if the app gave one.
    pub(crate) sink: Option<Arc<dyn super::TokenSink>>,
    /// Wakes the applier at once (the engine said it needs the newer token).
    pub(crate) apply_now: Notify,
    published: RwLock<Option<Published>>,
    /// Created by the first `watch_status()`: most sessions are never watched.
    status: std::sync::OnceLock<tokio::sync::watch::Sender<super::Status>>,
    pub(crate) inner: Mutex<Inner>,
    /// Wakes the driver (requests, signals, finished fetches, close).
    pub(crate) wake: Notify,
    /// Wakes waiters when a token is published, a fetch completes or the session closes.
    pub(crate) changed: Notify,
    closed: AtomicBool,
    events: EventHub,
    keeper_events: Arc<EventHub>,
    dispatcher: Arc<Dispatcher>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("spec", &self.spec)
            .finish()
    }
}

/// What the keeper lends each session.
pub(crate) struct KeeperParts {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) policy: Arc<Policy>,
    pub(crate) runtime: Handle,
    pub(crate) events: Arc<EventHub>,
    pub(crate) dispatcher: Arc<Dispatcher>,
}

impl Shared {
    pub(crate) fn new(
        id: u64,
        config: SessionConfig,
        source: Arc<dyn TokenSource>,
        credentials: Option<Arc<CredentialSlot>>,
        keeper: KeeperParts,
    ) -> Self {
        let seed = keeper
            .policy
            .jitter_seed
            .unwrap_or_else(|| keeper.clock.now_unix_ms().unsigned_abs())
            ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self {
            id,
            spec: Arc::new(config.spec),
            source,
            clock: keeper.clock,
            policy: keeper.policy,
            credentials: credentials
                .map(std::sync::OnceLock::from)
                .unwrap_or_default(),
            runtime: keeper.runtime,
            sink: config.sink.clone(),
            apply_now: Notify::new(),
            published: RwLock::new(None),
            status: std::sync::OnceLock::new(),
            inner: Mutex::new(Inner {
                state: SessionState::Idle,
                token: None,
                published: false,
                successor: None,
                generation: 0,
                renew_at: i64::MAX,
                pending: config.prefetch.then_some(FetchReason::Initial),
                cycle: None,
                cycle_started_mono: Duration::ZERO,
                network_burst: None,
                report_cycle: false,
                attempt: 0,
                attempts: Vec::new(),
                next_attempt_id: 1,
                next_retry_at: None,
                retry_floor: i64::MIN,
                completed: 0,
                last_error: None,
                fatal: None,
                bad_reports: 0,
                expired_reported: false,
                server_offset: None,
                renewal_ewma_ms: 0,
                latency_ewma_ms: None,
                failure_ewma: 0.0,
                jitter: Jitter::new(seed),
                counters: Counters::default(),
                invalid_since: None,
                ever_issued: false,
                engine: super::sink::EngineView::default(),
            }),
            wake: Notify::new(),
            changed: Notify::new(),
            closed: AtomicBool::new(false),
            events: EventHub::default(),
            keeper_events: keeper.events,
            dispatcher: keeper.dispatcher,
        }
    }

    /// Now on the elapsed clock (ms).
    #[inline]
    pub(crate) fn now(&self) -> i64 {
        boot_ms(self.clock.as_ref())
    }

    /// The device wall-clock reading of the elapsed-clock instant `at` (for the host's eyes).
    pub(crate) fn wall_of(&self, at: i64) -> i64 {
        let (wall, now) = (self.clock.now_unix_ms(), self.now());
        wall.saturating_add(at.saturating_sub(now))
    }

    pub(crate) fn event(&self, kind: EventKind) -> Event {
        Event {
            session_id: self.id,
            session: self.spec.clone(),
            at_ms: self.clock.now_unix_ms(),
            kind,
        }
    }

    /// Sends events to streams at once and to listeners through the keeper's event thread, and
    /// updates the observable status.
    pub(crate) fn emit_all(&self, events: Vec<Event>) {
        self.sync_status();
        for event in events {
            let mut listeners = Vec::new();
            self.events.listeners_into(&mut listeners);
            self.keeper_events.listeners_into(&mut listeners);
            self.events.broadcast(&event);
            self.keeper_events.broadcast(&event);
            if !listeners.is_empty() {
                self.dispatcher.deliver(listeners, event);
            }
        }
    }

    // ---- the published token -----------------------------------------------------------

    /// The published token if it is valid now: one elapsed-clock read and a read lock.
    #[inline]
    pub(crate) fn current(&self) -> Option<IssuedToken> {
        let now = self.now();
        let guard = self.published.read();
        guard
            .as_ref()
            .filter(|p| now < p.expires)
            .map(|p| p.issued.clone())
    }

    /// The published token and its generation if it is valid at `now`.
    pub(crate) fn current_with_generation(&self, now: i64) -> Option<(IssuedToken, u64)> {
        let guard = self.published.read();
        guard
            .as_ref()
            .filter(|p| now < p.expires)
            .map(|p| (p.issued.clone(), p.generation))
    }

    /// The published token and its generation if it is valid at `now` and at least `min_gen`.
    pub(crate) fn current_since(&self, now: i64, min_gen: u64) -> Option<IssuedToken> {
        let guard = self.published.read();
        guard
            .as_ref()
            .filter(|p| now < p.expires && p.generation >= min_gen)
            .map(|p| p.issued.clone())
    }

    /// Publishes `held` as the current token (a new generation).
    pub(crate) fn publish(&self, inner: &mut Inner, held: Held) {
        inner.generation += 1;
        *self.published.write() = Some(Published {
            issued: held.issued.clone(),
            expires: held.expires,
            generation: inner.generation,
        });
        inner.token = Some(held);
        inner.published = true;
        inner.expired_reported = false;
        inner.state = SessionState::Valid;
    }

    /// Withdraws the published token (it expired or is known bad) and starts counting the time
    /// without one.
    pub(crate) fn unpublish(&self, inner: &mut Inner, now: i64, events: &mut Vec<Event>) {
        self.published.write().take();
        if !inner.published {
            return;
        }
        inner.published = false;
        if let Some(t) = &inner.token {
            if !inner.expired_reported {
                inner.expired_reported = true;
                let at = now.min(t.expires);
                inner.invalid_since = Some(at);
                events.push(self.event(EventKind::Expired {
                    expired_at_ms: self.wall_of(at),
                }));
            }
        }
        if inner.fatal.is_none() {
            inner.state = SessionState::Expired;
        }
    }

    // ---- signals ---------------------------------------------------------------------------

    /// Cuts a pending backoff short (not below a server's `Retry-After`) and wakes the driver to
    /// re-check its deadlines. With `network_changed`, a fetch stuck on the old network is given
    /// up on (it keeps running; another starts beside it).
    pub(crate) fn nudge(&self, network_changed: bool) {
        {
            let mut inner = self.inner.lock();
            let now = self.now();
            let floor = inner.retry_floor;
            if let Some(at) = inner.next_retry_at.as_mut() {
                *at = (*at).min(now.max(floor));
            }
            if network_changed {
                // A fetch that started on the old network may never answer: try beside it.
                // One started since this burst of reports began already uses the new network
                // (Android reports one change several times in a row).
                let mono = self.clock.monotonic();
                let began = match inner.network_burst {
                    Some((began, last)) if mono.saturating_sub(last) < FRESH_ATTEMPT => began,
                    _ => mono,
                };
                inner.network_burst = Some((began, mono));
                let fresh = |a: &Attempt| began < mono && a.started_mono >= began;
                for a in inner
                    .attempts
                    .iter_mut()
                    .filter(|a| !a.abandoned && !fresh(a))
                {
                    a.give_up_at = a.give_up_at.min(now);
                    a.network_lost = true;
                }
            }
        }
        self.wake.notify_one();
    }

    pub(crate) fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let tasks: Vec<AbortHandle> = {
            let mut inner = self.inner.lock();
            inner.state = SessionState::Closed;
            inner.published = false;
            inner.pending = None;
            inner.successor = None;
            inner
                .attempts
                .iter_mut()
                .filter(|a| !a.credentialed)
                .filter_map(|a| a.task.take())
                .collect()
        };
        for task in tasks {
            task.abort();
        }
        self.published.write().take();
        tracing::info!(session = self.id, "session closed");
        self.wake.notify_one();
        self.changed.notify_waiters();
        self.emit_all(vec![self.event(EventKind::Closed)]);
        self.events.close();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    // ---- reads ---------------------------------------------------------------------------

    pub(crate) fn state(&self) -> SessionState {
        let inner = self.inner.lock();
        let now = self.now();
        match inner.state {
            SessionState::Valid | SessionState::Renewing if inner.valid(now).is_none() => {
                SessionState::Expired
            }
            s => s,
        }
    }

    pub(crate) fn counters(&self) -> Counters {
        self.inner.lock().counters
    }

    /// The session's status now: state, the current token's expiry, the fatal error.
    pub(crate) fn status_now(&self) -> super::Status {
        let state = self.state();
        let inner = self.inner.lock();
        let now = self.now();
        super::Status {
            state,
            expires_at_ms: inner.valid(now).map(|t| t.issued.expires_at_ms),
            error: inner.fatal.clone(),
        }
    }

    fn sync_status(&self) {
        let Some(tx) = self.status.get() else { return };
        let status = self.status_now();
        tx.send_if_modified(|s| {
            let changed = *s != status;
            *s = status;
            changed
        });
    }

    /// The status now, then each change, to every subscriber.
    pub(crate) fn watch_status(&self) -> tokio::sync::watch::Receiver<super::Status> {
        let tx = self
            .status
            .get_or_init(|| tokio::sync::watch::Sender::new(self.status_now()));
        self.sync_status();
        tx.subscribe()
    }

    // ---- credentials ---------------------------------------------------------------------

    /// Whether fetches use credentials (then they never run in parallel).
    pub(crate) fn credentials_in_use(&self) -> bool {
        self.credentials.get().is_some_and(|s| s.in_use())
    }

    pub(crate) fn credential_slot(&self) -> Option<&Arc<CredentialSlot>> {
        self.credentials.get()
    }

    /// The session's credential state, created (memory only) on first use.
    pub(crate) fn credential_slot_or_init(self: &Arc<Self>) -> &Arc<CredentialSlot> {
        self.credentials.get_or_init(|| {
            let slot =
                CredentialSlot::new(None, None, self.clock.clone(), Some(self.runtime.clone()));
            let watcher: Arc<dyn CredentialWatcher> = self.clone();
            slot.watch(Arc::downgrade(&watcher));
            slot
        })
    }

    pub(crate) fn add_listener(
        &self,
        l: Arc<dyn super::event::EventListener>,
    ) -> super::event::ListenerId {
        self.events.add(l)
    }

    pub(crate) fn remove_listener(&self, id: super::event::ListenerId) -> bool {
        self.events.remove(id)
    }

    pub(crate) fn subscribe(&self) -> EventStream {
        self.events.subscribe()
    }

    pub(crate) fn flush_listeners(&self, timeout: Duration) -> bool {
        self.dispatcher.flush(timeout)
    }
}

impl CredentialWatcher for Shared {
    /// New credentials (the user signed in again): a session stopped for re-authentication
    /// resumes at once.
    fn credentials_replaced(&self) {
        {
            let mut inner = self.inner.lock();
            if !matches!(inner.fatal, Some(Error::ReauthRequired { .. })) {
                return;
            }
            inner.fatal = None;
            inner.state = if inner.ever_issued {
                SessionState::Expired
            } else {
                SessionState::Idle
            };
            let now = self.now();
            let reason = if inner.valid(now).is_some() {
                FetchReason::Forced
            } else if inner.ever_issued {
                FetchReason::Emergency
            } else {
                FetchReason::Initial
            };
            inner.pending = Some(super::driver::merge(inner.pending, reason));
            tracing::info!(session = self.id, "new credentials: fetching again");
        }
        self.wake.notify_one();
    }

    fn save_failed(&self, message: &str) {
        self.inner.lock().counters.store_failures += 1;
        self.emit_all(vec![self.event(EventKind::StoreFailed {
            message: message.to_owned(),
        })]);
    }
}
