//! The token sink: one path from backend to engine.
//!
//! A session given the host's "apply" action ([`TokenSink`]: Agora `renewToken(token)`, ZEGO
//! `renewToken(roomID, token)`, a WebSocket re-auth message) hands it every new token after the
//! one the app joined with:
//!
//! - **exactly once, in order**: one applier task per session; it applies the newest published
//!   token the engine does not hold yet, so a token superseded before it could be applied is
//!   skipped rather than applied after its successor;
//! - **never expired**: a token is checked right before it is applied;
//! - **one call at a time**: a call that takes longer than the policy's fetch timeout counts as
//!   failed, but host code may still be running it (a blocking pool thread, a Dart future), so
//!   the next call waits until it returned: the engine never sees two calls at once, nor an
//!   older token after a newer one;
//! - **a failed apply is retried** (200 ms doubling to 5 s, within the token's life), and an
//!   engine that refuses a fresh token [`APPLY_ATTEMPTS_BEFORE_REJECTION`] times in a row over
//!   at least 5 s is treated as a rejection: a new token is fetched and applied. An engine that
//!   is not ready for a moment (reconnecting) just gets the same token again;
//! - **no secrets in errors**: the token being applied (and the one the engine holds) is cut out
//!   of what the sink says before it reaches an event or a log line.
//!
//! The engine's callbacks become notifications ([`Session::on_token_will_expire`],
//! [`Session::on_token_expired`], [`Session::on_token_rejected`]): with a sink the session knows
//! which token the engine holds, so a late callback about an old token changes nothing and an
//! engine holding an older token than the session just gets the newer one.
//!
//! [`Session::on_token_will_expire`]: super::Session::on_token_will_expire
//! [`Session::on_token_expired`]: super::Session::on_token_expired
//! [`Session::on_token_rejected`]: super::Session::on_token_rejected

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use super::event::EventKind;
use super::requests::Report;
use super::session::IssuedToken;
use super::shared::Shared;
use crate::clock::millis;
use crate::source::Token;

/// An engine that refuses a fresh token this many times in a row, over at least 5 s, gets a
/// new one: 3.
pub const APPLY_ATTEMPTS_BEFORE_REJECTION: u32 = 3;
const APPLY_RETRY_INITIAL: Duration = Duration::from_millis(200);
const APPLY_RETRY_MAX: Duration = Duration::from_secs(5);
/// Refusals count as a rejection only once they have lasted this long: an engine that is not
/// ready for a moment (a WebSocket reconnecting) is not refusing the token.
const APPLY_REFUSAL_SPAN: Duration = Duration::from_secs(5);

/// Why the engine did not take a token (no secrets in the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the engine did not take the token: {message}")]
pub struct SinkError {
    /// What the engine said, e.g. Agora's error code.
    pub message: String,
}

