//! The driver: one task per session that decides when to fetch and runs each fetch in a task
//! of its own (what becomes of an answer is in `outcome.rs`).
//!
//! - **Supervised**: a panic in the driver (a bug) restarts it; one in a token source or a
//!   credential store is caught in the fetch task and counts as a failed attempt.
//! - **Stalls**: while a valid token is at stake, the driver waits for an attempt only as long
//!   as [`Policy::attempt_budget`] allows, then starts another beside it (at most
//!   [`Policy::MAX_PARALLEL_ATTEMPTS`], dropping the oldest stalled one to make room); a stalled
//!   one keeps running and its token is used if it answers first. Fetches that use credentials
//!   run one at a time and are waited for up to `Policy::refresh_answer_wait`, so a rotated
//!   refresh token that arrives late is still kept.
//! - **Wakeups**: the driver sleeps until its next deadline (renewal, expiry, retry, a held
//!   token's start, a stalled attempt) and wakes for requests and keeper signals only.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tracing::Instrument;

use super::event::{Event, EventKind, SessionState};
use super::shared::{Attempt, Held, Inner, Shared};
use crate::clock::millis;
use crate::error::Error;
use crate::source::{FetchReason, FetchRequest, FetchedToken, SourceError};

/// Priority when several requests are pending: the most urgent reason wins.
fn urgency(r: FetchReason) -> u8 {
    match r {
        FetchReason::Scheduled => 0,
        FetchReason::Initial => 1,
        FetchReason::Forced => 2,
        FetchReason::Emergency => 3,
        FetchReason::Rejected => 4,
    }
}

pub(crate) fn merge(a: Option<FetchReason>, b: FetchReason) -> FetchReason {
    match a {
        Some(a) if urgency(a) >= urgency(b) => a,
        _ => b,
    }
}

pub(crate) fn dur(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0).unsigned_abs())
}

/// Weight of a new attempt in the smoothed failure rate (1/16).
pub(crate) const FAILURE_EWMA_WEIGHT: f64 = 16.0;

/// A token from the source and when it arrived (elapsed clock, device wall clock): its times
/// are counted from then, not from when a slow store let the session go on.
pub(crate) struct Answer {
    pub(crate) fetched: FetchedToken,
    pub(crate) arrived: (i64, i64),
}

/// Why an attempt failed.
pub(crate) enum Failure {
    Source(SourceError),
    Public(Error),
    /// The server refused credentials the host replaced while the fetch ran: not a failure,
    /// the next attempt (with the new ones) starts at once.
    Superseded,
}

/// What the driver does next.
enum Plan {
    Exit,
    Wait(Option<i64>),
    Fetch(FetchRequest),
}

