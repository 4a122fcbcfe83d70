//! Tests of the API the Dart side calls, against the reference backend (`tokenkeeper-server`)
//! started in-process on 127.0.0.1:0.
//!
//! The Dart callbacks (`fetch`, the credential store) are Rust closures here that do what a
//! Flutter app does with its own HTTP client: `DartFnFuture` is a boxed future, so the API
//! functions are called exactly as the generated glue calls them. A `StreamSink` can only be
//! created by the Dart side, so events are observed through the `EventSink` seam that the
//! `events(sink)` functions delegate to (`events_into`), with a channel in place of the sink.

mod support;

mod errors;
mod events;
mod lifecycle;
mod redaction;
mod store;
