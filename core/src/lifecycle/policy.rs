//! Renewal and retry policy: every knob, its default, and the arithmetic that uses it.

use std::time::Duration;

/// How a session schedules renewals and retries. Start from [`Policy::default`] and override.
///
/// Worked example with the defaults and a 60 s token issued at 12:00:00:
/// - renewal starts between 12:00:27 and 12:00:30 (lead 30 s, up to 3 s of jitter earlier);
/// - if that fetch fails, retries come after ~1 s, ~2 s, ~4 s … but never later than a quarter of
///   the remaining lifetime (deadline-aware pacing), and never earlier than a `Retry-After`;
/// - once the token expired, retries back off exponentially (with jitter) up to 30 s apart;
/// - a fetch that has not answered after 10 s is abandoned and counts as a failure.
///
/// ```
/// use std::time::Duration;
/// use tokenkeeper::lifecycle::Policy;
///
/// let policy = Policy { renew_lead: Duration::from_secs(60), ..Policy::default() };
/// // A one-hour token renews 60 s before expiry; a 90 s token (≤ 2 × lead) renews at half-life.
/// assert_eq!(policy.lead_for(Duration::from_secs(3600)), Duration::from_secs(60));
/// assert_eq!(policy.lead_for(Duration::from_secs(90)), Duration::from_secs(45));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Renew when the remaining lifetime is at most this. Default [`Policy::DEFAULT_RENEW_LEAD`].
    /// Tokens whose whole lifetime is ≤ 2 × lead renew at half-life instead; tokens that arrive
    /// with less than this (at least 1 s) left are refused as unusable (loop breaker).
    pub renew_lead: Duration,
    /// Renewal starts up to this much *earlier* than the lead, chosen at random per token, so
    /// thousands of sessions do not fetch in the same millisecond. Capped at a tenth of the
    /// effective lead. Default [`Policy::DEFAULT_RENEW_JITTER`].
    pub renew_jitter: Duration,
    /// A fetch that takes longer is abandoned and retried. Default [`Policy::DEFAULT_FETCH_TIMEOUT`].
    pub fetch_timeout: Duration,
    /// First retry delay. Default [`Policy::DEFAULT_BACKOFF_INITIAL`].
    pub backoff_initial: Duration,
    /// Largest retry delay (the exponential backoff stops growing here).
    /// Default [`Policy::DEFAULT_BACKOFF_MAX`].
    pub backoff_max: Duration,
    /// Smallest retry delay, even when the token is about to expire.
    /// Default [`Policy::DEFAULT_MIN_RETRY_DELAY`].
    pub min_retry_delay: Duration,
    /// A server `Retry-After` longer than this is clamped to it. Default
    /// [`Policy::DEFAULT_MAX_RETRY_AFTER`].
    pub max_retry_after: Duration,
    /// Renew earlier when recent renewals were slow or needed retries (adds twice the smoothed
    /// renewal duration to the lead, up to three quarters of the token's lifetime).
    /// Default `true`.
    pub adaptive_lead: bool,
    /// A token rejected (`token_rejected()`) within this time of being received counts as
    /// "rejected at once": it is refetched once, a second one is reported as fatal.
    /// Default [`Policy::DEFAULT_FRESH_REJECTION_WINDOW`].
    pub fresh_rejection_window: Duration,
    /// Lifetime assumed when neither the token nor the source states an expiry.
    /// Default [`Policy::DEFAULT_ASSUMED_LIFETIME`].
    pub assumed_lifetime: Duration,
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
    /// 1 s.
    pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
    /// 30 s.
    pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);
    /// 500 ms.
    pub const DEFAULT_MIN_RETRY_DELAY: Duration = Duration::from_millis(500);
    /// 1 h.
    pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
    /// 10 s.
    pub const DEFAULT_FRESH_REJECTION_WINDOW: Duration = Duration::from_secs(10);
    /// 1 h.
    pub const DEFAULT_ASSUMED_LIFETIME: Duration = Duration::from_secs(3600);

    /// The renewal lead for a token of `lifetime`: `renew_lead`, or `lifetime / 2` when
    /// `lifetime ≤ 2 × renew_lead`.
    pub fn lead_for(&self, lifetime: Duration) -> Duration {
        if lifetime <= self.renew_lead * 2 {
            lifetime / 2
        } else {
            self.renew_lead
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
            backoff_initial: Self::DEFAULT_BACKOFF_INITIAL,
            backoff_max: Self::DEFAULT_BACKOFF_MAX,
            min_retry_delay: Self::DEFAULT_MIN_RETRY_DELAY,
            max_retry_after: Self::DEFAULT_MAX_RETRY_AFTER,
            adaptive_lead: true,
            fresh_rejection_window: Self::DEFAULT_FRESH_REJECTION_WINDOW,
            assumed_lifetime: Self::DEFAULT_ASSUMED_LIFETIME,
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

    #[test]
    fn jitter_units_are_in_range_and_spread() {
        let mut j = Jitter::new(7);
        let xs: Vec<f64> = (0..1000).map(|_| j.unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / 1000.0;
        assert!((0.45..0.55).contains(&mean), "{mean}");
    }
}
