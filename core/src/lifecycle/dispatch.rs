//! Delivers events to host listeners on one thread per keeper, off the renewal path.
//!
//! A listener is host code (Kotlin, Swift, Dart, Python or Rust) and may be slow, block or
//! panic. The session's driver only queues the event; the `tokenkeeper-events` thread calls the
//! listeners in order, catches a panic (where the build unwinds) and goes on. If the listeners
//! fall [`QUEUE_CAPACITY`] events behind, new events are dropped and counted rather than
//! letting memory grow or the driver wait.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::event::{Event, EventListener};

/// Events waiting for the listeners before new ones are dropped: 4,096.
pub(crate) const QUEUE_CAPACITY: usize = 4096;

type Job = (Vec<Arc<dyn EventListener>>, Event);

#[derive(Default)]
pub(crate) struct Dispatcher {
    tx: Mutex<Option<SyncSender<Job>>>,
    progress: Arc<Progress>,
}

#[derive(Default)]
struct Progress {
    queued: AtomicU64,
    delivered: Mutex<u64>,
    advanced: Condvar,
    dropped: AtomicU64,
}

impl Progress {
    fn advance(&self) {
        *self.delivered.lock() += 1;
        self.advanced.notify_all();
    }
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("queued", &self.progress.queued.load(Ordering::Relaxed))
            .field("dropped", &self.progress.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

impl Dispatcher {
    /// Queues `event` for `listeners` (called in order on the event thread).
    pub(crate) fn deliver(&self, listeners: Vec<Arc<dyn EventListener>>, event: Event) {
        let mut tx = self.tx.lock();
        if tx.is_none() {
            *tx = self.start();
        }
        let Some(sender) = tx.as_ref() else { return };
        self.progress.queued.fetch_add(1, Ordering::AcqRel);
        match sender.try_send((listeners, event)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.progress.advance();
                let n = self.progress.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(
                        dropped = n,
                        "event listeners are {QUEUE_CAPACITY} events behind (one blocks?); dropping events for listeners"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.progress.advance();
                tx.take();
            }
        }
    }

    fn start(&self) -> Option<SyncSender<Job>> {
        let (tx, rx) = sync_channel::<Job>(QUEUE_CAPACITY);
        let progress = self.progress.clone();
        let started = std::thread::Builder::new()
            .name("tokenkeeper-events".into())
            .spawn(move || run(&rx, &progress));
        match started {
            Ok(_) => Some(tx),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the event thread; listeners get no events");
                None
            }
        }
    }

    /// Waits until every event queued so far reached the listeners, at most `timeout`.
    /// `false` when the time ran out (a listener blocks).
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let target = self.progress.queued.load(Ordering::Acquire);
        let mut delivered = self.progress.delivered.lock();
        while *delivered < target {
            if self
                .progress
                .advanced
                .wait_for(&mut delivered, timeout)
                .timed_out()
            {
                return *delivered >= target;
            }
        }
        true
    }
}

fn run(rx: &Receiver<Job>, progress: &Progress) {
    while let Ok((listeners, event)) = rx.recv() {
        for listener in &listeners {
            let call = catch_unwind(AssertUnwindSafe(|| listener.on_event(&event)));
            if call.is_err() {
                tracing::error!(
                    session = event.session_id,
                    "an event listener panicked; it keeps receiving events and renewals go on"
                );
            }
        }
        drop(listeners);
        progress.advance();
    }
}
