//! One token's life: the session handle, its shared state and its driver task.
//!
//! Each session has one driver task, the only code that calls the source (single-flight by
//! construction). Callers (`token()`, `renew_token()`, …) record a request, wake the driver and
//! wait for the outcome of the next completed fetch, which every waiter receives.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tracing::Instrument;

use super::event::{
    Counters, Event, EventHub, EventKind, EventListener, EventStream, ListenerId, SessionState,
};
use super::expiry;
use super::policy::{Jitter, Policy};
use crate::clock::Clock;
use crate::error::Error;
use crate::source::{
    Credentials, FetchReason, FetchRequest, FetchedToken, RetryKind, SessionSpec, SourceError,
    Token, TokenSource,
};
use crate::store::CredentialStore;

/// How to open a session ([`crate::lifecycle::Keeper::open_session`]).
///
/// ```
/// use tokenkeeper::lifecycle::SessionConfig;
/// use tokenkeeper::source::SessionSpec;
/// let config = SessionConfig::new(SessionSpec::new("live-42", "1001")).with_credentials_key("oauth:1001");
/// assert!(!config.prefetch);
/// ```
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// What the session is for.
    pub spec: SessionSpec,
    /// Key of this session's credentials in the keeper's credential store; `None`: the session
    /// keeps rotated credentials in memory only.
    pub credentials_key: Option<String>,
    /// Overrides the keeper's policy for this session.
    pub policy: Option<Policy>,
    /// Fetch the first token right away instead of on the first `token()` call. Default `false`.
    pub prefetch: bool,
}

impl SessionConfig {
    /// A config for `spec` with the keeper's policy, no credentials key, no prefetch.
    pub fn new(spec: SessionSpec) -> Self {
        Self {
            spec,
            credentials_key: None,
            policy: None,
            prefetch: false,
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
}

/// A token the session accepted, with what the session knows about it. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The token (redacted in `Debug`).
    pub token: Token,
    /// When it expires (device wall clock, unix ms, skew-corrected).
    pub expires_at_ms: i64,
    /// When the session received it (device wall clock, unix ms).
    pub received_at_ms: i64,
    /// Why it was fetched.
    pub reason: FetchReason,
}

pub(crate) struct Shared {
    pub(crate) id: u64,
    spec: Arc<SessionSpec>,
    source: Arc<dyn TokenSource>,
    clock: Arc<dyn Clock>,
    policy: Arc<Policy>,
    store: Option<Arc<dyn CredentialStore>>,
    credentials_key: Option<String>,
    current: RwLock<Option<IssuedToken>>,
    inner: Mutex<Inner>,
    /// Wakes the driver (requests, signals, close).
    wake: Notify,
    /// Wakes the driver out of an in-flight fetch on close.
    close_signal: Notify,
    /// Wakes waiters when a fetch completes or the session closes.
    changed: Notify,
    closed: AtomicBool,
    events: EventHub,
    keeper_events: Arc<EventHub>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("spec", &self.spec)
            .finish()
    }
}

struct Inner {
    state: SessionState,
    /// The latest accepted token (published or held until its `nbf`).
    token: Option<IssuedToken>,
    not_before_ms: Option<i64>,
    renew_at_ms: i64,
    pending: Option<FetchReason>,
    fetching: bool,
    /// Reason of the current fetch cycle (kept across retries).
    cycle: Option<FetchReason>,
    cycle_started_ms: i64,
    attempt: u32,
    next_retry_at_ms: Option<i64>,
    /// Never retry before this (a server `Retry-After`), even when a backoff is cut short.
    retry_floor_ms: i64,
    completed: u64,
    last_outcome: Option<Result<IssuedToken, Error>>,
    fatal: Option<Error>,
    fresh_rejections: u32,
    expired_reported: bool,
    credentials: Option<Credentials>,
    credentials_loaded: bool,
    skew_ms: i64,
    renewal_ewma_ms: i64,
    /// Smoothed duration of one fetch attempt; `None` before the first.
    latency_ewma_ms: Option<i64>,
    /// Smoothed share of failed fetch attempts (0 to 1).
    failure_ewma: f64,
    jitter: Jitter,
    counters: Counters,
    invalid_since_ms: Option<i64>,
    ever_issued: bool,
}

enum Plan {
    Exit,
    Wait(Option<i64>),
    Fetch(FetchRequest),
}

/// Priority when several requests are pending: the most urgent reason wins.
fn urgency(r: FetchReason) -> u8 {
    match r {
        FetchReason::Scheduled => 0,
        FetchReason::Initial => 1,
        FetchReason::Forced => 2,
        FetchReason::Emergency => 3,
        FetchReason::Rejected => 4,
    }
}

