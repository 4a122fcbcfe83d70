//! Renewal and retry policy: every knob, its default, and the arithmetic that uses it.

use std::time::Duration;

/// How a session schedules renewals and retries. Start from [`Policy::default`] and override.
///
/// Worked example with the defaults and a 60 s token issued at 12:00:00:
/// - renewal starts between 12:00:27 and 12:00:30 (lead 30 s, up to 3 s of jitter earlier);
/// - if that fetch fails, retries come after ~1 s, ~2 s, ~4 s … paced to fit the remaining
///   lifetime (see *Deadline-aware retry* below), never earlier than a 429's `Retry-After`;
/// - once the token expired, retries back off exponentially (with jitter) up to 30 s apart and
///   honour every `Retry-After`;
/// - a fetch that has not answered after 10 s is abandoned and counts as a failure;
/// - `Session::token()` waits up to 30 s across failed attempts for a valid token.
///
/// # Deadline-aware retry
///
/// While the current token is still valid, a fixed backoff that sleeps past its expiry loses the
/// stream, so retries are paced to the time left. With `L` the smoothed fetch latency, `p` the
/// smoothed share of failed attempts and `n` = [`Policy::attempts_needed`]`(p)` (enough attempts
/// that all of them fail with probability at most [`Policy::renewal_miss_target`], and at least
/// [`Policy::min_attempts_before_expiry`]):
///
/// - **last useful start** = expiry − `L` − [`Policy::expiry_margin`]: an attempt started later
///   is not expected to land before expiry. No retry — backoff or `Retry-After` — is scheduled
///   later than that while the token is valid; once it has passed, retries follow each other
///   [`Policy::min_retry_delay`] apart until the token expires.
/// - **pace**: the time to the last useful start is shared among the attempts still planned
///   (`max(n − failed attempts, 2)`): the delay is `min(backoff, slot − L)`, at least
///   `min_retry_delay`.
/// - **`Retry-After`** while the token is valid: a 429's is honoured when it fits before the last
///   useful start (otherwise the retry moves to the last useful start); a 5xx's is advisory
///   (RFC 9110) and honoured only within the pace. Without a valid token to protect (first
///   fetch, expired, rejected) every `Retry-After` is honoured, up to
///   [`Policy::max_retry_after`].
/// - **adaptive lead**: renewal starts early enough for `n` attempts:
///   `lead = max(lead_for(lifetime) + 2 × renewal time, n × L + (n − 1) × min_retry_delay +
///   expiry_margin)`, capped at 19/20 of the token's lifetime (a token is always used for at
///   least a twentieth of its life, so renewals never loop back to back). With short tokens and
///   a flaky backend that means renewing soon after issue.
///
/// Worked example: 3 s tokens (2.7 s left on receipt after a 300 ms fetch), `renew_lead` 1 s,
/// 30 % of fetches failing. `n` = ⌈ln 10⁻⁶ / ln 0.3⌉ = 12 attempts would need
/// 12 × 300 + 11 × 20 + 100 ms ≈ 3.9 s, so the lead is capped at 19/20 × 2.7 s ≈ 2.57 s: renewal
/// starts 135 ms after receipt. After a failure the pace slot is below `L`, so retries follow
/// 20 ms apart: 8 attempts fit before expiry, and all 8 fail with probability 0.3⁸ ≈ 7 × 10⁻⁵.
/// A 503 with `Retry-After: 1` in that window does not delay the next attempt; a 429 with
/// `Retry-After: 1` delays it 1 s if that still leaves a start before 2.3 s, else to 2.3 s.
///
/// ```
/// use std::time::Duration;
/// use tokenkeeper::lifecycle::Policy;
///
/// let policy = Policy { renew_lead: Duration::from_secs(60), ..Policy::default() };
/// // A one-hour token renews 60 s before expiry; a 90 s token (≤ 2 × lead) renews at half-life.
/// assert_eq!(policy.lead_for(Duration::from_secs(3600)), Duration::from_secs(60));
/// assert_eq!(policy.lead_for(Duration::from_secs(90)), Duration::from_secs(45));
/// // A healthy backend needs the minimum of attempts; 30 % failures need 12.
/// assert_eq!(policy.attempts_needed(0.0), 4);
/// assert_eq!(policy.attempts_needed(0.3), 12);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Renew when the remaining lifetime is at most this. Default [`Policy::DEFAULT_RENEW_LEAD`].
    /// Tokens whose whole lifetime is ≤ 2 × lead renew at half-life instead. A token that
    /// arrives already past that point (a cached token issued long ago), or with less than 1 s
    /// left, is refused as unusable: renewing it at once would loop.
    pub renew_lead: Duration,
    /// Renewal starts up to this much *earlier* than the lead, chosen at random per token, so
    /// thousands of sessions do not fetch in the same millisecond. Capped at a tenth of the
    /// effective lead. Default [`Policy::DEFAULT_RENEW_JITTER`].
    pub renew_jitter: Duration,
    /// A fetch that takes longer is abandoned and retried. Default [`Policy::DEFAULT_FETCH_TIMEOUT`].
    pub fetch_timeout: Duration,
    /// How long a fetch that uses credentials (a refresh) is waited for before it is dropped.
    /// It counts as failed after [`Policy::fetch_timeout`], but no other fetch with the same
    /// credentials starts before it answers or this time passes: replaying a refresh token the
    /// server may already have used makes servers with reuse detection revoke the whole family
    /// (RFC 9700 §4.14.2), which signs the user out. Its rotation is kept if it answers late.
    /// So that a stalled refresh never costs the stream, such sessions renew early enough for
    /// it and one more attempt ([`Policy::refresh_lead_for`]).
    /// Default [`Policy::DEFAULT_REFRESH_ANSWER_WAIT`].
    pub refresh_answer_wait: Duration,
    /// First retry delay. Default [`Policy::DEFAULT_BACKOFF_INITIAL`].
    pub backoff_initial: Duration,
    /// Largest retry delay (the exponential backoff stops growing here).
    /// Default [`Policy::DEFAULT_BACKOFF_MAX`].
    pub backoff_max: Duration,
    /// Smallest retry delay, even when the token is about to expire (paced retries shrink to
    /// it). Default [`Policy::DEFAULT_MIN_RETRY_DELAY`].
    pub min_retry_delay: Duration,
    /// A server `Retry-After` longer than this is clamped to it. Default
    /// [`Policy::DEFAULT_MAX_RETRY_AFTER`].
    pub max_retry_after: Duration,
    /// Renew earlier when recent renewals were slow or fetches failed: the lead grows to twice
    /// the smoothed renewal duration over the base lead, and to the time
    /// [`Policy::attempts_needed`] attempts take (see *Deadline-aware retry*), up to 19/20 of the
    /// token's lifetime. Default `true`.
    pub adaptive_lead: bool,
    /// While a token is valid, plan at least this many attempts before it expires.
    /// Default [`Policy::DEFAULT_MIN_ATTEMPTS_BEFORE_EXPIRY`].
    pub min_attempts_before_expiry: u32,
    /// Plan enough attempts before expiry that all of them fail with at most this probability,
    /// given the observed failure rate. Default [`Policy::DEFAULT_RENEWAL_MISS_TARGET`].
    pub renewal_miss_target: f64,
    /// The last attempt before expiry is planned to land at least this long before it.
    /// Default [`Policy::DEFAULT_EXPIRY_MARGIN`].
    pub expiry_margin: Duration,
    /// How long `Session::token()` waits for a valid token across failed attempts before it
    /// returns the last failure (`Error::RetryLater`); fatal errors return at once. Zero: return
    /// the outcome of the next completed attempt. Default [`Policy::DEFAULT_TOKEN_WAIT`].
    pub token_wait: Duration,
    /// A token rejected (`token_rejected()`) within this time of being received counts as
    /// "rejected at once": it is refetched once, a second one is reported as fatal.
    /// Default [`Policy::DEFAULT_FRESH_REJECTION_WINDOW`].
    pub fresh_rejection_window: Duration,
    /// Lifetime assumed when neither the token nor the source states an expiry.
    /// Default [`Policy::DEFAULT_ASSUMED_LIFETIME`].
    pub assumed_lifetime: Duration,
    /// A token whose `nbf` lies at most this far ahead is valid at once (a device a second slow
    /// and a JWT with `nbf = iat`, the common server default); a later `nbf` is a scheduled
    /// token, held until its start. Default [`Policy::DEFAULT_NOT_BEFORE_LEEWAY`].
    pub not_before_leeway: Duration,
    /// A server time further than this from the device clock is ignored (a broken `Date`
    /// header, a cache): the skew it implies is not believed, unless it lies inside the life of
    /// the token it came with (`iat` to expiry), which proves the device clock wrong. Default
    /// [`Policy::DEFAULT_MAX_CLOCK_SKEW`].
    pub max_clock_skew: Duration,
    /// Seed for the jitter generator; `None` (default) seeds from the clock and session id.
    /// Set it in tests for reproducible schedules.
    pub jitter_seed: Option<u64>,
}

