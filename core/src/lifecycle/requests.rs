//! What callers ask of a session and how long they wait: `token()`, `renew_token()`, and the
//! engine's reports (`token_expired()`, `token_rejected()`).
//!
//! Every call waits the same way: for a published token newer than the one current at the call
//! (any valid token, for `token()`), a fatal error, or the session's close, and at most
//! [`Policy::token_wait`](super::Policy::token_wait). A failed attempt does not end the wait:
//! the session retries by itself, so one 503 during a Wi-Fi→LTE switch costs the caller a
//! second, not the renewal.

use super::driver::merge;
use super::event::EventKind;
use super::session::IssuedToken;
use super::shared::Shared;
use crate::clock::millis;
use crate::error::Error;
use crate::source::FetchReason;

/// What the engine reported about a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// It expired ("request token").
    Expired,
    /// A server refused it.
    Rejected,
}

impl Shared {
    /// `token()`: a valid token, fetching one if needed.
    pub(crate) async fn token(&self) -> Result<IssuedToken, Error> {
        if let Some(t) = self.current() {
            return Ok(t);
        }
        {
            let mut inner = self.inner.lock();
            let now = self.now();
            if inner.valid(now).is_none()
                && inner.fatal.is_none()
                && inner.successor.is_none()
                && inner.attempts.iter().all(|a| a.abandoned)
                && inner.next_retry_at.is_none_or(|at| at <= now)
                && !inner
                    .token
                    .as_ref()
                    .is_some_and(|t| !inner.published && !inner.expired_reported && now < t.starts)
            {
                let reason = if inner.ever_issued {
                    FetchReason::Emergency
                } else {
                    FetchReason::Initial
                };
                inner.pending = Some(merge(inner.pending, reason));
            }
        }
        self.wake.notify_one();
        self.wait_for(1).await
    }

    /// `renew_token()`: a token newer than the current one. Clears a fatal state.
    pub(crate) async fn renew(&self) -> Result<IssuedToken, Error> {
        let min_gen = {
            let mut inner = self.inner.lock();
            if self.is_closed() {
                return Err(Error::Closed);
            }
            let now = self.now();
            if inner.fatal.take().is_some() {
                inner.state = if inner.valid(now).is_some() {
                    super::SessionState::Valid
                } else {
                    super::SessionState::Expired
                };
            }
            let token_wait = millis(self.policy.token_wait);
            if inner.retry_floor > now.saturating_add(token_wait) {
                return Err(retry_error(
                    inner.last_error.as_ref(),
                    inner.retry_floor - now,
                ));
            }
            if inner.successor.is_none() {
                inner.pending = Some(merge(inner.pending, FetchReason::Forced));
                let floor = inner.retry_floor;
                if let Some(at) = inner.next_retry_at.as_mut() {
                    *at = (*at).min(now.max(floor));
                }
            }
            inner.generation + 1
        };
        self.wake.notify_one();
        self.wait_for(min_gen).await
    }

