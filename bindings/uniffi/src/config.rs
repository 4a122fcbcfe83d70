//! Configuration records with documented defaults.

use std::time::Duration;

use tokenkeeper::lifecycle::{self, Policy as CorePolicy};

use crate::host::SessionSpec;

/// How sessions schedule renewals and retries. Every field is optional and `null`/`nil`/`None`
/// means the core's documented default, so `Policy()` is the recommended policy and you set only
/// what you need; `defaultPolicy()` shows every value.
///
/// Worked example with the defaults and a 10-minute token issued at 12:00:00: renewal starts
/// between 12:09:27 and 12:09:30 (lead 30 s, up to 3 s of jitter earlier); if that fetch fails,
/// retries come after about 1 s, 2 s, 4 s … paced to fit before 12:10:00. Tokens that live at
/// most 2 × lead (e.g. 60 s) renew at half-life.
///
/// ```kotlin
/// val keeper = Keeper(Policy(renewLead = Duration.ofSeconds(60)))
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct Policy {
    /// Renew when the remaining lifetime is at most this. Default 30 s.
    #[uniffi(default = None)]
    pub renew_lead: Option<Duration>,
    /// Renewal starts up to this much earlier, at random per token (capped at a tenth of the
    /// lead). Default 3 s.
    #[uniffi(default = None)]
    pub renew_jitter: Option<Duration>,
    /// A fetch that takes longer is abandoned and retried. Default 10 s.
    #[uniffi(default = None)]
    pub fetch_timeout: Option<Duration>,
    /// How long a refresh (a fetch that uses credentials) is waited for before another may
    /// start: replaying a refresh token the server may already have used can sign the user out.
    /// Such sessions renew early enough for it. Default 60 s.
    #[uniffi(default = None)]
    pub refresh_answer_wait: Option<Duration>,
    /// First retry delay. Default 1 s.
    #[uniffi(default = None)]
    pub backoff_initial: Option<Duration>,
    /// Largest retry delay. Default 30 s.
    #[uniffi(default = None)]
    pub backoff_max: Option<Duration>,
    /// Smallest retry delay, even just before expiry (retries while a token is valid are paced
    /// to fit before its expiry). Default 20 ms.
    #[uniffi(default = None)]
    pub min_retry_delay: Option<Duration>,
    /// Longer server `Retry-After` values are clamped to this. Default 1 h.
    #[uniffi(default = None)]
    pub max_retry_after: Option<Duration>,
    /// Renew earlier when recent renewals were slow or fetches failed (with short tokens and a
    /// flaky backend, soon after issue), so that enough attempts fit before expiry. Default true.
    #[uniffi(default = None)]
    pub adaptive_lead: Option<bool>,
    /// A token rejected within this time of being received counts as "rejected at once"
    /// (refetched once; twice in a row stops the session). Default 10 s.
    #[uniffi(default = None)]
    pub fresh_rejection_window: Option<Duration>,
    /// Lifetime assumed when neither the token nor the source states an expiry. Default 1 h.
    #[uniffi(default = None)]
    pub assumed_lifetime: Option<Duration>,
    /// How long `token()`, `renewToken()`, `tokenExpired()` and `tokenRejected()` wait for a
    /// token across failed attempts before they throw `RetryLater` with the last failure;
    /// fatal errors are thrown at once. Default 30 s.
    #[uniffi(default = None)]
    pub token_wait: Option<Duration>,
    /// A token whose `nbf` is at most this far ahead is valid at once (a device a second slow);
    /// a later one is a scheduled token, held until its start. Default 60 s.
    #[uniffi(default = None)]
    pub not_before_leeway: Option<Duration>,
    /// A server time further than this from the device clock is ignored. Default 24 h.
    #[uniffi(default = None)]
    pub max_clock_skew: Option<Duration>,
}

impl From<Policy> for CorePolicy {
    fn from(p: Policy) -> Self {
        let d = CorePolicy::default();
        Self {
            renew_lead: p.renew_lead.unwrap_or(d.renew_lead),
            renew_jitter: p.renew_jitter.unwrap_or(d.renew_jitter),
            fetch_timeout: p.fetch_timeout.unwrap_or(d.fetch_timeout),
            refresh_answer_wait: p.refresh_answer_wait.unwrap_or(d.refresh_answer_wait),
            backoff_initial: p.backoff_initial.unwrap_or(d.backoff_initial),
            backoff_max: p.backoff_max.unwrap_or(d.backoff_max),
            min_retry_delay: p.min_retry_delay.unwrap_or(d.min_retry_delay),
            max_retry_after: p.max_retry_after.unwrap_or(d.max_retry_after),
            adaptive_lead: p.adaptive_lead.unwrap_or(d.adaptive_lead),
            fresh_rejection_window: p.fresh_rejection_window.unwrap_or(d.fresh_rejection_window),
            assumed_lifetime: p.assumed_lifetime.unwrap_or(d.assumed_lifetime),
            token_wait: p.token_wait.unwrap_or(d.token_wait),
            not_before_leeway: p.not_before_leeway.unwrap_or(d.not_before_leeway),
            max_clock_skew: p.max_clock_skew.unwrap_or(d.max_clock_skew),
            ..d
        }
    }
}

/// Every field of [`Policy`] filled in with the core's default (for settings screens).
#[uniffi::export]
pub fn default_policy() -> Policy {
    let d = CorePolicy::default();
    Policy {
        renew_lead: Some(d.renew_lead),
        renew_jitter: Some(d.renew_jitter),
        fetch_timeout: Some(d.fetch_timeout),
        refresh_answer_wait: Some(d.refresh_answer_wait),
        backoff_initial: Some(d.backoff_initial),
        backoff_max: Some(d.backoff_max),
        min_retry_delay: Some(d.min_retry_delay),
        max_retry_after: Some(d.max_retry_after),
        adaptive_lead: Some(d.adaptive_lead),
        fresh_rejection_window: Some(d.fresh_rejection_window),
        assumed_lifetime: Some(d.assumed_lifetime),
        token_wait: Some(d.token_wait),
        not_before_leeway: Some(d.not_before_leeway),
        max_clock_skew: Some(d.max_clock_skew),
    }
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
    pub policy: Option<Policy>,
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
