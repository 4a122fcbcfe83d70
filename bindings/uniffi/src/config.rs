//! Configuration records with documented defaults.

use std::time::Duration;

use tokenkeeper::lifecycle::{self, Policy};

use crate::host::SessionSpec;

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How sessions schedule renewals and retries. Every field has the core's default, so
/// `PolicyConfig()` (Kotlin/Python) or `PolicyConfig()` (Swift) is the recommended policy and you
/// override only what you need.
///
/// Worked example with the defaults and a 10-minute token issued at 12:00:00: renewal starts
/// between 12:09:27 and 12:09:30 (lead 30 s, up to 3 s of jitter earlier); if that fetch fails,
/// retries come after about 1 s, 2 s, 4 s … paced to fit before 12:10:00.
/// Tokens that live at most 2 × lead (e.g. 60 s) renew at half-life.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PolicyConfig {
    /// Renew when the remaining lifetime is at most this. Default 30 000 ms.
    #[uniffi(default = 30000)]
    pub renew_lead_ms: u64,
    /// Renewal starts up to this much earlier, at random per token (capped at a tenth of the
    /// lead). Default 3 000 ms.
    #[uniffi(default = 3000)]
    pub renew_jitter_ms: u64,
    /// A fetch that takes longer is abandoned and retried. Default 10 000 ms.
    #[uniffi(default = 10000)]
    pub fetch_timeout_ms: u64,
    /// How long a refresh (a fetch that uses credentials) is waited for before another may
    /// start: replaying a refresh token the server may already have used can sign the user out.
    /// Such sessions renew early enough for it. Default 60 000 ms.
    #[uniffi(default = 60000)]
    pub refresh_answer_wait_ms: u64,
    /// First retry delay. Default 1 000 ms.
    #[uniffi(default = 1000)]
    pub backoff_initial_ms: u64,
    /// Largest retry delay. Default 30 000 ms.
    #[uniffi(default = 30000)]
    pub backoff_max_ms: u64,
    /// Smallest retry delay, even just before expiry (retries while a token is valid are paced
    /// to fit before its expiry). Default 20 ms.
    #[uniffi(default = 20)]
    pub min_retry_delay_ms: u64,
    /// Longer server `Retry-After` values are clamped to this. Default 3 600 000 ms (1 h).
    #[uniffi(default = 3600000)]
    pub max_retry_after_ms: u64,
    /// Renew earlier when recent renewals were slow or fetches failed (with short tokens and a
    /// flaky backend, soon after issue), so that enough attempts fit before expiry. Default true.
    #[uniffi(default = true)]
    pub adaptive_lead: bool,
    /// A token rejected within this time of being received counts as "rejected at once"
    /// (refetched once; twice stops the session). Default 10 000 ms.
    #[uniffi(default = 10000)]
    pub fresh_rejection_window_ms: u64,
    /// Lifetime assumed when neither the token nor the source states an expiry.
    /// Default 3 600 000 ms (1 h).
    #[uniffi(default = 3600000)]
    pub assumed_lifetime_ms: u64,
    /// How long `Session.token()` waits for a valid token across failed attempts before it
    /// throws `RetryLater` with the last failure; fatal errors are thrown at once. Default
    /// 30 000 ms.
    #[uniffi(default = 30000)]
    pub token_wait_ms: u64,
    /// A token whose `nbf` is at most this far ahead is valid at once (a device a second slow);
    /// a later one is a scheduled token, held until its start. Default 60 000 ms.
    #[uniffi(default = 60000)]
    pub not_before_leeway_ms: u64,
    /// A server time further than this from the device clock is ignored. Default 86 400 000 ms
    /// (24 h).
    #[uniffi(default = 86400000)]
    pub max_clock_skew_ms: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Policy::default().into()
    }
}

impl From<Policy> for PolicyConfig {
    fn from(p: Policy) -> Self {
        Self {
            renew_lead_ms: ms(p.renew_lead),
            renew_jitter_ms: ms(p.renew_jitter),
            fetch_timeout_ms: ms(p.fetch_timeout),
            refresh_answer_wait_ms: ms(p.refresh_answer_wait),
            backoff_initial_ms: ms(p.backoff_initial),
            backoff_max_ms: ms(p.backoff_max),
            min_retry_delay_ms: ms(p.min_retry_delay),
            max_retry_after_ms: ms(p.max_retry_after),
            adaptive_lead: p.adaptive_lead,
            fresh_rejection_window_ms: ms(p.fresh_rejection_window),
            assumed_lifetime_ms: ms(p.assumed_lifetime),
            token_wait_ms: ms(p.token_wait),
            not_before_leeway_ms: ms(p.not_before_leeway),
            max_clock_skew_ms: ms(p.max_clock_skew),
        }
    }
}

impl From<PolicyConfig> for Policy {
    fn from(p: PolicyConfig) -> Self {
        Self {
            renew_lead: Duration::from_millis(p.renew_lead_ms),
            renew_jitter: Duration::from_millis(p.renew_jitter_ms),
            fetch_timeout: Duration::from_millis(p.fetch_timeout_ms),
            refresh_answer_wait: Duration::from_millis(p.refresh_answer_wait_ms),
            backoff_initial: Duration::from_millis(p.backoff_initial_ms),
            backoff_max: Duration::from_millis(p.backoff_max_ms),
            min_retry_delay: Duration::from_millis(p.min_retry_delay_ms),
            max_retry_after: Duration::from_millis(p.max_retry_after_ms),
            adaptive_lead: p.adaptive_lead,
            fresh_rejection_window: Duration::from_millis(p.fresh_rejection_window_ms),
            assumed_lifetime: Duration::from_millis(p.assumed_lifetime_ms),
            token_wait: Duration::from_millis(p.token_wait_ms),
            not_before_leeway: Duration::from_millis(p.not_before_leeway_ms),
            max_clock_skew: Duration::from_millis(p.max_clock_skew_ms),
            ..Policy::default()
        }
    }
}

/// The core's default policy, for comparison with a `PolicyConfig()` built from the defaults
/// of the generated bindings (they are the same values).
#[uniffi::export]
pub fn default_policy() -> PolicyConfig {
    PolicyConfig::default()
}

/// How to open a session.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SessionConfig {
    /// What the session is for.
    pub spec: SessionSpec,
    /// Key of this session's credentials (e.g. a refresh token) in the keeper's credential
    /// store. Default: none (rotated credentials are kept in memory only).
    #[uniffi(default = None)]
    pub credentials_key: Option<String>,
    /// Overrides the keeper's policy for this session. Default: the keeper's.
    #[uniffi(default = None)]
    pub policy: Option<PolicyConfig>,
    /// Fetch the first token at once instead of on the first `token()` call. Default false.
    #[uniffi(default = false)]
    pub prefetch: bool,
}

impl From<SessionConfig> for lifecycle::SessionConfig {
    fn from(c: SessionConfig) -> Self {
        let mut config = Self::new(c.spec.into()).with_prefetch(c.prefetch);
        if let Some(key) = c.credentials_key {
            config = config.with_credentials_key(key);
        }
        if let Some(policy) = c.policy {
            config = config.with_policy(policy.into());
        }
        config
    }
}
