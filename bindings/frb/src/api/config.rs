//! Configuration: the renewal policy and how a session is opened (`Policy`, `SessionConfig`,
//! `SessionSpec`, the names every platform uses). Policy fields are optional and `null` means
//! the core's documented default, so defaults are decided in one place (the core).

use std::collections::HashMap;

use flutter_rust_bridge::frb;
use tokenkeeper::lifecycle as core;
use tokenkeeper::source as core_source;

use crate::api::error::TokenKeeperError;

/// How sessions schedule renewals and retries. Leave a field `null` for its default.
///
/// Worked example with the defaults and a 10-minute token issued at 12:00:00: renewal starts
/// between 12:09:27 and 12:09:30 (lead 30 s, up to 3 s of jitter earlier); a failed fetch is
/// retried after about 1 s, 2 s, 4 s… paced to fit before expiry; a fetch silent for 10 s is
/// abandoned and retried.
///
/// ```dart
/// final keeper = Keeper(policy: const Policy(renewLead: Duration(seconds: 60)));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    /// Renew when the remaining lifetime is at most this. Default 30 s. Tokens whose whole
    /// lifetime is at most twice this renew at half-life; tokens that arrive with less than this
    /// left are refused as unusable (loop breaker).
    pub renew_lead: Option<chrono::Duration>,
    /// Renewal starts up to this much earlier, at random per token (capped at a tenth of the
    /// lead), so many clients do not renew in the same millisecond. Default 3 s.
    pub renew_jitter: Option<chrono::Duration>,
    /// A fetch that takes longer is abandoned and retried. Default 10 s.
    pub fetch_timeout: Option<chrono::Duration>,
    /// First retry delay; doubles per failure (with jitter). Default 1 s.
    pub backoff_initial: Option<chrono::Duration>,
    /// Largest retry delay. Default 30 s.
    pub backoff_max: Option<chrono::Duration>,
    /// Smallest retry delay, even just before expiry (retries while a token is valid are paced
    /// to fit before its expiry). Default 20 ms.
    pub min_retry_delay: Option<chrono::Duration>,
    /// A server `Retry-After` longer than this is clamped to it. Default 1 h.
    pub max_retry_after: Option<chrono::Duration>,
    /// Renew earlier when recent renewals were slow or fetches failed (with short tokens and a
    /// flaky backend, soon after issue), so that enough attempts fit before expiry.
    /// Default `true`.
    pub adaptive_lead: Option<bool>,
    /// A token rejected (`tokenRejected()`) this soon after it arrived counts as "rejected at
    /// once": refetched once, a second time is fatal (`ErrorKind.rejected`). Default 10 s.
    pub fresh_rejection_window: Option<chrono::Duration>,
    /// Lifetime assumed when neither the token nor the source states an expiry. Default 1 h.
    pub assumed_lifetime: Option<chrono::Duration>,
    /// How long `token()`, `renewToken()`, `tokenExpired()` and `tokenRejected()` wait for a
    /// valid token across failed attempts before they throw `retryLater` with the last failure;
    /// fatal errors are thrown at once. Default 30 s.
    pub token_wait: Option<chrono::Duration>,
    /// How long a refresh (a fetch that uses credentials) is waited for before another may
    /// start: replaying a refresh token the server may already have used can sign the user
    /// out. Default 60 s.
    pub refresh_answer_wait: Option<chrono::Duration>,
    /// A token whose `nbf` is at most this far ahead is valid at once. Default 60 s.
    pub not_before_leeway: Option<chrono::Duration>,
    /// A server time further than this from the device clock is ignored. Default 24 h.
    pub max_clock_skew: Option<chrono::Duration>,
}

/// Every field of [`Policy`] filled in with the core's default (for settings screens and QA
/// tools).
///
/// ```dart
/// final d = defaultPolicy();
/// assert(d.renewLead == const Duration(seconds: 30));
/// ```
#[frb(sync)]
pub fn default_policy() -> Policy {
    let p = core::Policy::default();
    let d = |d: std::time::Duration| chrono::Duration::from_std(d).ok();
    Policy {
        renew_lead: d(p.renew_lead),
        renew_jitter: d(p.renew_jitter),
        fetch_timeout: d(p.fetch_timeout),
        backoff_initial: d(p.backoff_initial),
        backoff_max: d(p.backoff_max),
        min_retry_delay: d(p.min_retry_delay),
        max_retry_after: d(p.max_retry_after),
        adaptive_lead: Some(p.adaptive_lead),
        fresh_rejection_window: d(p.fresh_rejection_window),
        assumed_lifetime: d(p.assumed_lifetime),
        token_wait: d(p.token_wait),
        refresh_answer_wait: d(p.refresh_answer_wait),
        not_before_leeway: d(p.not_before_leeway),
        max_clock_skew: d(p.max_clock_skew),
    }
}