    /// The engine reports a token expired or rejected. `about`: the token it is about, when the
    /// engine says; a report about a token that is no longer current is ignored.
    pub(crate) async fn report(
        &self,
        report: Report,
        about: Option<&str>,
    ) -> Result<IssuedToken, Error> {
        let mut events = Vec::new();
        let min_gen = {
            let mut inner = self.inner.lock();
            if self.is_closed() {
                return Err(Error::Closed);
            }
            let now = self.now();
            let current = inner.token.as_ref().filter(|_| inner.published);
            let older = match (about, current) {
                (Some(about), Some(current)) => about != current.issued.token.expose(),
                _ => false,
            };
            if older {
                tracing::debug!(
                    session = self.id,
                    ?report,
                    "report about an older token; ignored"
                );
                1
            } else {
                if about.is_some() && current.is_none() && inner.successor.is_none() {
                    // About a token already dropped (engines repeat their callbacks): join the refetch.
                    tracing::debug!(
                        session = self.id,
                        ?report,
                        "repeated report; joining the refetch"
                    );
                }
                if let Some(f) = &inner.fatal {
                    return Err(f.clone());
                }
                if let Some(current) = current {
                    let fresh =
                        now - current.received <= millis(self.policy.fresh_rejection_window);
                    if report == Report::Rejected {
                        inner.counters.rejections += 1;
                        events.push(self.event(EventKind::Rejected { fresh }));
                    }
                    inner.bad_reports = if fresh { inner.bad_reports + 1 } else { 0 };
                    tracing::warn!(
                        session = self.id,
                        ?report,
                        fresh,
                        streak = inner.bad_reports,
                        "engine reported the token bad"
                    );
                    if inner.bad_reports >= 2 {
                        let what = match report {
                            Report::Rejected => "rejected",
                            Report::Expired => "reported expired",
                        };
                        let error = Error::Rejected {
                            message: format!(
                                "{} fresh tokens for {} were {what} within {:?} of issue; check the app id, certificate, channel, user and token lifetime on both sides (and the device clock), then call renew_token()",
                                inner.bad_reports, self.spec, self.policy.fresh_rejection_window
                            ),
                        };
                        self.unpublish(&mut inner, now, &mut events);
                        self.fail(&mut inner, error.clone(), &mut events);
                        drop(inner);
                        self.emit_all(events);
                        self.changed.notify_waiters();
                        return Err(error);
                    }
                    self.unpublish(&mut inner, now, &mut events);
                    inner.successor = None;
                }
                let reason = match report {
                    Report::Rejected => FetchReason::Rejected,
                    Report::Expired => FetchReason::Emergency,
                };
                // With a successor on its way, its start is the fix: no fetch.
                if inner.fatal.is_none() && inner.successor.is_none() {
                    inner.pending = Some(merge(inner.pending, reason));
                    inner.report_cycle = true;
                    let floor = inner.retry_floor;
                    if let Some(at) = inner.next_retry_at.as_mut() {
                        *at = (*at).min(now.max(floor));
                    }
                }
                inner.generation + 1
            }
        };
        self.emit_all(events);
        self.wake.notify_one();
        self.wait_for(min_gen).await
    }

    /// Waits for a published token of generation `min_gen` or newer, a fatal error, the close,
    /// or the wait limit.
    async fn wait_for(&self, min_gen: u64) -> Result<IssuedToken, Error> {
        let wait = self.policy.token_wait;
        let until = self.now().saturating_add(millis(wait));
        let completed0 = self.inner.lock().completed;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let inner = self.inner.lock();
                if self.is_closed() {
                    return Err(Error::Closed);
                }
                let now = self.now();
                let timed_out = !wait.is_zero() && now >= until;
                if let Some(t) = self.current_since(now, min_gen) {
                    return Ok(t);
                }
                if let Some(f) = &inner.fatal {
                    return Err(f.clone());
                }
                let held = inner.successor.as_ref().or(inner
                    .token
                    .as_ref()
                    .filter(|t| !inner.published && now < t.starts));
                if let Some(held) = held {
                    if min_gen <= 1 || timed_out {
                        return Err(Error::NotYetValid {
                            starts_at_ms: self.wall_of(held.starts),
                        });
                    }
                }
                let next_outcome = wait.is_zero() && inner.completed > completed0;
                if next_outcome || timed_out {
                    return Err(match &inner.last_error {
                        Some(e @ Error::StoreFailed { .. }) => e.clone(),
                        e => retry_error(e.as_ref(), inner.next_retry_at.map_or(0, |at| at - now)),
                    });
                }
            }
            if wait.is_zero() {
                notified.await;
            } else {
                let give_up = self
                    .clock
                    .sleep_until_boot(std::time::Duration::from_millis(
                        until.max(0).unsigned_abs(),
                    ));
                tokio::select! {
                    biased;
                    () = notified => {}
                    () = give_up => {}
                }
            }
        }
    }
}

/// The error of a wait that ran out: the last failure, with the time until the next attempt.
fn retry_error(last: Option<&Error>, wait_ms: i64) -> Error {
    let message = match last {
        Some(Error::RetryLater { message, .. }) => message.clone(),
        Some(other) => other.to_string(),
        None => "waiting for the next attempt".to_owned(),
    };
    Error::RetryLater {
        retry_after: Some(std::time::Duration::from_millis(
            wait_ms.max(0).unsigned_abs(),
        )),
        message,
    }
}