impl Shared {
    /// Runs the driver until the session closes, restarting it after a panic.
    pub(crate) async fn supervise(self: Arc<Self>) {
        let span = tracing::info_span!("token_session", id = self.id, session = %self.spec);
        async move {
            loop {
                match AssertUnwindSafe(self.clone().drive()).catch_unwind().await {
                    Ok(()) => return,
                    Err(_) if self.is_closed() => return,
                    Err(_) => {
                        tracing::error!("session driver panicked; restarting it");
                        self.inner.lock().counters.driver_restarts += 1;
                        // Not at once: a panic that recurs must not spin a core.
                        self.clock.sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn drive(self: Arc<Self>) {
        loop {
            let (plan, events) = self.plan();
            self.emit_all(events);
            match plan {
                Plan::Exit => return,
                Plan::Fetch(request) => self.start_attempt(request),
                Plan::Wait(deadline) => {
                    let wake = self.wake.notified();
                    match deadline {
                        Some(at) => {
                            let sleep = self.clock.sleep_until_boot(dur(at));
                            tokio::select! {
                                biased;
                                () = wake => {}
                                () = sleep => {}
                            }
                        }
                        None => wake.await,
                    }
                }
            }
        }
    }

    fn plan(&self) -> (Plan, Vec<Event>) {
        let mut events = Vec::new();
        if self.is_closed() {
            return (Plan::Exit, events);
        }
        let mut inner = self.inner.lock();
        let now = self.now();
        let mut wake_at: Option<i64> = None;
        let soonest = |t: i64, w: &mut Option<i64>| *w = Some(w.map_or(t, |x| x.min(t)));

        self.advance_timeline(&mut inner, now, &mut events);
        if let Some(s) = &inner.successor {
            soonest(s.starts, &mut wake_at);
        }
        if let Some(t) = &inner.token {
            if !inner.published && !inner.expired_reported && now < t.starts {
                soonest(t.starts, &mut wake_at);
            } else if inner.published {
                soonest(t.expires, &mut wake_at);
            }
        }
        if inner.fatal.is_some() {
            inner.pending = None;
            inner.cycle = None;
            return (Plan::Wait(wake_at), events);
        }

        // Attempts the session stopped waiting for count as stalled failures.
        let stalled: Vec<u64> = inner
            .attempts
            .iter()
            .filter(|a| !a.abandoned && now >= a.give_up_at)
            .map(|a| a.id)
            .collect();
        for id in stalled {
            self.give_up_on(&mut inner, id, now, &mut events);
        }
        if inner.fatal.is_some() {
            return (Plan::Wait(wake_at), events);
        }
        if let Some(at) = inner
            .attempts
            .iter()
            .filter(|a| !a.abandoned)
            .map(|a| a.give_up_at)
            .min()
        {
            soonest(at, &mut wake_at);
            return (Plan::Wait(wake_at), events);
        }

        // Backoff.
        if let Some(at) = inner.next_retry_at {
            if now < at {
                soonest(at, &mut wake_at);
                return (Plan::Wait(wake_at), events);
            }
            inner.next_retry_at = None;
        }

        let valid = inner.valid(now).is_some();
        let mut reason = inner.pending;
        if let Some(c) = inner.cycle {
            reason = Some(merge(reason, c));
        }
        if reason.is_none() && valid && inner.successor.is_none() && now >= inner.renew_at {
            reason = Some(FetchReason::Scheduled);
        }
        let Some(mut reason) = reason else {
            if valid && inner.successor.is_none() {
                soonest(inner.renew_at, &mut wake_at);
            }
            return (Plan::Wait(wake_at), events);
        };
        if self.credentials_in_use() {
            if !inner.attempts.is_empty() {
                // One fetch per key at a time: wait for it (its task wakes the driver).
                return (Plan::Wait(wake_at), events);
            }
        } else if inner.attempts.len() >= super::Policy::MAX_PARALLEL_ATTEMPTS {
            // Make room by dropping the oldest stalled attempt: it is the least likely to answer.
            if let Some(i) = inner.attempts.iter().position(|a| a.abandoned) {
                let oldest = inner.attempts.remove(i);
                if let Some(task) = oldest.task {
                    task.abort();
                }
            } else {
                return (Plan::Wait(wake_at), events);
            }
        }
        inner.pending = None;
        // A retrying scheduled renewal becomes an emergency once the token is gone.
        if reason == FetchReason::Scheduled && !valid {
            reason = FetchReason::Emergency;
        }
        if inner.cycle.is_none() {
            inner.cycle_started_mono = self.clock.monotonic();
            tracing::debug!(reason = reason.as_str(), "fetch cycle started");
            if reason == FetchReason::Scheduled {
                if let Some(t) = inner.valid(now) {
                    let expires_at_ms = t.issued.expires_at_ms;
                    events.push(self.event(EventKind::WillExpire { expires_at_ms }));
                }
            }
        }
        inner.cycle = Some(reason);
        inner.state = match (valid, inner.ever_issued) {
            (true, _) => SessionState::Renewing,
            (false, true) => SessionState::Expired,
            (false, false) => SessionState::Fetching,
        };
        inner.attempt += 1;
        inner.counters.fetches += 1;
        if !valid && inner.ever_issued {
            inner.counters.emergency_fetches += 1;
        }
        let request = FetchRequest {
            reason,
            session: self.spec.clone(),
            attempt: inner.attempt,
            credentials: None,
            previous: inner.token.as_ref().map(|t| t.issued.token.clone()),
            timeout: self.policy.fetch_timeout,
        };
        (Plan::Fetch(request), events)
    }

    /// Publishes a held token at its start, promotes a successor, expires a token whose time
    /// is up.
    fn advance_timeline(&self, inner: &mut Inner, now: i64, events: &mut Vec<Event>) {
        if inner.successor.as_ref().is_some_and(|s| now >= s.starts) {
            if let Some(next) = inner.successor.take() {
                self.unpublish_quietly(inner);
                self.became_valid(inner, next, now, events);
            }
        }
        if let Some(t) = inner.token.clone() {
            if !inner.published && !inner.expired_reported && now >= t.starts && now < t.expires {
                self.became_valid(inner, t, now, events);
            }
        }
        let expired = inner
            .token
            .as_ref()
            .is_some_and(|t| inner.published && now >= t.expires);
        if expired {
            tracing::warn!("token expired before its renewal arrived");
            self.unpublish(inner, now, events);
            // The paced attempts before expiry were quick on purpose; backoff starts afresh.
            inner.attempt = 0;
            // A successor is on its way: wait for its start rather than fetch another.
            if inner.fatal.is_none() && inner.successor.is_none() {
                inner.pending = Some(merge(inner.pending, FetchReason::Emergency));
            }
        }
    }

    fn unpublish_quietly(&self, inner: &mut Inner) {
        let mut ignored = Vec::new();
        inner.expired_reported = true;
        self.unpublish(inner, self.now(), &mut ignored);
    }

    fn became_valid(&self, inner: &mut Inner, held: Held, now: i64, events: &mut Vec<Event>) {
        if let Some(since) = inner.invalid_since.take() {
            inner.counters.expired_ms += (now - since).max(0).unsigned_abs();
        }
        let expires_at_ms = held.issued.expires_at_ms;
        tracing::info!(expires_at_ms, "held token became valid");
        self.publish(inner, held);
        events.push(self.event(EventKind::BecameValid { expires_at_ms }));
        self.changed.notify_waiters();
    }

    // ---- fetch tasks ---------------------------------------------------------------------

    fn start_attempt(self: &Arc<Self>, request: FetchRequest) {
        let mut inner = self.inner.lock();
        let now = self.now();
        let id = inner.next_attempt_id;
        inner.next_attempt_id += 1;
        let valid_for = inner.valid(now).map(|t| dur(t.expires - now));
        let latency = dur(inner.latency_ewma_ms.unwrap_or(0));
        let credentialed = self.credentials_in_use();
        // With nothing at stake and nothing to keep, the fetch's own timeout decides.
        let give_up_at = if valid_for.is_none() && !credentialed {
            i64::MAX
        } else {
            now.saturating_add(millis(self.policy.attempt_budget(valid_for, latency)))
        };
        let reason = request.reason;
        let generation = inner.generation;
        let shared = self.clone();
        let task = self
            .runtime
            .spawn(async move { shared.run_attempt(id, request, credentialed).await });
        inner.attempts.push(Attempt {
            id,
            reason,
            started_mono: self.clock.monotonic(),
            started_boot: now,
            give_up_at,
            abandoned: false,
            generation,
            credentialed,
            network_lost: false,
            task: Some(task.abort_handle()),
        });
    }

    async fn run_attempt(self: Arc<Self>, id: u64, request: FetchRequest, credentialed: bool) {
        let span = tracing::info_span!(
            "token_fetch",
            reason = request.reason.as_str(),
            attempt = request.attempt
        );
        let timeout = self.policy.fetch_timeout;
        // A refresh is waited for longer: see `Policy::refresh_answer_wait`.
        let limit = if credentialed {
            self.policy.refresh_answer_wait.max(timeout)
        } else {
            timeout
        };
        tracing::debug!(parent: &span, "fetching token");
        let outcome = tokio::select! {
            r = self.fetch(request).instrument(span) => r,
            () = self.clock.sleep(limit) => Err(Failure::Source(SourceError::timeout(format!(
                "no answer within {limit:?} (policy fetch_timeout)"
            )))),
        };
        let settled = std::panic::catch_unwind(AssertUnwindSafe(|| self.complete(id, outcome)));
        if settled.is_err() {
            // A bug: without this the attempt would stay "in flight" and the session would
            // never fetch again. Counted as a restart and retried after a pause.
            tracing::error!("settling a token fetch panicked; retrying");
            let mut inner = self.inner.lock();
            inner.attempts.retain(|a| a.id != id);
            inner.counters.driver_restarts += 1;
            inner.next_retry_at = Some(self.now().saturating_add(1_000));
        }
        self.wake.notify_one();
    }

    /// One fetch: takes the credentials (one fetch per key at a time), calls the source with
    /// panics caught, keeps rotated credentials and saves them before the token is handed out,
    /// unless waiting for the store would cost the stream its token.
    async fn fetch(self: &Arc<Self>, mut request: FetchRequest) -> Result<Answer, Failure> {
        let timeout = self.policy.fetch_timeout;
        let guard = if let Some(slot) = self.credential_slot().filter(|s| s.in_use()) {
            let guard = slot
                .begin_fetch(timeout)
                .await
                .map_err(|e| Failure::Public(Error::StoreFailed { message: e.message }))?;
            request.credentials = guard.credentials.clone();
            Some(guard)
        } else {
            None
        };
        // Kept to scrub them from the source's error text (it may quote a backend answer).
        let previous = request.previous.clone();
        let credentials = request.credentials.clone();
        let answer = AssertUnwindSafe(self.source.fetch(request))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                Err(SourceError::network(
                    "the token source panicked; the panic message is in the host's log",
                ))
            });
        let arrived = (self.now(), self.clock.now_unix_ms());
        match answer {
            Ok(fetched) => {
                if let Some(rotated) = fetched.rotated.clone() {
                    let slot = self.credential_slot_or_init();
                    if let Some(g) = &guard {
                        if !slot.rotate_from(g.version, rotated) {
                            tracing::info!(
                                "credentials replaced during the refresh; its rotation is dropped"
                            );
                            return Ok(Answer { fetched, arrived });
                        }
                    } else {
                        slot.rotate(rotated);
                    }
                    let now = self.now();
                    let valid_for = self.inner.lock().valid(now).map(|t| t.expires - now);
                    // With a valid token in hand, wait for the save (bounded so it never costs
                    // that token); with none, only as long as a healthy store takes.
                    let margin = millis(self.policy.expiry_margin);
                    let wait = valid_for.map_or(super::Policy::STORE_WAIT_WITHOUT_TOKEN, |v| {
                        dur(v - margin).min(timeout)
                    });
                    slot.persist(wait, timeout, guard).await;
                }
                Ok(Answer { fetched, arrived })
            }
            Err(e) => {
                if let (SourceError::ReauthRequired { .. }, Some(g)) = (&e, &guard) {
                    if let Some(slot) = self.credential_slot() {
                        if slot.replaced_since(g.version) {
                            tracing::info!(
                                "refused credentials were replaced during the refresh; retrying"
                            );
                            return Err(Failure::Superseded);
                        }
                        slot.rejected(g.version);
                    }
                }
                let secrets = [
                    previous.as_ref().map_or("", |t| t.expose()),
                    credentials.as_ref().map_or("", |c| c.expose()),
                ];
                Err(Failure::Source(e.redact(&secrets)))
            }
        }
    }
}