impl Policy {
    /// 30 s.
    pub const DEFAULT_RENEW_LEAD: Duration = Duration::from_secs(30);
    /// 3 s.
    pub const DEFAULT_RENEW_JITTER: Duration = Duration::from_secs(3);
    /// 10 s.
    pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10);
    /// 60 s (reqwest-based OAuth clients give up on the token endpoint after about as long).
    pub const DEFAULT_REFRESH_ANSWER_WAIT: Duration = Duration::from_secs(60);
    /// 1 s.
    pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
    /// 30 s.
    pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);
    /// 20 ms.
    pub const DEFAULT_MIN_RETRY_DELAY: Duration = Duration::from_millis(20);
    /// 4.
    pub const DEFAULT_MIN_ATTEMPTS_BEFORE_EXPIRY: u32 = 4;
    /// 10⁻⁶ (one lost renewal in a million, if failures are independent).
    pub const DEFAULT_RENEWAL_MISS_TARGET: f64 = 1e-6;
    /// 100 ms.
    pub const DEFAULT_EXPIRY_MARGIN: Duration = Duration::from_millis(100);
    /// 30 s.
    pub const DEFAULT_TOKEN_WAIT: Duration = Duration::from_secs(30);
    /// Upper bound of [`Policy::attempts_needed`].
    pub const MAX_PLANNED_ATTEMPTS: u32 = 16;
    /// 1 h.
    pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
    /// 10 s.
    pub const DEFAULT_FRESH_REJECTION_WINDOW: Duration = Duration::from_secs(10);
    /// 1 h.
    pub const DEFAULT_ASSUMED_LIFETIME: Duration = Duration::from_secs(3600);
    /// 60 s, as JWT libraries use.
    pub const DEFAULT_NOT_BEFORE_LEEWAY: Duration = Duration::from_secs(60);
    /// 24 h.
    pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(86_400);
    /// Rotated credentials are saved before the token that came with them is handed out. While
    /// a valid token is in hand the session waits for the save up to `fetch_timeout` (never
    /// past that token's expiry); with none, it waits this long, 250 ms (a healthy keychain or
    /// an fsync takes milliseconds), then hands the token out while the save goes on: the
    /// stream needs it more than a slow store does.
    pub const STORE_WAIT_WITHOUT_TOKEN: Duration = Duration::from_millis(250);
    /// At most this many fetches of one session run at once (a stalled one and its stand-ins);
    /// sessions whose fetches use credentials run one at a time.
    pub const MAX_PARALLEL_ATTEMPTS: usize = 3;

    /// The renewal lead for a token of `lifetime`: `renew_lead`, or `lifetime / 2` when
    /// `lifetime ≤ 2 × renew_lead`.
    pub fn lead_for(&self, lifetime: Duration) -> Duration {
        if lifetime <= self.renew_lead.saturating_mul(2) {
            lifetime / 2
        } else {
            self.renew_lead
        }
    }

    /// Attempts to plan before expiry at an observed per-attempt `failure_rate`: the smallest
    /// `n` with `failure_rate^n ≤ renewal_miss_target`, at least `min_attempts_before_expiry`,
    /// at most [`Policy::MAX_PLANNED_ATTEMPTS`].
    pub fn attempts_needed(&self, failure_rate: f64) -> u32 {
        let min = self.min_attempts_before_expiry.max(1);
        let p = failure_rate.clamp(0.0, 0.99);
        let target = self.renewal_miss_target.clamp(1e-15, 0.5);
        if p <= target {
            return min.min(Self::MAX_PLANNED_ATTEMPTS);
        }
        let n = (target.ln() / p.ln()).ceil();
        // `n` is finite and positive here (both logarithms are negative).
        let n = if n >= f64::from(Self::MAX_PLANNED_ATTEMPTS) {
            Self::MAX_PLANNED_ATTEMPTS
        } else {
            n as u32
        };
        n.max(min).min(Self::MAX_PLANNED_ATTEMPTS)
    }

    /// The effective renewal lead for a token of `lifetime` (see *Deadline-aware retry*):
    /// `renewal` is the smoothed time renewals took (retries included), `latency` the smoothed
    /// time one fetch takes, `failure_rate` the smoothed share of failed fetches.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokenkeeper::lifecycle::Policy;
    /// let p = Policy { renew_lead: Duration::from_secs(1), ..Policy::default() };
    /// let ms = Duration::from_millis;
    /// // Healthy: the base lead.
    /// assert_eq!(p.adaptive_lead_for(ms(2_700), ms(0), ms(0), 0.0), ms(1_000));
    /// // 300 ms fetches, 30 % failing: as early as the cap allows (19/20 of the lifetime).
    /// assert_eq!(p.adaptive_lead_for(ms(2_700), ms(300), ms(300), 0.3), ms(2_565));
    /// ```
    pub fn adaptive_lead_for(
        &self,
        lifetime: Duration,
        renewal: Duration,
        latency: Duration,
        failure_rate: f64,
    ) -> Duration {
        let base = self.lead_for(lifetime);
        if !self.adaptive_lead {
            return base;
        }
        let n = self.attempts_needed(failure_rate);
        let attempts = latency
            .saturating_mul(n)
            .saturating_add(self.min_retry_delay.saturating_mul(n - 1))
            .saturating_add(self.expiry_margin);
        base.saturating_add(renewal.saturating_mul(2))
            .max(attempts)
            .min(lifetime / 20 * 19)
            .max(base)
    }

    /// When to retry after failed attempt number `attempt` of a cycle (see *Deadline-aware
    /// retry*). `valid_for`: how long the current token is still valid (`None`: no valid token).
    /// `unit` is a random number in `[0, 1)` for the backoff jitter. Returns the delay and the
    /// part of it a server imposed (`Retry-After`, which signals must not cut short).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn retry_delay(
        &self,
        attempt: u32,
        unit: f64,
        valid_for: Option<Duration>,
        latency: Duration,
        failure_rate: f64,
        retry_after: Option<Duration>,
        rate_limited: bool,
    ) -> (Duration, Option<Duration>) {
        // Never a busy loop, whatever the policy says.
        let floor = self.min_retry_delay.max(Duration::from_millis(10));
        let backoff = self.backoff_delay(attempt, unit);
        let retry_after = retry_after.map(|ra| ra.min(self.max_retry_after));
        let Some(valid_for) = valid_for else {
            let delay = backoff.max(floor).max(retry_after.unwrap_or_default());
            return (delay, retry_after);
        };
        let budget = valid_for
            .saturating_sub(latency)
            .saturating_sub(self.expiry_margin);
        let slots = self
            .attempts_needed(failure_rate)
            .saturating_sub(attempt)
            .max(2);
        let pace = (budget / slots).saturating_sub(latency);
        let mut delay = backoff;
        if !rate_limited {
            delay = delay.max(retry_after.unwrap_or_default());
        }
        delay = delay.min(pace);
        if rate_limited {
            delay = delay.max(retry_after.unwrap_or_default());
        }
        let delay = delay.min(budget).max(floor);
        (delay, retry_after.map(|ra| ra.min(delay)))
    }

    /// How long to wait for one attempt before starting another beside it. With no valid
    /// token at stake (`valid_for` = `None`) that is the whole `fetch_timeout`; while a token is
    /// valid, a stalled connection must not eat its remaining life, so the wait is
    /// `max(4 × latency, 250 ms)`, at most half the time left before the expiry margin and at
    /// most `fetch_timeout`, but never less than twice the usual latency (an answer on time is
    /// never given up on) nor `min_retry_delay`. The stalled attempt is not cancelled: if it
    /// answers first, its token is used.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokenkeeper::lifecycle::Policy;
    /// let p = Policy::default();
    /// let ms = Duration::from_millis;
    /// assert_eq!(p.attempt_budget(None, ms(300)), Duration::from_secs(10));
    /// // A 3 s token with 2.5 s left and 300 ms fetches: give up waiting after 1.2 s.
    /// assert_eq!(p.attempt_budget(Some(ms(2_500)), ms(300)), ms(1_200));
    /// // 600 ms left: 250 ms.
    /// assert_eq!(p.attempt_budget(Some(ms(600)), ms(10)), ms(250));
    /// ```
    pub fn attempt_budget(&self, valid_for: Option<Duration>, latency: Duration) -> Duration {
        let Some(valid_for) = valid_for else {
            return self.fetch_timeout;
        };
        let half_left = valid_for.saturating_sub(self.expiry_margin) / 2;
        latency
            .saturating_mul(4)
            .max(Duration::from_millis(250))
            .min(half_left)
            .min(self.fetch_timeout)
            .max(latency.saturating_mul(2))
            .max(self.min_retry_delay)
    }

    /// The least lead of a session whose fetches use credentials: room for a stalled refresh
    /// and one more attempt (`refresh_answer_wait + fetch_timeout`), when the token lives at
    /// least twice that; otherwise nothing more than [`Policy::lead_for`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokenkeeper::lifecycle::Policy;
    /// let p = Policy::default();
    /// // A one-hour OAuth access token renews 70 s before expiry, a 60 s token at half-life.
    /// assert_eq!(p.refresh_lead_for(Duration::from_secs(3600)), Duration::from_secs(70));
    /// assert_eq!(p.refresh_lead_for(Duration::from_secs(60)), Duration::ZERO);
    /// ```
    pub fn refresh_lead_for(&self, lifetime: Duration) -> Duration {
        let room = self.refresh_answer_wait.saturating_add(self.fetch_timeout);
        if lifetime >= room.saturating_mul(2) {
            room
        } else {
            Duration::ZERO
        }
    }

    /// The jitter cap for an effective lead: `min(renew_jitter, lead / 10)`.
    pub fn jitter_for(&self, lead: Duration) -> Duration {
        self.renew_jitter.min(lead / 10)
    }

    /// The un-paced backoff delay before retry number `attempt` (1 = first retry):
    /// `min(backoff_max, backoff_initial × 2^(attempt-1))`, then "equal jitter": half of it fixed,
    /// half random (`unit` is a random number in `[0, 1)`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokenkeeper::lifecycle::Policy;
    /// let p = Policy::default();
    /// assert_eq!(p.backoff_delay(1, 0.0), Duration::from_millis(500));
    /// assert_eq!(p.backoff_delay(3, 0.0), Duration::from_secs(2));
    /// assert_eq!(p.backoff_delay(20, 1.0), Duration::from_secs(30)); // capped at 30 s
    /// ```
    pub fn backoff_delay(&self, attempt: u32, unit: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let base = self
            .backoff_initial
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max);
        let half = base / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            renew_lead: Self::DEFAULT_RENEW_LEAD,
            renew_jitter: Self::DEFAULT_RENEW_JITTER,
            fetch_timeout: Self::DEFAULT_FETCH_TIMEOUT,
            refresh_answer_wait: Self::DEFAULT_REFRESH_ANSWER_WAIT,
            backoff_initial: Self::DEFAULT_BACKOFF_INITIAL,
            backoff_max: Self::DEFAULT_BACKOFF_MAX,
            min_retry_delay: Self::DEFAULT_MIN_RETRY_DELAY,
            max_retry_after: Self::DEFAULT_MAX_RETRY_AFTER,
            adaptive_lead: true,
            min_attempts_before_expiry: Self::DEFAULT_MIN_ATTEMPTS_BEFORE_EXPIRY,
            renewal_miss_target: Self::DEFAULT_RENEWAL_MISS_TARGET,
            expiry_margin: Self::DEFAULT_EXPIRY_MARGIN,
            token_wait: Self::DEFAULT_TOKEN_WAIT,
            fresh_rejection_window: Self::DEFAULT_FRESH_REJECTION_WINDOW,
            assumed_lifetime: Self::DEFAULT_ASSUMED_LIFETIME,
            not_before_leeway: Self::DEFAULT_NOT_BEFORE_LEEWAY,
            max_clock_skew: Self::DEFAULT_MAX_CLOCK_SKEW,
            jitter_seed: None,
        }
    }
}

