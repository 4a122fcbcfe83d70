//! Keeper, sessions, renewal policy, backoff.
//!
//! A [`Keeper`] (one per app) holds many [`Session`]s (one per channel, room or credential) and
//! takes app-wide signals. Each session owns one token's life:
//!
//! ```text
//! Idle ──token()──▶ Fetching ──ok──▶ Valid ──renew_at──▶ Renewing ──ok──▶ Valid …
//!                      │                 │ expiry / token_expired() / token_rejected()
//!                      │                 ▼
//!                      └──retry──▶   Expired ──emergency fetch──▶ Valid
//! any fetch ──fatal (re-auth, revoked, misconfigured)──▶ Failed      close() ──▶ Closed
//! ```
//!
//! **Time.** The engine reads time and sleeps only through the keeper's
//! [`Clock`](crate::clock::Clock). Every deadline is an instant on the clock's *elapsed* clock,
//! which counts device sleep and never jumps; wall-clock and server time are evidence to
//! cross-check, not truth. The keeper re-checks every session when the device wakes or the
//! wall clock is set (reported by the kernel on Linux and Android, and by
//! [`Keeper::resumed`] from the platform glue), so a phone that slept two hours never hands out
//! a stale token and a clock set back an hour never delays a renewal. With
//! [`crate::clock::ManualClock`] on tokio's paused time, days of renewals run in seconds.
//!
//! **Host code is untrusted for liveness.** Listeners run on the keeper's event thread, never on
//! the renewal path; a token source or credential store that panics fails one attempt; a
//! failing store never withholds a token the server already issued (see
//! [`EventKind::StoreFailed`]); the driver is restarted if it ever panics.
//!
//! **Defaults** are in [`Policy`]: renew 30 s before expiry (up to 3 s earlier at random;
//! half-life for tokens of at most 60 s), 10 s fetch timeout, backoff 1 s doubling to 30 s with
//! jitter. While a token is still valid, retries are paced to fit before its expiry and never
//! scheduled past it (not even for a `Retry-After`), and the lead grows when fetches are slow or
//! failing; without a valid token, backoff and `Retry-After` apply in full (see [`Policy`],
//! "Deadline-aware retry"). `Session::token()` waits up to 30 s across failed attempts.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tokenkeeper::lifecycle::{Keeper, SessionConfig};
//! use tokenkeeper::source::{FetchRequest, FetchedToken, SessionSpec, SourceError, Token, TokenSource};
//!
//! #[derive(Debug)]
//! struct Backend;
//! #[async_trait::async_trait]
//! impl TokenSource for Backend {
//!     async fn fetch(&self, r: FetchRequest) -> Result<FetchedToken, SourceError> {
//!         Ok(FetchedToken::new(Token::new(format!("t-{}-{}", r.session.channel, r.attempt)))
//!             .with_expires_in(Duration::from_secs(600)))
//!     }
//! }
//!
//! # async fn run() -> Result<(), tokenkeeper::Error> {
//! let keeper = Keeper::builder().build()?; // uses the current tokio runtime, or owns one
//! let session = keeper.open_session(SessionConfig::new(SessionSpec::new("live-42", "1001")), Arc::new(Backend));
//! let token = session.token().await?;
//! // engine.join(token.token.expose()); then, from the engine's callbacks:
//! // "will expire"  → engine.renew_token(session.renew_token().await?.token.expose())
//! // "expired"      → engine.renew_token(session.token_expired(None).await?.token.expose())
//! let mut events = session.subscribe();
//! while let Some(event) = events.recv().await {
//!     let _ = event; // Issued, WillExpire, FetchFailed, StoreFailed, …
//! }
//! # Ok(()) }
//! ```

mod credentials;
mod dispatch;
mod driver;
mod event;
mod expiry;
mod keeper;
mod outcome;
mod policy;
mod requests;
mod session;
mod shared;
mod sink;
mod timing;

#[cfg(feature = "http")]
pub(crate) use self::credentials::CredentialSlot;

pub use self::event::{
    Counters, Event, EventKind, EventListener, EventStream, ListenerId, SessionState, Status,
};
pub use self::keeper::{Keeper, KeeperBuilder};
pub use self::policy::Policy;
pub use self::session::{IssuedToken, Session, SessionConfig};
pub use self::sink::{APPLY_ATTEMPTS_BEFORE_REJECTION, SinkError, TokenSink};
