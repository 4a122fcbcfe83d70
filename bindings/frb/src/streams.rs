//! Feeding Dart `Stream`s: session and keeper events, session status, SDK log records.
//!
//! This is the only place that feeds a flutter_rust_bridge `StreamSink`. A `StreamSink` can only
//! be made by the Dart side, so the forwarding is written against the small [`StreamTarget`]
//! trait: the API implements it for `StreamSink`, and Rust tests implement it for a channel to
//! observe exactly what Dart would receive.

use tokenkeeper::lifecycle::{self as core, EventStream};
use tokio::sync::watch;

use crate::api::events::{SessionEvent, SessionStatus};
use crate::frb_generated::{SseEncode, StreamSink};

/// The receiving end of a Dart `Stream`: gets converted items, in order.
pub trait StreamTarget<T>: Send + Sync + 'static {
    /// Delivers one item. Returns `false` when the receiver is gone; forwarding then stops.
    fn deliver(&self, item: T) -> bool;
}

impl<T: SseEncode + Send + Sync + 'static> StreamTarget<T> for StreamSink<T> {
    fn deliver(&self, item: T) -> bool {
        self.add(item).is_ok()
    }
}

/// Forwards every event of `stream` to `target` on the bridge's runtime until the stream ends
/// (after the `closed` event of the session, or when the keeper shuts down) or the target
/// reports its receiver gone. Dropping the target at the end closes the Dart `Stream`.
pub(crate) fn forward_events(mut stream: EventStream, target: impl StreamTarget<SessionEvent>) {
    crate::runtime::handle().spawn(async move {
        while let Some(event) = stream.recv().await {
            if !target.deliver(event.into()) {
                break;
            }
        }
    });
}

/// Forwards a session's status to `target`: the status now, then every change, ending after the
/// `closed` status (or when the receiver is gone). A reader that falls behind sees the latest
/// status, not every intermediate one.
pub(crate) fn forward_status(
    mut status: watch::Receiver<core::Status>,
    target: impl StreamTarget<SessionStatus>,
) {
    crate::runtime::handle().spawn(async move {
        loop {
            let now = status.borrow_and_update().clone();
            let closed = now.state == core::SessionState::Closed;
            if !target.deliver(now.into()) || closed {
                break;
            }
            if status.changed().await.is_err() {
                break;
            }
        }
    });
}
