//! Session events: a host listener (callback) and a pull subscription that the Kotlin `Flow`,
//! Swift `AsyncStream` and Python async-iterator helpers are built on.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use tokenkeeper::lifecycle as core;

use crate::error::TokenKeeperError;
use crate::host::{FetchReason, SessionSpec};
use crate::runtime;
use crate::time::instant;

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SessionState {
    /// Opened, nothing fetched yet.
    Idle,
    /// Fetching (or retrying) a first token.
    Fetching,
    /// Holding a valid token; renewal scheduled.
    Valid,
    /// Holding a valid token while renewing it.
    Renewing,
    /// Holding a token that becomes valid later (`nbf` in the future).
    NotYetValid,
    /// The token expired; an emergency fetch is running or retrying.
    Expired,
    /// Stopped after a fatal error (re-auth, forbidden, misconfigured, repeated rejection).
    Failed,
    /// Closed.
    Closed,
}

impl From<core::SessionState> for SessionState {
    fn from(s: core::SessionState) -> Self {
        match s {
            core::SessionState::Idle => Self::Idle,
            core::SessionState::Fetching => Self::Fetching,
            core::SessionState::Valid => Self::Valid,
            core::SessionState::Renewing => Self::Renewing,
            core::SessionState::NotYetValid => Self::NotYetValid,
            core::SessionState::Expired => Self::Expired,
            core::SessionState::Failed => Self::Failed,
            core::SessionState::Closed => Self::Closed,
        }
    }
}

/// What happened. Times are the device's clock (corrected for server clock skew).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum EventKind {
    /// A new token was accepted. With a sink it is handed to the engine next (`Applied`);
    /// without one, pass it to your engine (`renewToken`).
    Issued {
        /// Why it was fetched.
        reason: FetchReason,
        /// When it expires.
        expires_at: SystemTime,
        /// When its renewal starts.
        renew_at: SystemTime,
        /// How long the fetch took.
        fetch_latency: Duration,
    },
    /// The accepted token becomes valid only at `starts_at`; it is held until then.
    NotYetValid {
        /// When it becomes valid.
        starts_at: SystemTime,
    },
    /// A held token became valid.
    BecameValid {
        /// When it expires.
        expires_at: SystemTime,
    },
    /// Scheduled renewal started: the current token expires soon.
    WillExpire {
        /// When the current token expires.
        expires_at: SystemTime,
    },
    /// The token expired before a replacement arrived.
    Expired {
        /// When it expired.
        expired_at: SystemTime,
    },
    /// A fetch failed; another attempt is scheduled.
    FetchFailed {
        /// Why the fetch was made.
        reason: FetchReason,
        /// Consecutive failures in this cycle (1, 2, …).
        attempt: u32,
        /// What failed.
        error: TokenKeeperError,
        /// When the next attempt is due.
        next_retry_at: SystemTime,
    },
    /// A server rejected the current token (`tokenRejected()`).
    Rejected {
        /// Whether it had just been issued.
        fresh: bool,
    },
    /// The sink handed a new token to the engine.
    Applied {
        /// When that token expires.
        expires_at: SystemTime,
    },
    /// The sink could not hand a token to the engine; it is retried (a fresh token the engine
    /// keeps refusing is treated as rejected).
    ApplyFailed {
        /// Consecutive failures for this token (1, 2, …).
        attempt: u32,
        /// What the engine said.
        message: String,
    },
    /// Rotated credentials (a refresh token) could not be saved. The token that came with them
    /// was handed out anyway; the credentials stay in memory and the save is retried. Check
    /// your credential store (a locked keychain).
    StoreFailed {
        /// What the store said.
        message: String,
    },
    /// Fatal: sign the user in again, then call `setCredentials()` or `renewToken()`.
    ReauthRequired {
        /// What the backend said.
        message: String,
    },
    /// Fatal: access forbidden or revoked (banned, stream ended). Leave the channel.
    Forbidden {
        /// Why.
        reason: String,
    },
    /// Fatal for another reason (misconfigured, repeated rejection).
    Failed {
        /// The error.
        error: TokenKeeperError,
    },
    /// The session was closed. Its event streams end after this.
    Closed,
}

/// One change in a session.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SessionEvent {
    /// The session's keeper-unique id (`Session.id()`).
    pub session_id: u64,
    /// The session's channel, user, role.
    pub session: SessionSpec,
    /// When it happened (device clock).
    pub at: SystemTime,
    /// What happened.
    pub kind: EventKind,
}