impl Policy {
    /// The core policy: each `None` keeps the default, each value must be a non-negative
    /// duration.
    pub(crate) fn to_core(&self) -> Result<core::Policy, TokenKeeperError> {
        let mut p = core::Policy::default();
        let set = |slot: &mut std::time::Duration, value: Option<chrono::Duration>, name: &str| {
            if let Some(v) = value {
                *slot = v.to_std().map_err(|_| {
                    TokenKeeperError::misconfigured(
                        name,
                        format!(
                            "misconfigured `{name}`: {v} is negative; use a positive Duration or leave it null for the default"
                        ),
                    )
                })?;
            }
            Ok::<(), TokenKeeperError>(())
        };
        set(&mut p.renew_lead, self.renew_lead, "renewLead")?;
        set(&mut p.renew_jitter, self.renew_jitter, "renewJitter")?;
        set(&mut p.fetch_timeout, self.fetch_timeout, "fetchTimeout")?;
        set(
            &mut p.backoff_initial,
            self.backoff_initial,
            "backoffInitial",
        )?;
        set(&mut p.backoff_max, self.backoff_max, "backoffMax")?;
        set(
            &mut p.min_retry_delay,
            self.min_retry_delay,
            "minRetryDelay",
        )?;
        set(
            &mut p.max_retry_after,
            self.max_retry_after,
            "maxRetryAfter",
        )?;
        set(
            &mut p.fresh_rejection_window,
            self.fresh_rejection_window,
            "freshRejectionWindow",
        )?;
        set(
            &mut p.assumed_lifetime,
            self.assumed_lifetime,
            "assumedLifetime",
        )?;
        set(&mut p.token_wait, self.token_wait, "tokenWait")?;
        set(
            &mut p.refresh_answer_wait,
            self.refresh_answer_wait,
            "refreshAnswerWait",
        )?;
        set(
            &mut p.not_before_leeway,
            self.not_before_leeway,
            "notBeforeLeeway",
        )?;
        set(&mut p.max_clock_skew, self.max_clock_skew, "maxClockSkew")?;
        if let Some(adaptive) = self.adaptive_lead {
            p.adaptive_lead = adaptive;
        }
        if p.fetch_timeout.is_zero() {
            return Err(TokenKeeperError::misconfigured(
                "fetchTimeout",
                "misconfigured `fetchTimeout`: zero would abandon every fetch at once; use a positive Duration (default 10 s)",
            ));
        }
        Ok(p)
    }
}

/// What a session is for: channel/room, user, role and extra backend parameters (no secrets).
///
/// ```dart
/// const spec = SessionSpec(channel: 'live-42', user: '1001', role: 'publisher');
/// ```
#[frb]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionSpec {
    /// Channel (Agora), room (ZEGO) or audience the token is for.
    pub channel: String,
    /// User id or account (Agora uid as text, ZEGO user id, JWT subject).
    pub user: String,
    /// Role, e.g. `publisher` or `subscriber`. Default `null`: the backend decides.
    pub role: Option<String>,
    /// Extra non-secret parameters passed to your token source. Default empty.
    #[frb(default = "const {}")]
    pub params: HashMap<String, String>,
}

impl From<SessionSpec> for core_source::SessionSpec {
    fn from(s: SessionSpec) -> Self {
        let mut spec = Self::new(s.channel, s.user);
        spec.role = s.role;
        spec.params = s.params.into_iter().collect();
        spec
    }
}

impl From<&core_source::SessionSpec> for SessionSpec {
    fn from(s: &core_source::SessionSpec) -> Self {
        Self {
            channel: s.channel.clone(),
            user: s.user.clone(),
            role: s.role.clone(),
            params: s
                .params
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// How to open a session.
///
/// ```dart
/// final config = SessionConfig(
///   spec: const SessionSpec(channel: 'live-42', user: '1001', role: 'publisher'),
///   prefetch: true,
/// );
/// ```
#[frb]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionConfig {
    /// What the session is for.
    pub spec: SessionSpec,
    /// Key of this session's credentials (e.g. a refresh token) in the keeper's credential
    /// store; sessions naming the same key share one refresh at a time. Default `null`: rotated
    /// credentials are kept in memory only.
    pub credentials_key: Option<String>,
    /// Overrides the keeper's policy for this session. Default `null`: the keeper's.
    pub policy: Option<Policy>,
    /// Fetch the first token at once instead of on the first `token()` call. Default `false`.
    #[frb(default = false)]
    pub prefetch: bool,
}

impl SessionConfig {
    /// The core's config.
    ///
    /// # Errors
    /// `misconfigured` for an empty channel or an invalid policy field.
    pub(crate) fn to_core(&self) -> Result<core::SessionConfig, TokenKeeperError> {
        if self.spec.channel.is_empty() {
            return Err(TokenKeeperError::misconfigured(
                "channel",
                "misconfigured `channel`: it is empty; pass the channel or room name the token is for",
            ));
        }
        let mut config =
            core::SessionConfig::new(self.spec.clone().into()).with_prefetch(self.prefetch);
        if let Some(key) = &self.credentials_key {
            config = config.with_credentials_key(key.clone());
        }
        if let Some(policy) = &self.policy {
            config = config.with_policy(policy.to_core()?);
        }
        Ok(config)
    }
}
