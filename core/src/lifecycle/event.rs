//! Events, states and counters a host observes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::broadcast;

use crate::error::Error;
use crate::source::{FetchReason, SessionSpec};

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Opened, nothing fetched yet (the first `token()` fetches).
    Idle,
    /// Fetching (or retrying) a first token; no valid token.
    Fetching,
    /// Holding a valid token; next renewal scheduled.
    Valid,
    /// Holding a valid token while renewing it (including retries).
    Renewing,
    /// Holding a token whose `nbf` lies in the future; it becomes valid by itself.
    NotYetValid,
    /// The token expired (or was rejected); an emergency fetch is in progress or retrying.
    Expired,
    /// Stopped after a fatal error (re-auth, revoked, misconfigured, repeated rejection).
    Failed,
    /// Closed; no more fetches.
    Closed,
}

/// One change in a session, delivered to listeners and streams.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The session's keeper-unique id.
    pub session_id: u64,
    /// The session's spec (channel, user, …).
    pub session: Arc<SessionSpec>,
    /// When it happened (device wall clock, unix ms).
    pub at_ms: i64,
    /// What happened.
    pub kind: EventKind,
}

/// What happened. Times are device wall-clock unix milliseconds (already skew-corrected).
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// A new token was accepted (pass it to your engine: `renewToken`).
    Issued {
        /// Why it was fetched.
        reason: FetchReason,
        /// When it expires.
        expires_at_ms: i64,
        /// When the next renewal starts.
        renew_at_ms: i64,
        /// How long the fetch took.
        fetch_latency: Duration,
    },
    /// The accepted token is valid only from `starts_at_ms`; it is held until then.
    NotYetValid {
        /// When it becomes valid.
        starts_at_ms: i64,
    },
    /// A held not-yet-valid token became valid.
    BecameValid {
        /// When it expires.
        expires_at_ms: i64,
    },
    /// Scheduled renewal started: the current token expires soon.
    WillExpire {
        /// When the current token expires.
        expires_at_ms: i64,
    },
    /// The token expired (or was reported expired/rejected) before a replacement arrived.
    Expired {
        /// When it expired.
        expired_at_ms: i64,
    },
    /// A fetch failed; another attempt is scheduled.
    FetchFailed {
        /// Why the fetch was made.
        reason: FetchReason,
        /// Consecutive failed attempts so far in this cycle (1, 2, …).
        attempt: u32,
        /// What failed.
        error: Error,
        /// When the next attempt is due.
        next_retry_at_ms: i64,
    },
    /// A server rejected the current token (reported with `token_rejected()`).
    Rejected {
        /// Whether the token had just been issued ("rejected at once").
        fresh: bool,
    },
    /// The sink handed a new token to the engine.
    Applied {
        /// When it expires.
        expires_at_ms: i64,
    },
    /// The sink could not hand a token to the engine; it is retried (and a fresh token the
    /// engine keeps refusing is treated as rejected).
    ApplyFailed {
        /// Consecutive failures for this token (1, 2, …).
        attempt: u32,
        /// What the engine said (no secrets).
        message: String,
    },
    /// Rotated credentials (a refresh token) could not be saved. The token that came with them
    /// was handed out anyway (the server already rotated); the credentials are kept in memory
    /// and the save is retried in the background. Check the credential store (a locked
    /// keychain, a full disk): until a save succeeds, a restart would need a new sign-in.
    StoreFailed {
        /// What the store said (no secrets).
        message: String,
    },
    /// Fatal: the user must sign in again. No more fetches until `renew_token()`.
    ReauthRequired {
        /// What the backend said.
        message: String,
    },
    /// Fatal: access forbidden or revoked. No more fetches until `renew_token()`.
    Forbidden {
        /// Why.
        reason: String,
    },
    /// Fatal for another reason (misconfigured, repeated rejection).
    Failed {
        /// The error.
        error: Error,
    },
    /// The session was closed.
    Closed,
}

/// Numbers a host can read at any time ([`crate::lifecycle::Session::counters`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Fetch attempts started.
    pub fetches: u64,
    /// Tokens accepted after the first one.
    pub renewals: u64,
    /// Failed attempts (errors, timeouts, unusable tokens).
    pub failures: u64,
    /// Fetches made because no valid token was held (expired, reported expired or rejected).
    pub emergency_fetches: u64,
    /// Tokens reported rejected by the host.
    pub rejections: u64,
    /// Duration of the last completed fetch.
    pub last_fetch_latency: Option<Duration>,
    /// Total time, after the first token, during which no valid token was held (ms).
    pub expired_ms: u64,
    /// Saves of rotated credentials that failed or did not answer in time (each retried).
    pub store_failures: u64,
    /// Times the session's driver was restarted after a panic (a bug: please report it).
    pub driver_restarts: u64,
    /// Tokens the sink handed to the engine.
    pub applies: u64,
    /// Failed hand-overs to the engine (each retried).
    pub apply_failures: u64,
}