fn merge(a: Option<FetchReason>, b: FetchReason) -> FetchReason {
    match a {
        Some(a) if urgency(a) >= urgency(b) => a,
        _ => b,
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn dur(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0).unsigned_abs())
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: u64,
        config: SessionConfig,
        source: Arc<dyn TokenSource>,
        clock: Arc<dyn Clock>,
        policy: Arc<Policy>,
        store: Option<Arc<dyn CredentialStore>>,
        keeper_events: Arc<EventHub>,
    ) -> Self {
        let seed = policy
            .jitter_seed
            .unwrap_or_else(|| clock.now_unix_ms().unsigned_abs())
            ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let pending = config.prefetch.then_some(FetchReason::Initial);
        Self {
            id,
            spec: Arc::new(config.spec),
            source,
            clock,
            policy,
            store,
            credentials_key: config.credentials_key,
            current: RwLock::new(None),
            inner: Mutex::new(Inner {
                state: SessionState::Idle,
                token: None,
                not_before_ms: None,
                renew_at_ms: i64::MAX,
                pending,
                fetching: false,
                cycle: None,
                cycle_started_ms: 0,
                attempt: 0,
                next_retry_at_ms: None,
                retry_floor_ms: i64::MIN,
                completed: 0,
                last_outcome: None,
                fatal: None,
                fresh_rejections: 0,
                expired_reported: false,
                credentials: None,
                credentials_loaded: false,
                skew_ms: 0,
                renewal_ewma_ms: 0,
                latency_ewma_ms: None,
                failure_ewma: 0.0,
                jitter: Jitter::new(seed),
                counters: Counters::default(),
                invalid_since_ms: None,
                ever_issued: false,
            }),
            wake: Notify::new(),
            close_signal: Notify::new(),
            changed: Notify::new(),
            closed: AtomicBool::new(false),
            events: EventHub::default(),
            keeper_events,
        }
    }

    fn event(&self, at_ms: i64, kind: EventKind) -> Event {
        Event {
            session_id: self.id,
            session: self.spec.clone(),
            at_ms,
            kind,
        }
    }

    fn emit_all(&self, events: Vec<Event>) {
        for e in events {
            self.events.emit(&e);
            self.keeper_events.emit(&e);
        }
    }

    // ---- fast path -------------------------------------------------------------------------

    #[inline]
    pub(crate) fn current(&self) -> Option<IssuedToken> {
        // Never behind the true time: may call a token expired a few ms early, never late.
        let now = self.clock.now_unix_ms_fast();
        let guard = self.current.read();
        match guard.as_ref() {
            Some(t) if now < t.expires_at_ms => Some(t.clone()),
            _ => None,
        }
    }

    // ---- requests from callers ---------------------------------------------------------------

    /// Waits for the outcome of the next completed fetch, after recording `reason` (if the
    /// driver is not already fetching). `None`: `token()` semantics (fetch only when needed, and
    /// wait across retryable failures up to the policy's `token_wait`).
    pub(crate) async fn request(&self, reason: Option<FetchReason>) -> Result<IssuedToken, Error> {
        if reason.is_none() {
            if let Some(t) = self.current() {
                return Ok(t);
            }
        }
        let notified = self.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let mut seq0;
        let wait_until;
        {
            let mut inner = self.inner.lock();
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            let now = self.clock.now_unix_ms();
            wait_until = now.saturating_add(ms(self.policy.token_wait));
            match reason {
                None => {
                    if let Some(t) = self.current() {
                        return Ok(t);
                    }
                    if let Some(f) = &inner.fatal {
                        return Err(f.clone());
                    }
                    if let (Some(nbf), Some(_)) = (inner.not_before_ms, &inner.token) {
                        if now < nbf {
                            return Err(Error::NotYetValid { starts_at_ms: nbf });
                        }
                    }
                    // A pending retry is the driver's to make; otherwise ask for a fetch.
                    let retry_pending = inner.next_retry_at_ms.is_some_and(|at| at > now);
                    if !inner.fetching && !retry_pending {
                        let r = if inner.ever_issued {
                            FetchReason::Emergency
                        } else {
                            FetchReason::Initial
                        };
                        inner.pending = Some(merge(inner.pending, r));
                    }
                }
                Some(r) => {
                    if r == FetchReason::Forced {
                        inner.fatal = None;
                    } else if let Some(f) = &inner.fatal {
                        return Err(f.clone());
                    }
                    if inner.retry_floor_ms > now {
                        return Err(retry_error(&inner, inner.retry_floor_ms - now));
                    }
                    if !inner.fetching {
                        inner.pending = Some(merge(inner.pending, r));
                        if let Some(at) = inner.next_retry_at_ms.as_mut() {
                            *at = (*at).min(now);
                        }
                    }
                }
            }
            seq0 = inner.completed;
        }
        self.wake.notify_one();
        // `token()` gives up waiting at `wait_until` (with no wait limit, after the next outcome);
        // the other requests take the next outcome.
        let limited = reason.is_none() && !self.policy.token_wait.is_zero();
        let give_up = self.clock.sleep_until_unix_ms(wait_until);
        tokio::pin!(give_up);
        loop {
            let timed_out = tokio::select! {
                biased;
                () = notified.as_mut() => false,
                () = give_up.as_mut(), if limited => true,
            };
            let inner = self.inner.lock();
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            let now = self.clock.now_unix_ms();
            if reason.is_none() {
                if let Some(t) = self.current() {
                    return Ok(t);
                }
                if let Some(f) = &inner.fatal {
                    return Err(f.clone());
                }
            }
            if inner.completed > seq0 {
                match &inner.last_outcome {
                    Some(Ok(t)) => return Ok(t.clone()),
                    Some(Err(e)) if reason.is_some() || !keeps_waiting(e) || now >= wait_until => {
                        return Err(e.clone());
                    }
                    _ => seq0 = inner.completed,
                }
            }
            if timed_out {
                return Err(waited_error(&inner, now));
            }
            notified.set(self.changed.notified());
            notified.as_mut().enable();
        }
    }

    /// The host reports the engine's "token expired" or a server rejection.
    pub(crate) async fn report_bad_token(&self, rejected: bool) -> Result<IssuedToken, Error> {
        let mut events = Vec::new();
        {
            let mut inner = self.inner.lock();
            let now = self.clock.now_unix_ms();
            // A second report about a token already dropped (engines repeat their callbacks)
            // joins the refetch without counting again.
            let published = self.current.read().is_some();
            if rejected && published {
                let fresh = inner.token.as_ref().is_some_and(|t| {
                    now - t.received_at_ms <= ms(self.policy.fresh_rejection_window)
                });
                inner.counters.rejections += 1;
                events.push(self.event(now, EventKind::Rejected { fresh }));
                if fresh {
                    inner.fresh_rejections += 1;
                } else {
                    inner.fresh_rejections = 0;
                }
                tracing::warn!(
                    session = self.id,
                    fresh,
                    streak = inner.fresh_rejections,
                    "token rejected by server"
                );
                if inner.fresh_rejections >= 2 {
                    let error = Error::Rejected {
                        message: format!(
                            "{} fresh tokens for {} were rejected within {:?} of issue; check the app id, certificate, channel and user on both sides",
                            inner.fresh_rejections, self.spec, self.policy.fresh_rejection_window
                        ),
                    };
                    self.unpublish(&mut inner, now, &mut events);
                    self.fail(&mut inner, now, error.clone(), &mut events);
                    drop(inner);
                    self.emit_all(events);
                    return Err(error);
                }
            } else if !rejected {
                tracing::info!(session = self.id, "host reported token expired");
            }
            self.unpublish(&mut inner, now, &mut events);
        }
        self.emit_all(events);
        let reason = if rejected {
            FetchReason::Rejected
        } else {
            FetchReason::Emergency
        };
        self.request(Some(reason)).await
    }

    /// Drops the published token (it is known bad) and records the start of an invalid window.
    fn unpublish(&self, inner: &mut Inner, now: i64, events: &mut Vec<Event>) {
        let had = self.current.write().take();
        if let Some(t) = had {
            if !inner.expired_reported {
                inner.expired_reported = true;
                let at = now.min(t.expires_at_ms);
                inner.invalid_since_ms = Some(at);
                events.push(self.event(now, EventKind::Expired { expired_at_ms: at }));
            }
            inner.state = SessionState::Expired;
        }
    }

    /// Cuts a pending backoff short (not below a server's `Retry-After`) and wakes the driver to
    /// re-check wall-clock deadlines.
    pub(crate) fn nudge(&self) {
        {
            let mut inner = self.inner.lock();
            let now = self.clock.now_unix_ms();
            let floor = inner.retry_floor_ms;
            if let Some(at) = inner.next_retry_at_ms.as_mut() {
                *at = (*at).min(now.max(floor));
            }
        }
        self.wake.notify_one();
    }

    pub(crate) fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let now = self.clock.now_unix_ms();
        {
            let mut inner = self.inner.lock();
            inner.state = SessionState::Closed;
            inner.pending = None;
        }
        self.current.write().take();
        tracing::info!(session = self.id, "session closed");
        self.wake.notify_one();
        self.close_signal.notify_one();
        self.changed.notify_waiters();
        self.emit_all(vec![self.event(now, EventKind::Closed)]);
        self.events.close();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn state(&self) -> SessionState {
        let inner = self.inner.lock();
        let now = self.clock.now_unix_ms();
        match (inner.state, &inner.token) {
            (SessionState::Valid | SessionState::Renewing, Some(t)) if now >= t.expires_at_ms => {
                SessionState::Expired
            }
            (s, _) => s,
        }
    }

    pub(crate) fn counters(&self) -> Counters {
        self.inner.lock().counters
    }

    pub(crate) fn spec(&self) -> &SessionSpec {
        &self.spec
    }

    pub(crate) fn add_listener(&self, l: Arc<dyn EventListener>) -> ListenerId {
        self.events.add(l)
    }

    pub(crate) fn remove_listener(&self, id: ListenerId) -> bool {
        self.events.remove(id)
    }

    pub(crate) fn subscribe(&self) -> EventStream {
        self.events.subscribe()
    }

    // ---- the driver ----------------------------------------------------------------------------

    pub(crate) async fn drive(self: Arc<Self>) {
        let span = tracing::info_span!("token_session", id = self.id, session = %self.spec);
        async move {
            tracing::debug!("session driver started");
            loop {
                let (plan, events) = self.plan();
                self.emit_all(events);
                match plan {
                    Plan::Exit => break,
                    Plan::Wait(deadline) => {
                        let wake = self.wake.notified();
                        match deadline {
                            Some(d) => {
                                let sleep = self.clock.sleep_until_unix_ms(d);
                                tokio::select! {
                                    biased;
                                    _ = wake => {}
                                    _ = sleep => {}
                                }
                            }
                            None => wake.await,
                        }
                    }
                    // Boxed: the (large) fetch state exists only while fetching, keeping idle
                    // sessions small.
                    Plan::Fetch(request) => Box::pin(self.run_fetch(request)).await,
                }
            }
            tracing::debug!("session driver stopped");
        }
        .instrument(span)
        .await
    }

    fn plan(&self) -> (Plan, Vec<Event>) {
        let mut events = Vec::new();
        if self.is_closed() {
            return (Plan::Exit, events);
        }
        let mut inner = self.inner.lock();
        let now = self.clock.now_unix_ms();
        let mut wake_at: Option<i64> = None;
        let soonest = |t: i64, w: &mut Option<i64>| *w = Some(w.map_or(t, |x| x.min(t)));

        // Token timeline: not-yet-valid → valid → expired.
        if let Some(tok) = inner.token.clone() {
            if let Some(nbf) = inner.not_before_ms {
                if now < nbf {
                    soonest(nbf, &mut wake_at);
                } else if !inner.expired_reported && now < tok.expires_at_ms {
                    inner.not_before_ms = None;
                    *self.current.write() = Some(tok.clone());
                    inner.state = SessionState::Valid;
                    tracing::info!(expires_at_ms = tok.expires_at_ms, "held token became valid");
                    events.push(self.event(
                        now,
                        EventKind::BecameValid {
                            expires_at_ms: tok.expires_at_ms,
                        },
                    ));
                }
            }
            if now >= tok.expires_at_ms && !inner.expired_reported {
                inner.expired_reported = true;
                self.current.write().take();
                inner.invalid_since_ms = Some(tok.expires_at_ms);
                if inner.fatal.is_none() {
                    inner.state = SessionState::Expired;
                }
                tracing::warn!(
                    expired_at_ms = tok.expires_at_ms,
                    "token expired before renewal"
                );
                events.push(self.event(
                    now,
                    EventKind::Expired {
                        expired_at_ms: tok.expires_at_ms,
                    },
                ));
                if inner.fatal.is_none() && inner.not_before_ms.is_none() {
                    inner.pending = Some(merge(inner.pending, FetchReason::Emergency));
                }
            } else if !inner.expired_reported {
                soonest(tok.expires_at_ms, &mut wake_at);
            }
        }

        if inner.fatal.is_some() {
            inner.pending = None;
            inner.cycle = None;
            return (
                Plan::Wait(wake_at.filter(|_| inner.token.is_some())),
                events,
            );
        }

        // Backoff.
        if let Some(at) = inner.next_retry_at_ms {
            if now < at {
                soonest(at, &mut wake_at);
                return (Plan::Wait(wake_at), events);
            }
            inner.next_retry_at_ms = None;
        }

        let valid = inner.token.as_ref().is_some_and(|t| now < t.expires_at_ms)
            && !inner.expired_reported
            && inner.not_before_ms.is_none();
        let mut reason = inner.pending.take();
        if let Some(c) = inner.cycle {
            reason = Some(merge(reason, c));
        }
        if reason.is_none() && valid && now >= inner.renew_at_ms {
            reason = Some(FetchReason::Scheduled);
        }
        let Some(mut reason) = reason else {
            if valid {
                soonest(inner.renew_at_ms, &mut wake_at);
            }
            return (Plan::Wait(wake_at), events);
        };
        // A retrying scheduled renewal becomes an emergency once the token is gone.
        if reason == FetchReason::Scheduled && !valid {
            reason = FetchReason::Emergency;
        }
        if inner.cycle.is_none() {
            inner.cycle_started_ms = now;
            tracing::debug!(reason = reason.as_str(), "fetch cycle started");
            if reason == FetchReason::Scheduled {
                if let Some(t) = &inner.token {
                    events.push(self.event(
                        now,
                        EventKind::WillExpire {
                            expires_at_ms: t.expires_at_ms,
                        },
                    ));
                }
            }
        }
        inner.cycle = Some(reason);
        inner.state = match (valid, inner.ever_issued) {
            (true, _) => SessionState::Renewing,
            (false, true) => SessionState::Expired,
            (false, false) => SessionState::Fetching,
        };
        inner.attempt += 1;
        inner.fetching = true;
        inner.counters.fetches += 1;
        if !valid && inner.ever_issued {
            inner.counters.emergency_fetches += 1;
        }
        let request = FetchRequest {
            reason,
            session: self.spec.clone(),
            attempt: inner.attempt,
            credentials: inner.credentials.clone(),
            previous: inner.token.as_ref().map(|t| t.token.clone()),
            timeout: self.policy.fetch_timeout,
        };
        (Plan::Fetch(request), events)
    }

    /// Runs a credential-store call with the fetch timeout: a keychain that never answers is a
    /// failed save, not a stuck session.
    async fn bounded<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, crate::store::StoreError>>,
    ) -> Result<T, crate::store::StoreError> {
        let timeout = self.policy.fetch_timeout;
        tokio::select! {
            r = op => r,
            _ = self.clock.sleep(timeout) => Err(crate::store::StoreError::new(format!(
                "no answer within {timeout:?} (policy fetch_timeout)"
            ))),
        }
    }

    async fn run_fetch(&self, mut request: FetchRequest) {
        let reason = request.reason;
        let attempt = request.attempt;
        let span = tracing::info_span!("token_fetch", reason = reason.as_str(), attempt);
        let started_mono = self.clock.monotonic();
        let started_wall = self.clock.now_unix_ms();
        tracing::debug!(parent: &span, "fetching token");

        // Load stored credentials once, before the first fetch that could use them.
        let needs_load = {
            let inner = self.inner.lock();
            !inner.credentials_loaded && self.store.is_some() && self.credentials_key.is_some()
        };
        if needs_load {
            if let (Some(store), Some(key)) = (&self.store, &self.credentials_key) {
                match self.bounded(store.load(key)).await {
                    Ok(c) => {
                        let mut inner = self.inner.lock();
                        inner.credentials_loaded = true;
                        if inner.credentials.is_none() {
                            inner.credentials = c.clone();
                        }
                        request.credentials = inner.credentials.clone();
                    }
                    Err(e) => {
                        let err = Error::StoreFailed {
                            message: format!("loading `{key}`: {}", e.message),
                        };
                        self.complete(
                            Err(Failure::Public(err)),
                            started_wall,
                            started_mono,
                            reason,
                        );
                        return;
                    }
                }
            }
        }

        // Kept to scrub them from the source's error text (it may quote a backend answer).
        let previous = request.previous.clone();
        let credentials = request.credentials.clone();
        let timeout = self.policy.fetch_timeout;
        let fetch = self.source.fetch(request).instrument(span.clone());
        let sleep = self.clock.sleep(timeout);
        let closed = self.close_signal.notified();
        let result = tokio::select! {
            r = fetch => r,
            _ = sleep => Err(SourceError::timeout(format!("no answer within {timeout:?} (policy fetch_timeout)"))),
            _ = closed => return,
        };
        if self.is_closed() {
            return;
        }

        let result = match result {
            Ok(fetched) => {
                // Persist rotated credentials before anything else: a token may be refused
                // below, but the rotation already happened on the server.
                let mut save_error = None;
                if let Some(rotated) = fetched.rotated.clone() {
                    self.inner.lock().credentials = Some(rotated.clone());
                    if let (Some(store), Some(key)) = (&self.store, &self.credentials_key) {
                        if let Err(e) = self.bounded(store.save(key, &rotated)).await {
                            save_error = Some(Error::StoreFailed {
                                message: format!("saving `{key}`: {}", e.message),
                            });
                        } else {
                            tracing::debug!(parent: &span, "rotated credentials saved");
                        }
                    }
                }
                match save_error {
                    Some(e) => Err(Failure::Public(e)),
                    None => Ok(fetched),
                }
            }
            Err(e) => {
                let secrets = [
                    previous.as_ref().map_or("", |t| t.expose()),
                    credentials.as_ref().map_or("", |c| c.expose()),
                ];
                Err(Failure::Source(e.redact(&secrets)))
            }
        };
        self.complete(result, started_wall, started_mono, reason);
    }

    fn complete(
        &self,
        result: Result<FetchedToken, Failure>,
        started_wall: i64,
        started_mono: Duration,
        reason: FetchReason,
    ) {
        let mut events = Vec::new();
        let mut inner = self.inner.lock();
        let now = self.clock.now_unix_ms();
        let latency = self.clock.monotonic().saturating_sub(started_mono);
        inner.fetching = false;
        inner.counters.last_fetch_latency = Some(latency);
        inner.latency_ewma_ms = Some(match inner.latency_ewma_ms {
            Some(old) => (old * 3 + ms(latency)) / 4,
            None => ms(latency),
        });

        let accepted = result.and_then(|f| {
            self.accept(&mut inner, f, started_wall, now)
                .map_err(Failure::Source)
        });
        let failed = match &accepted {
            Ok(_) => 0.0,
            Err(_) => 1.0,
        };
        inner.failure_ewma += (failed - inner.failure_ewma) / FAILURE_EWMA_WEIGHT;
        let outcome = match accepted {
            Ok((issued, nbf, lifetime_ms)) => self.install(
                &mut inner,
                issued,
                nbf,
                lifetime_ms,
                now,
                latency,
                reason,
                &mut events,
            ),
            Err(failure) => {
                let error = match &failure {
                    Failure::Source(e) => Error::from_source(e),
                    Failure::Public(e) => e.clone(),
                };
                let retry_after = match &failure {
                    Failure::Source(e) => e.retry_after(),
                    Failure::Public(_) => None,
                };
                let rate_limited = matches!(
                    &failure,
                    Failure::Source(SourceError::RetryLater {
                        kind: RetryKind::RateLimited,
                        ..
                    })
                );
                inner.counters.failures += 1;
                if error.is_fatal() {
                    if matches!(error, Error::Revoked { .. }) {
                        self.unpublish(&mut inner, now, &mut events);
                    }
                    self.fail(&mut inner, now, error.clone(), &mut events);
                    Err(error)
                } else {
                    self.schedule_retry(
                        &mut inner,
                        now,
                        reason,
                        error,
                        (retry_after, rate_limited),
                        &mut events,
                    )
                }
            }
        };
        inner.completed += 1;
        inner.last_outcome = Some(outcome);
        drop(inner);
        self.changed.notify_waiters();
        self.emit_all(events);
    }

    /// Validates a fetched token and works out its device-clock times.
    fn accept(
        &self,
        inner: &mut Inner,
        fetched: FetchedToken,
        started_wall: i64,
        now: i64,
    ) -> Result<(IssuedToken, Option<i64>, i64), SourceError> {
        let bad = |message: String| SourceError::RetryLater {
            kind: RetryKind::BadToken,
            retry_after: None,
            message,
        };
        if fetched.token.is_empty() {
            return Err(bad("the source returned an empty token".into()));
        }
        if inner
            .token
            .as_ref()
            .is_some_and(|t| t.token == fetched.token)
        {
            return Err(bad(
                "the source returned the same token again instead of a fresh one".into(),
            ));
        }
        let decoded = expiry::decode(fetched.token.expose());

        // Device clock skew (server minus device), most trusted hint first.
        if let Some(server) = fetched.server_time_ms {
            inner.skew_ms = server - now;
        } else if let Some(issued) = fetched.issued_at_ms {
            inner.skew_ms = issued - now;
        } else if let Some(iat) = decoded.as_ref().and_then(|d| d.issued_at_ms) {
            let skew = iat - now;
            if skew.abs() > 2_000 {
                inner.skew_ms = skew;
            }
        }
        let skew = inner.skew_ms;

        let mut expires: Option<i64> = None;
        let mut earliest = |t: i64| expires = Some(expires.map_or(t, |e| e.min(t)));
        if let Some(exp) = decoded.as_ref().and_then(|d| d.expires_at_ms) {
            earliest(exp - skew);
        }
        if let Some(exp) = fetched.expires_at_ms {
            earliest(exp - skew);
        }
        if let Some(d) = fetched.expires_in {
            earliest(started_wall.saturating_add(ms(d)));
        }
        let expires_at_ms =
            expires.unwrap_or_else(|| now.saturating_add(ms(self.policy.assumed_lifetime)));
        let not_before = decoded
            .as_ref()
            .and_then(|d| d.not_before_ms)
            .map(|n| n - skew)
            .filter(|n| *n > now);
        let start = not_before.unwrap_or(now);
        if expires_at_ms <= now {
            return Err(bad(format!(
                "the source returned an already-expired token (expired {} ms ago after clock correction)",
                now - expires_at_ms
            )));
        }
        let remaining = expires_at_ms - start;
        let lead = ms(self.policy.renew_lead).max(1_000);
        if remaining < lead {
            return Err(bad(format!(
                "the source returned a token valid for only {remaining} ms, less than the renewal lead of {lead} ms (policy renew_lead)"
            )));
        }
        let issued_at = decoded
            .as_ref()
            .and_then(|d| d.issued_at_ms)
            .map(|i| i - skew)
            .or(fetched.issued_at_ms.map(|i| i - skew))
            .unwrap_or(start)
            .min(start);
        let lifetime_ms = expires_at_ms - issued_at;
        let issued = IssuedToken {
            token: fetched.token,
            expires_at_ms,
            received_at_ms: now,
            reason: inner.cycle.unwrap_or(FetchReason::Initial),
        };
        Ok((issued, not_before, lifetime_ms))
    }

    #[allow(clippy::too_many_arguments)]
    fn install(
        &self,
        inner: &mut Inner,
        issued: IssuedToken,
        not_before: Option<i64>,
        lifetime_ms: i64,
        now: i64,
        latency: Duration,
        reason: FetchReason,
        events: &mut Vec<Event>,
    ) -> Result<IssuedToken, Error> {
        // Adaptive lead: remember how long this cycle took (incl. retries).
        let cycle_ms = (now - inner.cycle_started_ms).max(ms(latency)).max(0);
        inner.renewal_ewma_ms = (inner.renewal_ewma_ms * 3 + cycle_ms) / 4;
        let lead = ms(self.policy.adaptive_lead_for(
            dur(lifetime_ms),
            dur(inner.renewal_ewma_ms),
            dur(inner.latency_ewma_ms.unwrap_or(0)),
            inner.failure_ewma,
        ));
        let jitter = ms(self.policy.jitter_for(dur(lead)));
        let jitter = (inner.jitter.unit() * jitter as f64) as i64;
        let start = not_before.unwrap_or(now);
        // Every token is used for at least a twentieth of its life: no back-to-back renewals.
        inner.renew_at_ms = (issued.expires_at_ms - lead - jitter).max(start + lifetime_ms / 20);

        if inner.ever_issued {
            inner.counters.renewals += 1;
        }
        inner.ever_issued = true;
        if let Some(since) = inner.invalid_since_ms.take() {
            inner.counters.expired_ms += (now - since).max(0).unsigned_abs();
        }
        inner.token = Some(issued.clone());
        inner.not_before_ms = not_before;
        inner.expired_reported = false;
        inner.attempt = 0;
        inner.cycle = None;
        inner.next_retry_at_ms = None;
        inner.pending = None;
        tracing::info!(
            reason = reason.as_str(),
            expires_at_ms = issued.expires_at_ms,
            renew_at_ms = inner.renew_at_ms,
            latency_ms = ms(latency),
            "token issued"
        );
        events.push(self.event(
            now,
            EventKind::Issued {
                reason,
                expires_at_ms: issued.expires_at_ms,
                renew_at_ms: inner.renew_at_ms,
                fetch_latency: latency,
            },
        ));
        match not_before {
            Some(nbf) => {
                self.current.write().take();
                inner.state = SessionState::NotYetValid;
                events.push(self.event(now, EventKind::NotYetValid { starts_at_ms: nbf }));
                Err(Error::NotYetValid { starts_at_ms: nbf })
            }
            None => {
                *self.current.write() = Some(issued.clone());
                inner.state = SessionState::Valid;
                Ok(issued)
            }
        }
    }

    fn schedule_retry(
        &self,
        inner: &mut Inner,
        now: i64,
        reason: FetchReason,
        error: Error,
        (retry_after, rate_limited): (Option<Duration>, bool),
        events: &mut Vec<Event>,
    ) -> Result<IssuedToken, Error> {
        // Deadline-aware: while the token is valid, retries are paced to fit before its expiry
        // (see `Policy`, "Deadline-aware retry").
        let valid_for = inner
            .token
            .as_ref()
            .filter(|t| {
                now < t.expires_at_ms && !inner.expired_reported && inner.not_before_ms.is_none()
            })
            .map(|t| dur(t.expires_at_ms - now));
        let unit = inner.jitter.unit();
        let (delay, imposed) = self.policy.retry_delay(
            inner.attempt,
            unit,
            valid_for,
            dur(inner.latency_ewma_ms.unwrap_or(0)),
            inner.failure_ewma,
            retry_after,
            rate_limited,
        );
        let delay = ms(delay);
        if let Some(imposed) = imposed {
            inner.retry_floor_ms = now + ms(imposed);
        }
        let next = now + delay;
        inner.next_retry_at_ms = Some(next);
        tracing::warn!(
            attempt = inner.attempt,
            next_retry_in_ms = delay,
            error = %error,
            "token fetch failed; retrying"
        );
        events.push(self.event(
            now,
            EventKind::FetchFailed {
                reason,
                attempt: inner.attempt,
                error: error.clone(),
                next_retry_at_ms: next,
            },
        ));
        match error {
            Error::RetryLater { message, .. } => Err(Error::RetryLater {
                retry_after: Some(dur(delay)),
                message,
            }),
            other => Err(other),
        }
    }

    fn fail(&self, inner: &mut Inner, now: i64, error: Error, events: &mut Vec<Event>) {
        tracing::error!(error = %error, "token session failed; retries stopped");
        inner.fatal = Some(error.clone());
        inner.state = SessionState::Failed;
        inner.pending = None;
        inner.cycle = None;
        inner.attempt = 0;
        inner.next_retry_at_ms = None;
        let kind = match error {
            Error::ReauthRequired { message } => EventKind::ReauthRequired { message },
            Error::Revoked { reason } => EventKind::Revoked { reason },
            error => EventKind::Failed { error },
        };
        events.push(self.event(now, kind));
    }
}