/// A tiny deterministic generator for jitter (SplitMix64). Not for anything secret.
#[derive(Debug, Clone)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_tokens_renew_at_half_life() {
        let p = Policy::default();
        assert_eq!(p.lead_for(Duration::from_secs(60)), Duration::from_secs(30));
        assert_eq!(p.lead_for(Duration::from_secs(40)), Duration::from_secs(20));
        assert_eq!(p.lead_for(Duration::from_secs(61)), Duration::from_secs(30));
        assert_eq!(
            p.jitter_for(Duration::from_secs(30)),
            Duration::from_secs(3)
        );
        assert_eq!(
            p.jitter_for(Duration::from_secs(20)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_equal_jitter() {
        let p = Policy::default();
        let lows: Vec<u64> = (1..=7)
            .map(|a| p.backoff_delay(a, 0.0).as_millis() as u64)
            .collect();
        assert_eq!(lows, [500, 1000, 2000, 4000, 8000, 15000, 15000]);
        assert_eq!(p.backoff_delay(2, 0.5), Duration::from_millis(1500));
    }

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn attempts_needed_grow_with_the_failure_rate() {
        let p = Policy::default();
        let n: Vec<u32> = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.9, 1.0]
            .iter()
            .map(|r| p.attempts_needed(*r))
            .collect();
        assert_eq!(n, [4, 5, 6, 9, 12, 16, 16, 16]);
    }

    #[test]
    fn retries_while_valid_never_land_after_the_last_useful_start() {
        let p = Policy::default();
        // 800 ms left, 300 ms fetches: the last useful start is 400 ms from now.
        for attempt in 1..10 {
            let (d, _) = p.retry_delay(attempt, 0.9, Some(ms(800)), ms(300), 0.3, None, false);
            assert_eq!(
                d,
                ms(20),
                "attempt {attempt}: back to back when time is short"
            );
        }
        // A 503's Retry-After: 1 there is advisory: not honoured past the pace.
        let (d, floor) = p.retry_delay(1, 0.0, Some(ms(800)), ms(300), 0.3, Some(ms(1_000)), false);
        assert_eq!((d, floor), (ms(20), Some(ms(20))));
        // A 429's Retry-After is honoured when it fits, capped at the last useful start if not.
        let (d, _) = p.retry_delay(1, 0.0, Some(ms(10_000)), ms(0), 0.0, Some(ms(5_000)), true);
        assert_eq!(d, ms(5_000));
        let (d, floor) =
            p.retry_delay(1, 0.0, Some(ms(10_000)), ms(0), 0.0, Some(ms(50_000)), true);
        assert_eq!((d, floor), (ms(9_900), Some(ms(9_900))));
        // With plenty of time the backoff applies (0.5 s for the first retry at unit 0).
        let (d, _) = p.retry_delay(1, 0.0, Some(ms(30_000)), ms(100), 0.0, None, false);
        assert_eq!(d, ms(500));
        // Once the backoff outgrows the pace, the pace applies: the time to the last useful
        // start shared by the attempts still planned (4 - 6, at least 2), minus the latency:
        // (30 000 - 100 - 100) / 2 - 100 = 14 800 ms (the backoff would be 30 s).
        let (d, _) = p.retry_delay(3, 1.0, Some(ms(30_000)), ms(100), 0.0, None, false);
        assert_eq!(d, ms(4_000));
        let (d, _) = p.retry_delay(6, 1.0, Some(ms(30_000)), ms(100), 0.0, None, false);
        assert_eq!(d, ms(14_800));
    }

    #[test]
    fn without_a_valid_token_backoff_and_retry_after_apply_in_full() {
        let p = Policy::default();
        let (d, floor) = p.retry_delay(1, 0.0, None, ms(300), 0.3, Some(ms(1_000)), false);
        assert_eq!((d, floor), (ms(1_000), Some(ms(1_000))));
        let (d, _) = p.retry_delay(10, 1.0, None, ms(300), 0.3, None, false);
        assert_eq!(d, Policy::DEFAULT_BACKOFF_MAX);
        let (d, _) = p.retry_delay(
            1,
            0.0,
            None,
            ms(0),
            0.0,
            Some(Duration::from_secs(7_200)),
            true,
        );
        assert_eq!(d, Policy::DEFAULT_MAX_RETRY_AFTER);
    }

    #[test]
    fn adaptive_lead_renews_earlier_when_fetches_fail() {
        let p = Policy {
            renew_lead: Duration::from_secs(2),
            ..Policy::default()
        };
        let life = Duration::from_secs(4);
        // Healthy: half-life (4 s token, 2 s lead).
        assert_eq!(p.adaptive_lead_for(life, ms(150), ms(150), 0.0), ms(2_300));
        // 20 % failures, 150 ms fetches: 9 attempts = 9 × 150 + 8 × 20 + 100 = 1 610 ms, under
        // the base + 2 × renewal time.
        assert_eq!(p.adaptive_lead_for(life, ms(150), ms(150), 0.2), ms(2_300));
        // Renewals that took 1 s (retries): as early as the cap allows.
        assert_eq!(
            p.adaptive_lead_for(life, ms(1_000), ms(150), 0.2),
            ms(3_800)
        );
        let off = Policy {
            adaptive_lead: false,
            ..p
        };
        assert_eq!(
            off.adaptive_lead_for(life, ms(1_000), ms(150), 0.9),
            ms(2_000)
        );
    }

    #[test]
    fn jitter_units_are_in_range_and_spread() {
        let mut j = Jitter::new(7);
        let xs: Vec<f64> = (0..1000).map(|_| j.unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / 1000.0;
        assert!((0.45..0.55).contains(&mean), "{mean}");
    }
}
