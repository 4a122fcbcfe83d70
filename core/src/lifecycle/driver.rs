//! The driver: one task per session that decides when to fetch, runs each fetch in a task of
//! its own, and turns answers into published tokens, retries or a fatal stop.
//!
//! - **Supervised**: a panic in the driver (a bug) restarts it; one in a token source or a
//!   credential store is caught in the fetch task and counts as a failed attempt.
//! - **Stalls**: while a valid token is at stake, the driver waits for an attempt only as long
//!   as [`Policy::attempt_budget`] allows, then starts another beside it (at most
//!   [`Policy::MAX_PARALLEL_ATTEMPTS`], dropping the oldest stalled one to make room); a stalled
//!   one keeps running and its token is used if it answers first. Fetches that use credentials run one at a time and are never cancelled,
//!   so a rotated refresh token that arrives late is still kept.
//! - **Wakeups**: the driver sleeps until its next deadline (renewal, expiry, retry, a held
//!   token's start, a stalled attempt) and wakes for requests and keeper signals only.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tracing::Instrument;

use super::event::{Event, EventKind, SessionState};
use super::shared::{Attempt, Held, Inner, Shared};
use super::timing::{self, Evidence};
use super::{expiry, session::IssuedToken};
use crate::clock::millis;
use crate::error::Error;
use crate::source::{FetchReason, FetchRequest, FetchedToken, RetryKind, SourceError};

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

fn dur(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0).unsigned_abs())
}

/// Weight of a new attempt in the smoothed failure rate (1/16).
const FAILURE_EWMA_WEIGHT: f64 = 16.0;

/// A token from the source and when it arrived (elapsed clock, device wall clock): its times
/// are counted from then, not from when a slow store let the session go on.
pub(crate) struct Answer {
    fetched: FetchedToken,
    arrived: (i64, i64),
}

/// Why an attempt failed.
pub(crate) enum Failure {
    Source(SourceError),
    Public(Error),
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
        if self.credentials.in_use() {
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
        let credentialed = self.credentials.in_use();
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
        self.complete(id, outcome);
        self.wake.notify_one();
    }