impl From<&core::Event> for SessionEvent {
    fn from(e: &core::Event) -> Self {
        use core::EventKind as K;
        let kind = match &e.kind {
            K::Issued {
                reason,
                expires_at_ms,
                renew_at_ms,
                fetch_latency,
            } => EventKind::Issued {
                reason: (*reason).into(),
                expires_at: instant(*expires_at_ms),
                renew_at: instant(*renew_at_ms),
                fetch_latency: *fetch_latency,
            },
            K::NotYetValid { starts_at_ms } => EventKind::NotYetValid {
                starts_at: instant(*starts_at_ms),
            },
            K::BecameValid { expires_at_ms } => EventKind::BecameValid {
                expires_at: instant(*expires_at_ms),
            },
            K::WillExpire { expires_at_ms } => EventKind::WillExpire {
                expires_at: instant(*expires_at_ms),
            },
            K::Expired { expired_at_ms } => EventKind::Expired {
                expired_at: instant(*expired_at_ms),
            },
            K::FetchFailed {
                reason,
                attempt,
                error,
                next_retry_at_ms,
            } => EventKind::FetchFailed {
                reason: (*reason).into(),
                attempt: *attempt,
                error: error.clone().into(),
                next_retry_at: instant(*next_retry_at_ms),
            },
            K::Rejected { fresh } => EventKind::Rejected { fresh: *fresh },
            K::Applied { expires_at_ms } => EventKind::Applied {
                expires_at: instant(*expires_at_ms),
            },
            K::ApplyFailed { attempt, message } => EventKind::ApplyFailed {
                attempt: *attempt,
                message: message.clone(),
            },
            K::StoreFailed { message } => EventKind::StoreFailed {
                message: message.clone(),
            },
            K::ReauthRequired { message } => EventKind::ReauthRequired {
                message: message.clone(),
            },
            K::Forbidden { reason } => EventKind::Forbidden {
                reason: reason.clone(),
            },
            K::Failed { error } => EventKind::Failed {
                error: error.clone().into(),
            },
            K::Closed => EventKind::Closed,
        };
        Self {
            session_id: e.session_id,
            session: e.session.as_ref().into(),
            at: instant(e.at_ms),
            kind,
        }
    }
}

/// Where a session is and what it holds: the value replaying state streams carry (Kotlin
/// `StateFlow`, Swift `AsyncStream`, Python `async for`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SessionStatus {
    /// Where the session is.
    pub state: SessionState,
    /// When the current valid token expires, if there is one.
    pub expires_at: Option<SystemTime>,
    /// What stopped the session, in state `Failed`.
    pub error: Option<TokenKeeperError>,
}

impl From<core::Status> for SessionStatus {
    fn from(s: core::Status) -> Self {
        Self {
            state: s.state.into(),
            expires_at: s.expires_at_ms.map(instant),
            error: s.error.map(Into::into),
        }
    }
}

/// Numbers a host can read at any time.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Counters {
    /// Fetch attempts started.
    pub fetches: u64,
    /// Tokens accepted after the first one.
    pub renewals: u64,
    /// Failed attempts.
    pub failures: u64,
    /// Fetches made with no valid token held.
    pub emergency_fetches: u64,
    /// Tokens reported rejected.
    pub rejections: u64,
    /// Duration of the last completed fetch.
    pub last_fetch_latency: Option<Duration>,
    /// Total time without a valid token after the first one.
    pub time_without_token: Duration,
    /// Saves of rotated credentials that failed or did not answer in time (each retried).
    pub store_failures: u64,
    /// Times the session's driver restarted after a panic (a bug: please report it).
    pub driver_restarts: u64,
    /// Tokens the sink handed to the engine.
    pub applies: u64,
    /// Failed hand-overs to the engine (each retried).
    pub apply_failures: u64,
}

impl From<core::Counters> for Counters {
    fn from(c: core::Counters) -> Self {
        Self {
            fetches: c.fetches,
            renewals: c.renewals,
            failures: c.failures,
            emergency_fetches: c.emergency_fetches,
            rejections: c.rejections,
            last_fetch_latency: c.last_fetch_latency,
            time_without_token: Duration::from_millis(c.expired_ms),
            store_failures: c.store_failures,
            driver_restarts: c.driver_restarts,
            applies: c.applies,
            apply_failures: c.apply_failures,
        }
    }
}

/// Receives events, in order, on the SDK's event thread, never on the renewal path: a listener
/// that is slow, blocks or throws delays only later events, never a renewal. An exception it
/// throws is logged and the listener keeps receiving events.
#[uniffi::export(foreign)]
pub trait EventListener: Send + Sync {
    /// Called once per event.
    ///
    /// # Errors
    /// Whatever the host throws; it is logged and ignored.
    fn on_event(&self, event: SessionEvent) -> Result<(), TokenKeeperError>;
}

/// Plugs a host [`EventListener`] into the core.
pub(crate) struct HostListener(pub(crate) Arc<dyn EventListener>);

impl core::EventListener for HostListener {
    fn on_event(&self, event: &core::Event) {
        if let Err(e) = self.0.on_event(event.into()) {
            tracing::warn!(error = %e, "an event listener threw; it keeps receiving events");
        }
    }
}

/// What a [`ListenerRegistration`] removes itself from.
pub(crate) enum ListenerTarget {
    Keeper(std::sync::Weak<crate::keeper::Keeper>),
    Session(std::sync::Weak<crate::keeper::Session>),
}

/// Returned by `addListener`: call `remove()` to stop receiving events. The listener also stops
/// when its session or keeper closes.
#[derive(uniffi::Object)]
pub struct ListenerRegistration {
    pub(crate) target: ListenerTarget,
    pub(crate) id: core::ListenerId,
}

