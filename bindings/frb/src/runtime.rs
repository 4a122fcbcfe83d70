//! The one tokio runtime: flutter_rust_bridge's.
//!
//! flutter_rust_bridge starts a multi-threaded tokio runtime to run every `async` API function.
//! The keeper is given that runtime's handle, so session tasks, event forwarding and the API
//! futures all run on it, and tokenkeeper never starts a runtime of its own (the core would
//! otherwise start one when built outside a runtime, e.g. from a `sync` call).

use tokio::runtime::Handle;

use crate::frb_generated::FLUTTER_RUST_BRIDGE_HANDLER;

/// A handle to the bridge's runtime (created on first use).
pub(crate) fn handle() -> Handle {
    FLUTTER_RUST_BRIDGE_HANDLER
        .async_runtime()
        .0
        .handle()
        .clone()
}