/// A session's status: what an app shows (and what replaying state streams carry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Where the session is.
    pub state: SessionState,
    /// When the current valid token expires (device wall clock, unix ms), if there is one.
    pub expires_at_ms: Option<i64>,
    /// The error that stopped the session, in [`SessionState::Failed`].
    pub error: Option<Error>,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            state: SessionState::Idle,
            expires_at_ms: None,
            error: None,
        }
    }
}

/// Receives events, in order, on the keeper's event thread (`tokenkeeper-events`), never on
/// the renewal path: a listener that is slow, blocks or panics delays only later events to
/// listeners, never a renewal. Calling `current()`, `state()` or `counters()` from it is fine.
/// If listeners fall more than 4,096 events behind, the oldest are dropped (and logged).
pub trait EventListener: Send + Sync {
    /// Called once per event, in order.
    fn on_event(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync> EventListener for F {
    fn on_event(&self, event: &Event) {
        self(event)
    }
}

/// Identifies a registered listener, for removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(pub(crate) u64);

/// Buffered events per stream before a slow reader starts losing the oldest.
pub(crate) const STREAM_CAPACITY: usize = 64;

/// Listener list plus a lazily created broadcast channel.
#[derive(Default)]
pub(crate) struct EventHub {
    listeners: RwLock<Vec<(u64, Arc<dyn EventListener>)>>,
    next_id: Mutex<u64>,
    tx: Mutex<Option<broadcast::Sender<Event>>>,
}

impl fmt::Debug for EventHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventHub")
            .field("listeners", &self.listeners.read().len())
            .finish()
    }
}

impl EventHub {
    pub(crate) fn add(&self, listener: Arc<dyn EventListener>) -> ListenerId {
        let mut next = self.next_id.lock();
        *next += 1;
        let id = *next;
        self.listeners.write().push((id, listener));
        ListenerId(id)
    }

    pub(crate) fn remove(&self, id: ListenerId) -> bool {
        let mut listeners = self.listeners.write();
        let before = listeners.len();
        listeners.retain(|(i, _)| *i != id.0);
        listeners.len() != before
    }

    pub(crate) fn subscribe(&self) -> EventStream {
        let mut tx = self.tx.lock();
        let rx = match tx.as_ref() {
            Some(tx) => tx.subscribe(),
            None => {
                let (new_tx, rx) = broadcast::channel(STREAM_CAPACITY);
                *tx = Some(new_tx);
                rx
            }
        };
        EventStream { rx, lagged: 0 }
    }

    /// Appends the registered listeners to `out`.
    pub(crate) fn listeners_into(&self, out: &mut Vec<Arc<dyn EventListener>>) {
        let listeners = self.listeners.read();
        out.extend(listeners.iter().map(|(_, l)| l.clone()));
    }

    /// Sends `event` to the streams (never blocks; no host code runs here).
    pub(crate) fn broadcast(&self, event: &Event) {
        if let Some(tx) = self.tx.lock().as_ref() {
            let _ = tx.send(event.clone()); // no receivers is fine
        }
    }

    /// Ends all streams (their `recv` returns `None` after the buffered events) and forgets
    /// every listener, so a listener holding its own session cannot keep it alive.
    pub(crate) fn close(&self) {
        self.tx.lock().take();
        self.listeners.write().clear();
    }
}

/// A stream of a session's (or keeper's) events, from the moment of subscribing.
///
/// Holds up to 64 unread events; a slower reader skips the oldest and
/// [`EventStream::lagged`] counts what it missed. Ends (`None`) when the session closes.
pub struct EventStream {
    rx: broadcast::Receiver<Event>,
    lagged: u64,
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("lagged", &self.lagged)
            .finish()
    }
}

impl EventStream {
    /// The next event, or `None` once the session is closed and the buffer drained.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            match self.rx.recv().await {
                Ok(e) => return Some(e),
                Err(broadcast::error::RecvError::Lagged(n)) => self.lagged += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event if one is already buffered.
    pub fn try_recv(&mut self) -> Option<Event> {
        loop {
            match self.rx.try_recv() {
                Ok(e) => return Some(e),
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.lagged += n,
                Err(_) => return None,
            }
        }
    }

    /// Events skipped because this reader fell more than 64 behind.
    pub fn lagged(&self) -> u64 {
        self.lagged
    }

    /// As a `futures::Stream`.
    pub fn into_stream(self) -> impl futures::Stream<Item = Event> + Send + Unpin {
        Box::pin(futures::stream::unfold(self, |mut s| async move {
            let e = s.recv().await?;
            Some((e, s))
        }))
    }
}