impl fmt::Debug for ListenerRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenerRegistration")
            .field("id", &self.id)
            .finish()
    }
}

#[uniffi::export]
impl ListenerRegistration {
    /// Removes the listener; `false` if it was already removed (or its owner is gone).
    pub fn remove(&self) -> bool {
        match &self.target {
            ListenerTarget::Keeper(k) => k.upgrade().is_some_and(|k| k.remove_listener(self.id)),
            ListenerTarget::Session(s) => s.upgrade().is_some_and(|s| s.remove_listener(self.id)),
        }
    }
}

/// A pull-based event stream from the moment of subscribing: `next()` waits for the next event
/// and returns null once the session (or keeper) closes or `cancel()` was called. Holds up to 64
/// unread events; a slower reader skips the oldest (`lagged()` counts them).
///
/// The Kotlin `events()` Flow, the Swift `events` AsyncStream and the Python `async for` helpers
/// wrap this.
#[derive(uniffi::Object)]
pub struct EventSubscription {
    stream: tokio::sync::Mutex<core::EventStream>,
    cancelled: AtomicBool,
    cancel: tokio::sync::Notify,
}

impl fmt::Debug for EventSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSubscription")
            .field("cancelled", &self.cancelled.load(Ordering::Relaxed))
            .finish()
    }
}

impl EventSubscription {
    pub(crate) fn new(stream: core::EventStream) -> Arc<Self> {
        Arc::new(Self {
            stream: tokio::sync::Mutex::new(stream),
            cancelled: AtomicBool::new(false),
            cancel: tokio::sync::Notify::new(),
        })
    }
}

#[uniffi::export]
impl EventSubscription {
    /// The next event, or null when the stream ended (closed or cancelled).
    ///
    /// # Errors
    /// [`TokenKeeperError::Internal`] if the SDK runtime cannot start.
    pub async fn next(self: Arc<Self>) -> Result<Option<SessionEvent>, TokenKeeperError> {
        runtime::run(async move {
            let cancelled = self.cancel.notified();
            tokio::pin!(cancelled);
            cancelled.as_mut().enable();
            if self.cancelled.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let mut stream = self.stream.lock().await;
            tokio::select! {
                event = stream.recv() => Ok(event.as_ref().map(SessionEvent::from)),
                () = cancelled => Ok(None),
            }
        })
        .await
    }

    /// Ends the stream: a pending and every later `next()` returns null.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.cancel.notify_waiters();
    }

    /// Events skipped so far because this reader fell more than 64 behind (reads 0 while a
    /// `next()` is pending).
    pub fn lagged(&self) -> u64 {
        self.stream.try_lock().map_or(0, |s| s.lagged())
    }
}

/// A session's status, replayed: the first `next()` returns the status now, each later one the
/// next change; after the `Closed` status (or `cancel()`) it returns null. The Kotlin
/// `StateFlow`, the Swift `AsyncStream` and the Python async iterator wrap this.
#[derive(uniffi::Object)]
pub struct StatusSubscription {
    rx: tokio::sync::Mutex<tokio::sync::watch::Receiver<core::Status>>,
    started: AtomicBool,
    done: AtomicBool,
    cancelled: AtomicBool,
    cancel: tokio::sync::Notify,
}

impl fmt::Debug for StatusSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusSubscription")
            .field("done", &self.done.load(Ordering::Relaxed))
            .finish()
    }
}

impl StatusSubscription {
    pub(crate) fn new(rx: tokio::sync::watch::Receiver<core::Status>) -> Arc<Self> {
        Arc::new(Self {
            rx: tokio::sync::Mutex::new(rx),
            started: AtomicBool::new(false),
            done: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
            cancel: tokio::sync::Notify::new(),
        })
    }

    fn deliver(&self, status: core::Status) -> Option<SessionStatus> {
        if status.state == core::SessionState::Closed {
            self.done.store(true, Ordering::SeqCst);
        }
        Some(status.into())
    }
}

#[uniffi::export]
impl StatusSubscription {
    /// The status now (first call), then the next change; null once the session closed (after
    /// delivering `Closed`) or the subscription was cancelled.
    ///
    /// # Errors
    /// [`TokenKeeperError::Internal`] if the SDK runtime cannot start.
    pub async fn next(self: Arc<Self>) -> Result<Option<SessionStatus>, TokenKeeperError> {
        runtime::run(async move {
            let cancelled = self.cancel.notified();
            tokio::pin!(cancelled);
            cancelled.as_mut().enable();
            if self.cancelled.load(Ordering::SeqCst) || self.done.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let mut rx = self.rx.lock().await;
            if !self.started.swap(true, Ordering::SeqCst) {
                let now = rx.borrow_and_update().clone();
                return Ok(self.deliver(now));
            }
            tokio::select! {
                changed = rx.changed() => Ok(match changed {
                    Ok(()) => {
                        let now = rx.borrow_and_update().clone();
                        self.deliver(now)
                    }
                    Err(_) => None,
                }),
                () = cancelled => Ok(None),
            }
        })
        .await
    }

    /// Ends the subscription: a pending and every later `next()` returns null.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.cancel.notify_waiters();
    }
}