impl SinkError {
    /// A sink error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Where a session hands every renewed token: the host's "apply" action.
///
/// ```
/// use std::sync::Arc;
/// use tokenkeeper::lifecycle::{IssuedToken, SinkError, TokenSink};
///
/// // An engine binding would call e.g. `engine.renew_token(token.token.expose())` here.
/// let sink: Arc<dyn TokenSink> = Arc::new(|token: &IssuedToken| -> Result<(), SinkError> {
///     let _ = token.token.expose();
///     Ok(())
/// });
/// # let _ = sink;
/// ```
#[async_trait::async_trait]
pub trait TokenSink: Send + Sync {
    /// Hands `token` to the engine. Called once per new token after the first, in order, never
    /// with an expired one, one call at a time. An `Err` is retried; a call that takes longer
    /// than the policy's fetch timeout counts as failed, and the next call waits until it
    /// returned. Runs as a task on the keeper's runtime: a sink that blocks its thread (a
    /// synchronous closure) must return quickly.
    async fn apply(&self, token: &IssuedToken) -> Result<(), SinkError>;
}

#[async_trait::async_trait]
impl<F> TokenSink for F
where
    F: Fn(&IssuedToken) -> Result<(), SinkError> + Send + Sync,
{
    async fn apply(&self, token: &IssuedToken) -> Result<(), SinkError> {
        self(token)
    }
}

/// What the engine holds, as far as the session knows.
#[derive(Debug, Clone, Default)]
pub(crate) struct EngineView {
    /// The generation and text of the token the engine holds; `None` before the app joined.
    pub(crate) holds: Option<(u64, Token)>,
    /// Consecutive failed applies of the token being applied.
    pub(crate) failures: u32,
    /// When to try again after a failed apply (elapsed clock).
    pub(crate) retry_at: Option<i64>,
    /// When the current run of failed applies began (elapsed clock).
    pub(crate) failing_since: Option<i64>,
}

/// A sink call the applier stopped waiting for (it outlived the timeout) but that host code may
/// still be running.
struct Late {
    call: tokio::task::JoinHandle<Result<(), super::SinkError>>,
    token: IssuedToken,
    generation: u64,
}

impl Shared {
    /// The app joined with `token` (it came from the first `token()`): the engine holds it.
    ///
    /// Only the first call counts: a later `token()` (a REST call, a second screen) says nothing
    /// about the engine, and taking it for a join would mark a renewal the applier is still
    /// handing over (an engine refusing it for a moment) as done, so the engine would keep the
    /// old token until it expired. An app that really joins again gets the current token once
    /// more from the applier, which engines accept.
    pub(crate) fn engine_joined(&self, token: &IssuedToken) {
        if self.sink.is_none() {
            return;
        }
        let mut inner = self.inner.lock();
        let Some(generation) = inner
            .token
            .as_ref()
            .filter(|t| t.issued.token == token.token)
            .map(|_| inner.generation)
        else {
            return;
        };
        if inner.engine.holds.is_none() {
            inner.engine.holds = Some((generation, token.token.clone()));
        }
    }

    /// The applier: hands each new token to the sink. Runs until the session closes.
    pub(crate) async fn apply_tokens(self: Arc<Self>, sink: Arc<dyn super::TokenSink>) {
        let mut late: Option<Late> = None;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.is_closed() {
                return;
            }
            if let Some(pending) = late.as_mut() {
                // One call at a time: the next waits until the host returned from this one.
                tokio::select! {
                    r = &mut pending.call => {
                        if let Some(l) = late.take() {
                            self.late_outcome(l, r);
                        }
                    }
                    () = changed => {}
                }
                continue;
            }
            let next = self.next_to_apply();
            match next {
                Next::Apply(token, generation) => {
                    late = self.apply_one(&sink, token, generation).await;
                    continue;
                }
                Next::WaitUntil(at) => {
                    let sleep = self
                        .clock
                        .sleep_until_boot(Duration::from_millis(at.max(0).unsigned_abs()));
                    tokio::select! {
                        () = changed => {}
                        () = sleep => {}
                        () = self.apply_now.notified() => {}
                    }
                }
                Next::Wait => {
                    tokio::select! {
                        () = changed => {}
                        () = self.apply_now.notified() => {}
                    }
                }
            }
        }
    }

    fn next_to_apply(&self) -> Next {
        let inner = self.inner.lock();
        let now = self.now();
        let Some((held, _)) = inner.engine.holds.as_ref() else {
            return Next::Wait; // not joined yet
        };
        let Some((token, generation)) = self.current_with_generation(now) else {
            return Next::Wait;
        };
        if generation <= *held {
            return Next::Wait;
        }
        match inner.engine.retry_at {
            Some(at) if at > now => Next::WaitUntil(at),
            _ => Next::Apply(token, generation),
        }
    }