    /// One fetch: takes the credentials (one fetch per key at a time), calls the source with
    /// panics caught, keeps rotated credentials and saves them before the token is handed out,
    /// unless waiting for the store would cost the stream its token.
    async fn fetch(&self, mut request: FetchRequest) -> Result<Answer, Failure> {
        let timeout = self.policy.fetch_timeout;
        let guard = if self.credentials.in_use() {
            let guard = self
                .credentials
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
                    self.credentials.rotate(rotated);
                    let now = self.now();
                    let valid_for = self.inner.lock().valid(now).map(|t| t.expires - now);
                    // With a valid token in hand, wait for the save (bounded so it never costs
                    // that token); with none, only as long as a healthy store takes.
                    let margin = millis(self.policy.expiry_margin);
                    let wait = valid_for.map_or(super::Policy::STORE_WAIT_WITHOUT_TOKEN, |v| {
                        dur(v - margin).min(timeout)
                    });
                    self.credentials.persist(wait, timeout, guard).await;
                }
                Ok(Answer { fetched, arrived })
            }
            Err(e) => {
                if let (SourceError::ReauthRequired { .. }, Some(g)) = (&e, &guard) {
                    self.credentials.rejected(g.version);
                }
                let secrets = [
                    previous.as_ref().map_or("", |t| t.expose()),
                    credentials.as_ref().map_or("", |c| c.expose()),
                ];
                Err(Failure::Source(e.redact(&secrets)))
            }
        }
    }

    // ---- outcomes ------------------------------------------------------------------------

    /// The session stops waiting for a stalled attempt: a failure (it keeps running).
    fn give_up_on(&self, inner: &mut Inner, id: u64, now: i64, events: &mut Vec<Event>) {
        let Some(a) = inner.attempts.iter_mut().find(|a| a.id == id) else {
            return;
        };
        a.abandoned = true;
        let (reason, started) = (a.reason, a.started_mono);
        let waited = self.clock.monotonic().saturating_sub(started);
        tracing::warn!(
            waited_ms = millis(waited),
            "token fetch stalled; trying again beside it"
        );
        let error = SourceError::timeout(format!(
            "no answer after {waited:?} (policy attempt_budget, fetch_timeout); trying again beside it"
        ));
        self.failed(inner, now, reason, Failure::Source(error), events);
    }

    pub(crate) fn complete(&self, id: u64, outcome: Result<Answer, Failure>) {
        let mut events = Vec::new();
        {
            let mut inner = self.inner.lock();
            if self.is_closed() {
                return;
            }
            let Some(index) = inner.attempts.iter().position(|a| a.id == id) else {
                return;
            };
            let attempt = inner.attempts.swap_remove(index);
            let now = self.now();
            let latency = self.clock.monotonic().saturating_sub(attempt.started_mono);
            // A fetch that never answered measured nothing about the backend's latency.
            let timed_out = matches!(
                &outcome,
                Err(Failure::Source(SourceError::RetryLater {
                    kind: RetryKind::Timeout,
                    ..
                }))
            );
            if !timed_out {
                inner.counters.last_fetch_latency = Some(latency);
                inner.latency_ewma_ms = Some(match inner.latency_ewma_ms {
                    Some(old) => (old * 3 + millis(latency)) / 4,
                    None => millis(latency),
                });
            }
            inner.completed += 1;
            self.settle(&mut inner, &attempt, now, latency, outcome, &mut events);
        }
        self.changed.notify_waiters();
        self.emit_all(events);
    }

    fn settle(
        &self,
        inner: &mut Inner,
        attempt: &Attempt,
        now: i64,
        latency: Duration,
        outcome: Result<Answer, Failure>,
        events: &mut Vec<Event>,
    ) {
        let answer = match outcome {
            Ok(answer) => answer,
            Err(failure) => {
                let fatal = match &failure {
                    Failure::Source(e) => Error::from_source(e).is_fatal(),
                    Failure::Public(e) => e.is_fatal(),
                };
                // A stalled attempt was already counted; only a fatal answer still matters.
                if !attempt.abandoned || fatal {
                    self.failed(inner, now, attempt.reason, failure, events);
                }
                return;
            }
        };
        if inner.fatal.is_some() {
            tracing::debug!("an answer arrived after the session stopped; not used");
            return;
        }
        if attempt.generation < inner.generation || inner.successor.is_some() {
            tracing::debug!("a late answer arrived after a newer token; not used");
            return;
        }
        match self.accept(inner, answer, attempt) {
            Ok(held) => {
                if attempt.abandoned {
                    tracing::info!("the stalled fetch answered after all; using its token");
                }
                self.install(inner, held, now, latency, events);
            }
            Err(e) if !attempt.abandoned => {
                self.failed(inner, now, attempt.reason, Failure::Source(e), events)
            }
            Err(_) => {}
        }
    }

    /// Validates a fetched token and works out its times on the elapsed clock.
    fn accept(
        &self,
        inner: &mut Inner,
        answer: Answer,
        attempt: &Attempt,
    ) -> Result<Held, SourceError> {
        let Answer {
            fetched,
            arrived: (now, wall),
        } = answer;
        let bad = |message: String| SourceError::RetryLater {
            kind: RetryKind::BadToken,
            retry_after: None,
            message,
        };
        if fetched.token.is_empty() {
            return Err(bad("the source returned an empty token".into()));
        }
        let known = [&inner.token, &inner.successor];
        if known
            .iter()
            .any(|t| t.as_ref().is_some_and(|t| t.issued.token == fetched.token))
        {
            return Err(bad(
                "the source returned the same token again instead of a fresh one".into(),
            ));
        }
        let decoded = expiry::decode(fetched.token.expose());
        let earliest = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let evidence = Evidence {
            now_wall: wall,
            server_time: fetched.server_time_ms,
            remembered_server_time: inner.server_offset.map(|o| now.saturating_add(o)),
            issued_at: decoded
                .and_then(|d| d.issued_at_ms)
                .or(fetched.issued_at_ms),
            expires_at: earliest(decoded.and_then(|d| d.expires_at_ms), fetched.expires_at_ms),
            not_before: decoded.and_then(|d| d.not_before_ms),
        };
        let skew = timing::estimate_skew(&evidence, self.policy.max_clock_skew);
        if let Some(why) = skew.ignored {
            tracing::warn!(why, "ignoring the server time of this answer");
        }
        match (skew.basis, evidence.server_time) {
            (timing::SkewBasis::ServerTime, Some(server)) => {
                inner.server_offset = Some(server.saturating_sub(now));
            }
            (timing::SkewBasis::Remembered, _) => {}
            // Contradicted by the token: forget it.
            _ => inner.server_offset = None,
        }
        let started_ago = now.saturating_sub(attempt.started_boot);
        let times = timing::token_times(
            &evidence,
            &skew,
            fetched.expires_in,
            started_ago,
            self.policy.not_before_leeway,
        )
        .unwrap_or(timing::Times {
            expires_in: millis(self.policy.assumed_lifetime),
            starts_in: 0,
            lifetime: millis(self.policy.assumed_lifetime),
        });
        if times.expires_in <= 0 {
            return Err(bad(format!(
                "the source returned an already-expired token (expired {} ms ago after clock correction)",
                -times.expires_in
            )));
        }
        let valid_for = times.expires_in - times.starts_in;
        let lead = millis(self.policy.renew_lead).max(1_000);
        if valid_for < lead {
            return Err(bad(format!(
                "the source returned a token valid for only {valid_for} ms, less than the renewal lead of {lead} ms (policy renew_lead)"
            )));
        }
        let expires = now.saturating_add(times.expires_in);
        Ok(Held {
            issued: IssuedToken {
                token: fetched.token,
                expires_at_ms: wall.saturating_add(times.expires_in),
                received_at_ms: wall,
                reason: inner.cycle.unwrap_or(attempt.reason),
            },
            received: now,
            starts: now.saturating_add(times.starts_in),
            expires,
            lifetime_ms: times.lifetime.max(valid_for),
        })
    }

    fn install(
        &self,
        inner: &mut Inner,
        held: Held,
        now: i64,
        latency: Duration,
        events: &mut Vec<Event>,
    ) {
        // Adaptive lead: how long this cycle took, retries included, in awake time.
        let cycle = self
            .clock
            .monotonic()
            .saturating_sub(inner.cycle_started_mono)
            .max(latency);
        inner.renewal_ewma_ms = (inner.renewal_ewma_ms * 3 + millis(cycle)) / 4;
        let valid_for = held.expires - held.starts;
        let mut lead = millis(self.policy.adaptive_lead_for(
            dur(held.lifetime_ms),
            dur(inner.renewal_ewma_ms),
            dur(inner.latency_ewma_ms.unwrap_or(0)),
            inner.failure_ewma,
        ));
        if self.credentials.in_use() {
            lead = lead.max(millis(self.policy.refresh_lead_for(dur(held.lifetime_ms))));
        }
        let jitter = millis(self.policy.jitter_for(dur(lead)));
        let jitter = (inner.jitter.unit() * jitter as f64) as i64;
        inner.renew_at = timing::renew_at(held.starts, valid_for, lead, jitter);
        let reason = held.issued.reason;

        if inner.ever_issued {
            inner.counters.renewals += 1;
        }
        inner.ever_issued = true;
        if !inner.report_cycle {
            inner.bad_reports = 0;
        }
        inner.report_cycle = false;
        inner.attempt = 0;
        inner.cycle = None;
        inner.next_retry_at = None;
        inner.pending = None;
        inner.last_error = None;
        tracing::info!(
            reason = reason.as_str(),
            expires_at_ms = held.issued.expires_at_ms,
            renew_in_ms = inner.renew_at - now,
            latency_ms = millis(latency),
            "token issued"
        );
        events.push(self.event(EventKind::Issued {
            reason,
            expires_at_ms: held.issued.expires_at_ms,
            renew_at_ms: self.wall_of(inner.renew_at),
            fetch_latency: latency,
        }));
        if held.starts > now {
            let starts_at_ms = self.wall_of(held.starts);
            events.push(self.event(EventKind::NotYetValid { starts_at_ms }));
            if inner.valid(now).is_some() {
                // Keep serving the current token until its successor's start.
                inner.successor = Some(held);
                inner.state = SessionState::Valid;
            } else {
                self.unpublish(inner, now, events);
                inner.token = Some(held);
                inner.expired_reported = false;
                inner.state = SessionState::NotYetValid;
            }
            return;
        }
        if let Some(since) = inner.invalid_since.take() {
            inner.counters.expired_ms += (now - since).max(0).unsigned_abs();
        }
        self.publish(inner, held);
    }

    /// A failed attempt: fatal errors stop the session, the rest are retried.
    pub(crate) fn failed(
        &self,
        inner: &mut Inner,
        now: i64,
        reason: FetchReason,
        failure: Failure,
        events: &mut Vec<Event>,
    ) {
        let (error, retry_after, rate_limited) = match &failure {
            Failure::Source(e) => (
                Error::from_source(e),
                e.retry_after(),
                matches!(
                    e,
                    SourceError::RetryLater {
                        kind: RetryKind::RateLimited,
                        ..
                    }
                ),
            ),
            Failure::Public(e) => (e.clone(), None, false),
        };
        inner.counters.failures += 1;
        inner.failure_ewma += (1.0 - inner.failure_ewma) / FAILURE_EWMA_WEIGHT;
        inner.last_error = Some(error.clone());
        if error.is_fatal() {
            if matches!(error, Error::Forbidden { .. }) {
                self.unpublish(inner, now, events);
            }
            self.fail(inner, error, events);
            return;
        }
        // Only one retry is planned at a time: a second failure in parallel does not reset it.
        if inner.next_retry_at.is_some_and(|at| at > now) {
            return;
        }
        let valid_for = inner
            .valid(now)
            .filter(|_| inner.successor.is_none())
            .map(|t| dur(t.expires - now));
        let unit = inner.jitter.unit();
        let (delay, imposed) = self.policy.retry_delay(
            inner.attempt,
            unit,
            valid_for,
            dur(inner.latency_ewma_ms.unwrap_or(0)),
            inner.failure_ewma,
            retry_after,
            rate_limited,
        );
        let delay = millis(delay);
        if let Some(imposed) = imposed {
            inner.retry_floor = now.saturating_add(millis(imposed));
        }
        let next = now.saturating_add(delay);
        inner.next_retry_at = Some(next);
        inner.cycle = Some(merge(inner.cycle, reason));
        tracing::warn!(
            attempt = inner.attempt,
            next_retry_in_ms = delay,
            error = %error,
            "token fetch failed; retrying"
        );
        events.push(self.event(EventKind::FetchFailed {
            reason,
            attempt: inner.attempt,
            error,
            next_retry_at_ms: self.wall_of(next),
        }));
    }

    /// Stops the session: no more fetches until the host acts (`renew_token()`, new
    /// credentials).
    pub(crate) fn fail(&self, inner: &mut Inner, error: Error, events: &mut Vec<Event>) {
        tracing::error!(error = %error, "token session failed; retries stopped");
        inner.fatal = Some(error.clone());
        inner.state = SessionState::Failed;
        inner.pending = None;
        inner.cycle = None;
        inner.attempt = 0;
        inner.next_retry_at = None;
        let kind = match error {
            Error::ReauthRequired { message } => EventKind::ReauthRequired { message },
            Error::Forbidden { reason } => EventKind::Forbidden { reason },
            error => EventKind::Failed { error },
        };
        events.push(self.event(kind));
    }
}