enum Failure {
    Source(SourceError),
    Public(Error),
}

/// Weight of a new attempt in the smoothed failure rate (1/16).
const FAILURE_EWMA_WEIGHT: f64 = 16.0;

/// Whether `token()` keeps waiting after this outcome (the session retries by itself).
fn keeps_waiting(e: &Error) -> bool {
    matches!(e, Error::RetryLater { .. } | Error::StoreFailed { .. })
}

/// What `token()` returns when its wait ran out: the last failure, with the time until the
/// next attempt.
fn waited_error(inner: &Inner, now: i64) -> Error {
    match &inner.last_outcome {
        Some(Err(e @ Error::StoreFailed { .. })) => e.clone(),
        _ => retry_error(inner, inner.next_retry_at_ms.map_or(0, |at| at - now)),
    }
}

fn retry_error(inner: &Inner, wait_ms: i64) -> Error {
    let message = match &inner.last_outcome {
        Some(Err(Error::RetryLater { message, .. })) => message.clone(),
        Some(Err(other)) => other.to_string(),
        _ => "waiting for the next attempt".to_owned(),
    };
    Error::RetryLater {
        retry_after: Some(dur(wait_ms)),
        message,
    }
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
/// session.add_listener(std::sync::Arc::new(|e: &tokenkeeper::lifecycle::Event| {
///     // on EventKind::Issued: engine.renew_token(session.current()…)
///     let _ = e;
/// }));
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

impl Session {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            handle: Arc::new(Handle { shared }),
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// A valid token: the cached one if still valid (wall clock checked on every call, so a
    /// device that slept never gets a stale one), otherwise waits for one. Concurrent callers
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
    /// [`Policy::token_wait`], [`Error::StoreFailed`] when the last attempt's credentials could
    /// not be saved, [`Error::NotYetValid`] for a held scheduled token, a fatal error after
    /// re-auth/revocation/misconfiguration/repeated rejection (at once), [`Error::Closed`].
    pub async fn token(&self) -> Result<IssuedToken, Error> {
        self.shared().request(None).await
    }

    /// The cached token if it is valid now; never blocks, never fetches.
    #[inline]
    pub fn current(&self) -> Option<IssuedToken> {
        self.shared().current()
    }

    /// Renews now (e.g. from the engine's "token will expire" callback), even if the current
    /// token is still valid, and returns the new token. Clears a fatal state (call it after the
    /// user signed in again). Shares an in-flight fetch if there is one. Does not go below a
    /// server's pending `Retry-After`.
    pub async fn renew_token(&self) -> Result<IssuedToken, Error> {
        self.shared().request(Some(FetchReason::Forced)).await
    }

    /// The engine reported the token expired ("request token"): drop it and fetch at once.
    pub async fn token_expired(&self) -> Result<IssuedToken, Error> {
        self.shared().report_bad_token(false).await
    }

    /// A server rejected the current token: drop it and fetch at once. If a token is rejected
    /// within [`Policy::fresh_rejection_window`] of issue twice in a row, the session stops with
    /// [`Error::Rejected`] instead of looping.
    pub async fn token_rejected(&self) -> Result<IssuedToken, Error> {
        self.shared().report_bad_token(true).await
    }

    /// Closes the session: stops its task, cancels an in-flight fetch, ends its streams.
    pub fn close(&self) {
        self.shared().close();
    }

    /// A stream of this session's events from now on.
    pub fn subscribe(&self) -> EventStream {
        self.shared().subscribe()
    }

    /// Registers a listener called for each event of this session. A listener that captures a
    /// `Session` handle keeps the session alive until [`Session::close`] or keeper shutdown.
    pub fn add_listener(&self, listener: Arc<dyn EventListener>) -> ListenerId {
        self.shared().add_listener(listener)
    }

    /// Removes a listener; `false` if it was not registered.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.shared().remove_listener(id)
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
        self.shared().spec()
    }

    /// The session's keeper-unique id (as in [`Event::session_id`]).
    pub fn id(&self) -> u64 {
        self.shared().id
    }
}