    /// Hands `token` to the sink. Returns the call if it outlived the timeout (it may still be
    /// running in host code).
    async fn apply_one(
        &self,
        sink: &Arc<dyn super::TokenSink>,
        token: IssuedToken,
        generation: u64,
    ) -> Option<Late> {
        let timeout = self.policy.fetch_timeout;
        let mut call = {
            let (sink, token) = (sink.clone(), token.clone());
            self.runtime.spawn(async move {
                AssertUnwindSafe(sink.apply(&token))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| Err(super::SinkError::new("the token sink panicked")))
            })
        };
        let mut late = None;
        let outcome = tokio::select! {
            r = &mut call => r.unwrap_or_else(|_| Err(super::SinkError::new("the token sink was cancelled"))),
            () = self.clock.sleep(timeout) => {
                late = Some(Late { call, token: token.clone(), generation });
                Err(super::SinkError::new(format!(
                    "no answer within {timeout:?} (policy fetch_timeout)"
                )))
            }
            () = self.until_closed() => return None,
        };
        let mut events = Vec::new();
        let mut reject = None;
        {
            let mut inner = self.inner.lock();
            let now = self.now();
            match outcome {
                Ok(()) => {
                    self.engine_took(&mut inner, &token, generation, &mut events);
                }
                Err(e) => {
                    let message = without_tokens(&e.message, &token, inner.engine.holds.as_ref());
                    inner.engine.failures += 1;
                    inner.counters.apply_failures += 1;
                    let attempt = inner.engine.failures;
                    let pause = APPLY_RETRY_INITIAL
                        .saturating_mul(1 << attempt.saturating_sub(1).min(8))
                        .min(APPLY_RETRY_MAX);
                    inner.engine.retry_at = Some(now.saturating_add(millis(pause)));
                    let since = *inner.engine.failing_since.get_or_insert(now);
                    tracing::warn!(attempt, error = %message, "the engine did not take the token; retrying");
                    events.push(self.event(EventKind::ApplyFailed { attempt, message }));
                    let fresh = inner.token.as_ref().is_some_and(|t| {
                        now - t.received <= millis(self.policy.fresh_rejection_window)
                    });
                    let lasting = now - since >= millis(APPLY_REFUSAL_SPAN);
                    if attempt >= APPLY_ATTEMPTS_BEFORE_REJECTION && lasting && fresh {
                        inner.engine.failures = 0;
                        inner.engine.retry_at = None;
                        inner.engine.failing_since = None;
                        reject = Some(token.token.clone());
                    }
                }
            }
        }
        self.emit_all(events);
        if let Some(refused) = reject {
            tracing::warn!("the engine keeps refusing a fresh token: treating it as rejected");
            let _ = self.report(Report::Rejected, Some(refused.expose())).await;
        }
        late
    }

    /// The engine took `token`: it holds it (never going back to an older one).
    fn engine_took(
        &self,
        inner: &mut super::shared::Inner,
        token: &IssuedToken,
        generation: u64,
        events: &mut Vec<super::Event>,
    ) {
        if inner
            .engine
            .holds
            .as_ref()
            .is_none_or(|(g, _)| *g < generation)
        {
            inner.engine.holds = Some((generation, token.token.clone()));
        }
        inner.engine.failures = 0;
        inner.engine.retry_at = None;
        inner.engine.failing_since = None;
        inner.counters.applies += 1;
        events.push(self.event(EventKind::Applied {
            expires_at_ms: token.expires_at_ms,
        }));
    }

    /// A call that outlived the timeout returned: if the engine took the token after all, it
    /// holds it (the failure was already counted).
    fn late_outcome(
        &self,
        late: Late,
        result: Result<Result<(), super::SinkError>, tokio::task::JoinError>,
    ) {
        if !matches!(result, Ok(Ok(()))) {
            return;
        }
        let mut events = Vec::new();
        {
            let mut inner = self.inner.lock();
            self.engine_took(&mut inner, &late.token, late.generation, &mut events);
        }
        self.emit_all(events);
    }

    /// Returns once the session is closed.
    async fn until_closed(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.is_closed() {
                return;
            }
            changed.await;
        }
    }

    /// An engine callback (will expire, expired, rejected), as a notification: never waits.
    pub(crate) fn engine_says(self: &Arc<Self>, report: EngineReport, about: Option<&str>) {
        let about = about.map(str::to_owned);
        // With a sink the session knows what the engine holds: a callback naming no token is
        // about that one, and an engine behind the session just needs the newer token.
        let (about, behind) = {
            let mut inner = self.inner.lock();
            if self.sink.is_some() && inner.engine.holds.is_none() && !self.is_closed() {
                self.engine_joined_unseen(&mut inner, report, about.as_deref());
            }
            let held = inner.engine.holds.as_ref().filter(|(g, _)| *g > 0);
            let about = about.or_else(|| held.map(|(_, t)| t.expose().to_owned()));
            let held = inner.engine.holds.as_ref();
            let behind = self.sink.is_some()
                && held.is_some_and(|(g, _)| *g < inner.generation && inner.published);
            (about, behind)
        };
        if behind {
            let mut inner = self.inner.lock();
            inner.engine.retry_at = None;
            drop(inner);
            self.apply_now.notify_one();
            return;
        }
        if report == EngineReport::WillExpire {
            self.renew_unless_fresher(about.as_deref());
            return;
        }
        let shared = self.clone();
        let report = match report {
            EngineReport::Rejected => Report::Rejected,
            _ => Report::Expired,
        };
        // Nobody waits for a notification's outcome: the sink (or a listener) gets the token.
        self.runtime.spawn(async move {
            let _ = shared.report(report, about.as_deref()).await;
        });
    }

    /// An engine callback before the app joined with `token()`: the engine is in a channel, so
    /// the app joined with a token it got some other way (`current()`, an `Issued` event). The
    /// engine holds the current token if it names it (or, warning without a name, most likely);
    /// otherwise it holds something older (generation 0), and the applier hands it the current
    /// token. Without this the sink would never be called.
    fn engine_joined_unseen(
        &self,
        inner: &mut super::shared::Inner,
        report: EngineReport,
        about: Option<&str>,
    ) {
        let now = self.now();
        let current = self.current_with_generation(now);
        let holds_current = current.as_ref().is_some_and(|(t, _)| match about {
            Some(about) => about == t.token.expose(),
            None => report == EngineReport::WillExpire,
        });
        tracing::warn!(
            "an engine callback before the app joined with token(): with a sink, join with the \
             token token() returns"
        );
        inner.engine.holds = Some(match current {
            Some((t, generation)) if holds_current => (generation, t.token),
            _ => (0, Token::new(about.unwrap_or_default().to_owned())),
        });
    }

    /// "Will expire": renews unless the named token is not the current one (a newer one exists)
    /// or a renewal is already on its way.
    fn renew_unless_fresher(&self, about: Option<&str>) {
        {
            let mut inner = self.inner.lock();
            let current = inner.token.as_ref().filter(|_| inner.published);
            let newer_exists = match (about, current) {
                (Some(about), Some(current)) => about != current.issued.token.expose(),
                _ => false,
            };
            let on_its_way =
                inner.cycle.is_some() || !inner.attempts.is_empty() || inner.successor.is_some();
            // An engine warning in the first quarter of the token's life comes from a warning
            // window longer than the token (Agora warns 30 s ahead): it names every new token
            // at once, and following it would renew in a loop. The session's own schedule
            // renews that token. A later warning is followed, even before that schedule.
            let now = self.now();
            let too_early =
                current.is_some_and(|t| now - t.received < (t.expires - t.received) / 4);
            if too_early && !newer_exists && !on_its_way {
                tracing::warn!(
                    "the engine warns about a token it just received (warning window longer than \
                     the token's life): renewing on the session's schedule instead; issue tokens \
                     that live longer than the engine's warning window"
                );
            }
            if !newer_exists && !on_its_way && !too_early && inner.fatal.is_none() {
                inner.pending = Some(super::driver::merge(
                    inner.pending,
                    crate::source::FetchReason::Forced,
                ));
            }
        }
        self.wake.notify_one();
    }
}

/// An engine callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EngineReport {
    WillExpire,
    Expired,
    Rejected,
}

/// What a sink said, with the token it was given and the one the engine holds cut out (host
/// engines quote their arguments: "renewToken(007eJx…) failed").
fn without_tokens(message: &str, token: &IssuedToken, held: Option<&(u64, Token)>) -> String {
    let mut text = message.to_owned();
    let held = held.map(|(_, t)| t.expose());
    for secret in [Some(token.token.expose()), held].into_iter().flatten() {
        if !secret.is_empty() && text.contains(secret) {
            text = text.replace(secret, "[redacted]");
        }
    }
    text
}

enum Next {
    Apply(IssuedToken, u64),
    WaitUntil(i64),
    Wait,
}
