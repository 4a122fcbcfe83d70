//! What becomes of a fetch: a token published (or held until its start), a retry planned, or a
//! fatal stop. Validation of a fetched token and its times on the elapsed clock live here too.

use std::time::Duration;

use super::driver::{Answer, FAILURE_EWMA_WEIGHT, Failure, dur, merge};
use super::event::{Event, EventKind, SessionState};
use super::shared::{Attempt, Held, Inner, Shared};
use super::timing::{self, Evidence};
use super::{expiry, session::IssuedToken};
use crate::clock::millis;
use crate::error::Error;
use crate::source::{FetchReason, RetryKind, SourceError};

impl Shared {
    /// The session stops waiting for a stalled attempt: a failure (it keeps running).
    pub(crate) fn give_up_on(&self, inner: &mut Inner, id: u64, now: i64, events: &mut Vec<Event>) {
        let Some(a) = inner.attempts.iter_mut().find(|a| a.id == id) else {
            return;
        };
        a.abandoned = true;
        let (reason, started, network_lost) = (a.reason, a.started_mono, a.network_lost);
        let waited = self.clock.monotonic().saturating_sub(started);
        tracing::warn!(
            waited_ms = millis(waited),
            "token fetch stalled; trying again beside it"
        );
        let error = SourceError::timeout(format!(
            "no answer after {waited:?} (policy attempt_budget, fetch_timeout); trying again beside it"
        ));
        self.failed(inner, now, reason, Failure::Source(error), events);
        if network_lost && inner.fatal.is_none() {
            inner.next_retry_at = Some(now.max(inner.retry_floor));
        }
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
        // Events first: a caller woken by the outcome finds its events already queued for the
        // listeners (`flush_listeners` right after the call sees them).
        self.emit_all(events);
        self.changed.notify_waiters();
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
            Err(Failure::Superseded) => {
                inner.pending = Some(merge(inner.pending, attempt.reason));
                inner.next_retry_at = None;
                return;
            }
            Err(failure) => {
                let fatal = match &failure {
                    Failure::Source(e) => Error::from_source(e).is_fatal(),
                    Failure::Public(e) => e.is_fatal(),
                    Failure::Superseded => false,
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
        // A server time read before a device sleep and delivered after it is stale by the
        // sleep: good for this answer (its uncertainty covers the whole fetch), not to keep.
        let awake = millis(self.clock.monotonic().saturating_sub(attempt.started_mono));
        let slept_during_fetch = now.saturating_sub(attempt.started_boot) - awake > 1_000;
        match (skew.basis, evidence.server_time) {
            (timing::SkewBasis::ServerTime, Some(_)) if slept_during_fetch => {}
            (timing::SkewBasis::ServerTime, Some(_)) => {
                let server = wall.saturating_add(skew.ms);
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
        // A token that arrives already past its own renewal point (a cached or stale one) is
        // renewed at once. It is refused while the session holds a valid token (taking it would
        // renew in a loop), and taken when the session holds none: a short-lived token beats
        // none, and its renewals, refused, back off. Under 1 s left, it is refused. A fresh
        // short token renews at half-life.
        let valid_for = times.expires_in - times.starts_in;
        let lead = millis(self.policy.lead_for(dur(times.lifetime))).max(1_000);
        // A held token past its last useful start (a renewal started later lands after its
        // expiry) is as good as none to a stale token that outlives it: the stream would drop
        // in between.
        let margin = inner
            .latency_ewma_ms
            .unwrap_or(0)
            .saturating_add(millis(self.policy.expiry_margin));
        let holds_valid = inner.valid(now).is_some_and(|t| {
            t.expires.saturating_sub(now) > margin
                || t.expires >= now.saturating_add(times.expires_in)
        });
        if valid_for >= 1_000 && valid_for < lead && !holds_valid {
            tracing::warn!(
                valid_for_ms = valid_for,
                lifetime_ms = times.lifetime,
                "the source returned a token already past its renewal point (a cached one?): \
                 using it while no better token is held, and renewing it at once"
            );
        } else if valid_for < lead {
            return Err(bad(format!(
                "the source returned a token valid for only {valid_for} ms of its {} ms life, \
                 already past its renewal point ({lead} ms before expiry, policy renew_lead): \
                 return a freshly issued token, not a cached one",
                times.lifetime
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
        if self.credentials_in_use() {
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
        let kind = match &failure {
            Failure::Source(SourceError::RetryLater { kind, .. }) => Some(*kind),
            _ => None,
        };
        let (error, retry_after) = match &failure {
            Failure::Source(e) => (Error::from_source(e), e.retry_after()),
            Failure::Public(e) => (e.clone(), None),
            Failure::Superseded => return,
        };
        let rate_limited = kind == Some(RetryKind::RateLimited);
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
        // The source answered with a token it should not have (a stale cached one, the same
        // one again): asking faster will not change its mind, so back off as usual instead of
        // packing attempts into the held token's last seconds, but ask again by its expiry.
        let refused = kind == Some(RetryKind::BadToken);
        let held_for = valid_for.filter(|_| refused);
        let valid_for = valid_for.filter(|_| !refused);
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
        // By the last useful start (an attempt started later lands after the expiry) while it
        // is ahead, then once at the expiry: at most two attempts in the held token's last
        // stretch, and a fresh token asked for in time to replace it.
        let delay = match held_for {
            Some(left) => {
                let latency = dur(inner.latency_ewma_ms.unwrap_or(0));
                let last_useful = left
                    .saturating_sub(latency)
                    .saturating_sub(self.policy.expiry_margin);
                let by = if last_useful > self.policy.min_retry_delay {
                    last_useful
                } else {
                    left.max(self.policy.min_retry_delay)
                };
                delay.min(by)
            }
            None => delay,
        };
        // A server's `Retry-After` the retry comes before (to ask by the held token's expiry)
        // is no floor: `renew_token()` would refuse, and say the next attempt is further off.
        let imposed = imposed.map(|ra| ra.min(delay));
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
