//! Forwarding a core event stream to Dart.
//!
//! This is the only place that feeds a flutter_rust_bridge `StreamSink`. A `StreamSink` can only
//! be made by the Dart side, so the forwarding loop is written against the small [`EventSink`]
//! trait: the API implements it for `StreamSink`, and Rust tests implement it for a channel to
//! observe exactly what Dart would receive.

use tokenkeeper::lifecycle::EventStream;

use crate::api::events::SessionEvent;
use crate::frb_generated::StreamSink;

/// Receives converted session events, in order.
pub trait EventSink: Send + 'static {
    /// Delivers one event. Returns `false` when the receiver is gone; forwarding then stops.
    fn deliver(&self, event: SessionEvent) -> bool;
}

impl EventSink for StreamSink<SessionEvent> {
    fn deliver(&self, event: SessionEvent) -> bool {
        self.add(event).is_ok()
    }
}

/// Forwards every event of `stream` to `sink` on the bridge's runtime until the stream ends
/// (the session or keeper closed) or the sink reports its receiver gone. Dropping the sink at
/// the end closes the Dart `Stream`.
pub(crate) fn forward(mut stream: EventStream, sink: impl EventSink) {
    crate::runtime::handle().spawn(async move {
        while let Some(event) = stream.recv().await {
            if !sink.deliver(event.into()) {
                break;
            }
        }
    });
}
