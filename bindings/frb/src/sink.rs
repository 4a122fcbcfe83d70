//! The Dart sink (the engine's "renew token" call) as the core's `TokenSink`.

use std::fmt;

use flutter_rust_bridge::DartFnFuture;
use tokenkeeper::lifecycle::{self as core, SinkError};

use crate::api::events::IssuedToken;
use crate::redact::host_text;

/// A Dart function `FutureOr<void> Function(IssuedToken)` handing a token to the engine.
///
/// The generated glue runs it on the Dart isolate that passed it (the UI isolate, where engine
/// calls belong) and catches whatever it throws, synchronously or from its `Future`: the
/// exception arrives here as an `Err` and becomes a [`SinkError`] (first line, redacted), which
/// the core retries (`applyFailed` event). Nothing a sink throws escapes as an uncaught error.
pub(crate) struct DartTokenSink<F>(pub(crate) F);

impl<F> fmt::Debug for DartTokenSink<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DartTokenSink")
    }
}

#[async_trait::async_trait]
impl<F> core::TokenSink for DartTokenSink<F>
where
    F: Fn(IssuedToken) -> DartFnFuture<anyhow::Result<()>> + Send + Sync + 'static,
{
    async fn apply(&self, token: &core::IssuedToken) -> Result<(), SinkError> {
        (self.0)(token.clone().into())
            .await
            .map_err(|e| SinkError::new(format!("the Dart token sink threw: {}", host_text(&e))))
    }
}
