//! Session events: a host listener (callback) and a pull subscription that the Kotlin `Flow`,
//! Swift `AsyncStream` and Python async-iterator helpers are built on.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokenkeeper::lifecycle as core;

use crate::error::TokenKeeperError;
use crate::host::{FetchReason, SessionSpec};
use crate::runtime;

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

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

/// What happened. Times are device wall-clock unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum EventKind {
    /// A new token was accepted: pass it to your engine (`renewToken`).
    Issued {
        /// Why it was fetched.
        reason: FetchReason,
        /// When it expires.
        expires_at_ms: i64,
        /// When its renewal starts.
        renew_at_ms: i64,
        /// How long the fetch took.
        fetch_latency_ms: u64,
    },
    /// The accepted token becomes valid only at `starts_at_ms`; it is held until then.
    NotYetValid {
        /// When it becomes valid.
        starts_at_ms: i64,
    },
    /// A held token became valid.
    BecameValid {
        /// When it expires.
        expires_at_ms: i64,
    },
    /// Scheduled renewal started: the current token expires soon.
    WillExpire {
        /// When the current token expires.
        expires_at_ms: i64,
    },
    /// The token expired before a replacement arrived.
    Expired {
        /// When it expired.
        expired_at_ms: i64,
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
        next_retry_at_ms: i64,
    },
    /// A server rejected the current token (`tokenRejected()`).
    Rejected {
        /// Whether it had just been issued.
        fresh: bool,
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
    Revoked {
        /// Why.
        reason: String,
    },
    /// Fatal for another reason (misconfigured, repeated rejection).
    Failed {
        /// The error.
        error: TokenKeeperError,
    },
    /// The session was closed.
    Closed,
}

/// One change in a session.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SessionEvent {
    /// The session's keeper-unique id (`Session.id()`).
    pub session_id: u64,
    /// The session's channel, user, role.
    pub session: SessionSpec,
    /// When it happened, unix milliseconds.
    pub at_ms: i64,
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
                expires_at_ms: *expires_at_ms,
                renew_at_ms: *renew_at_ms,
                fetch_latency_ms: ms(*fetch_latency),
            },
            K::NotYetValid { starts_at_ms } => EventKind::NotYetValid {
                starts_at_ms: *starts_at_ms,
            },
            K::BecameValid { expires_at_ms } => EventKind::BecameValid {
                expires_at_ms: *expires_at_ms,
            },
            K::WillExpire { expires_at_ms } => EventKind::WillExpire {
                expires_at_ms: *expires_at_ms,
            },
            K::Expired { expired_at_ms } => EventKind::Expired {
                expired_at_ms: *expired_at_ms,
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
                next_retry_at_ms: *next_retry_at_ms,
            },
            K::Rejected { fresh } => EventKind::Rejected { fresh: *fresh },
            K::StoreFailed { message } => EventKind::StoreFailed {
                message: message.clone(),
            },
            K::ReauthRequired { message } => EventKind::ReauthRequired {
                message: message.clone(),
            },
            K::Revoked { reason } => EventKind::Revoked {
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
            at_ms: e.at_ms,
            kind,
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
    /// Duration of the last completed fetch, milliseconds.
    pub last_fetch_latency_ms: Option<u64>,
    /// Total time without a valid token after the first one, milliseconds.
    pub expired_ms: u64,
    /// Saves of rotated credentials that failed or did not answer in time (each retried).
    pub store_failures: u64,
    /// Times the session's driver restarted after a panic (a bug: please report it).
    pub driver_restarts: u64,
}

impl From<core::Counters> for Counters {
    fn from(c: core::Counters) -> Self {
        Self {
            fetches: c.fetches,
            renewals: c.renewals,
            failures: c.failures,
            emergency_fetches: c.emergency_fetches,
            rejections: c.rejections,
            last_fetch_latency_ms: c.last_fetch_latency.map(ms),
            expired_ms: c.expired_ms,
            store_failures: c.store_failures,
            driver_restarts: c.driver_restarts,
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
