//! tokenkeeper keeps short-lived real-time access tokens alive.
//!
//! Live-streaming and calling SDKs (Agora, ZEGO, LiveKit-style SFUs, Digital Samba…) take a
//! token that expires after minutes or hours. tokenkeeper fetches it from your backend, renews it
//! before it expires, refreshes at once when it expired or was rejected, retries with backoff,
//! survives device sleep and clock skew, and hands you the fresh token — once, correctly, for
//! every platform (Kotlin/Swift/Python through uniffi, Dart through flutter_rust_bridge).
//!
//! # An integration, end to end
//!
//! 1. **Say where tokens come from**: implement [`source::TokenSource`] (or use the built-in HTTP
//!    and OAuth sources in `sources`, feature `http`). Return the token and whatever your
//!    backend says about its lifetime; tokenkeeper also decodes the token itself
//!    ([`formats`]) and takes the earliest expiry.
//! 2. **Say where tokens go**: a [`lifecycle::TokenSink`], your engine's "renew token" call
//!    (Agora `renewToken(token)`, ZEGO `renewToken(roomID, token)`, a WebSocket re-auth).
//! 3. **Make one [`lifecycle::Keeper`]** for the app. It runs on the tokio runtime you give it
//!    (or the current one, or one it owns) and reads time only through an injected
//!    [`clock::Clock`].
//! 4. **Open a [`lifecycle::Session`]** per channel/room with the sink, join with
//!    `token().await`, and forward the engine's callbacks as notifications
//!    ([`lifecycle::Session::on_token_will_expire`], [`lifecycle::Session::on_token_expired`],
//!    [`lifecycle::Session::on_token_rejected`]). From then on every renewed token reaches the
//!    engine exactly once, in order, never expired: the app never forwards a token.
//! 5. **Forward app signals**: [`lifecycle::Keeper::resumed`] when the app returns to the
//!    foreground, [`lifecycle::Keeper::network_available`] when connectivity returns (the
//!    keeper also notices device sleep and clock changes by itself on Linux and Android).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tokenkeeper::lifecycle::{IssuedToken, Keeper, SessionConfig, SinkError};
//! use tokenkeeper::source::{FetchRequest, FetchedToken, SessionSpec, SourceError, Token, TokenSource};
//!
//! /// Your backend call (here: an in-process stand-in).
//! #[derive(Debug)]
//! struct MyBackend;
//!
//! #[async_trait::async_trait]
//! impl TokenSource for MyBackend {
//!     async fn fetch(&self, req: FetchRequest) -> Result<FetchedToken, SourceError> {
//!         // e.g. POST /rtc-token {channel, uid, role}; map HTTP errors with
//!         // SourceError::from_http_status(status, retry_after, "token_url", backend_message).
//!         // The message is logged and shown: quote the backend's error text, never a token.
//!         let token = format!("token-for-{}-{}", req.session.channel, req.session.user);
//!         Ok(FetchedToken::new(Token::new(token)).with_expires_in(Duration::from_secs(3600)))
//!     }
//! }
//!
//! # fn main() -> Result<(), tokenkeeper::Error> {
//! let keeper = Keeper::builder().build()?; // no runtime around: the keeper owns one
//! // The engine's "renew token" call; here it only looks at the token.
//! let renew_token = |token: &IssuedToken| -> Result<(), SinkError> {
//!     let _ = token.token.expose(); // rtc_engine.renew_token(…) — never log the token itself
//!     Ok(())
//! };
//! let spec = SessionSpec::new("live-42", "1001").with_role("publisher");
//! let config = SessionConfig::new(spec).with_sink(Arc::new(renew_token));
//! let session = keeper.open_session(config, Arc::new(MyBackend));
//!
//! // Before joining: a valid token (one fetch, shared by all concurrent callers). This is the
//! // only token the app ever passes to the engine; renewals go through the sink.
//! let first = futures::executor::block_on(session.token())?; // any executor works
//! assert_eq!(first.token.expose(), "token-for-live-42-1001");
//! // rtc_engine.join_channel(first.token.expose(), …);
//! // The engine's callbacks, as notifications that return at once:
//! session.on_token_will_expire(Some(first.token.expose())); // onTokenPrivilegeWillExpire
//! assert!(session.current().is_some()); // non-blocking, tens of nanoseconds
//! session.close();
//! # Ok(()) }
//! ```
//!
//! # Modules
//!
//! - [`lifecycle`]: keeper, sessions, renewal [`lifecycle::Policy`] (every default documented),
//!   events, counters.
//! - [`source`]: the [`source::TokenSource`] trait, tokens, credentials and the classified
//!   [`source::SourceError`].
//! - [`store`]: the [`store::CredentialStore`] trait for rotated refresh credentials (the host's
//!   keychain/keystore) and an in-memory store.
//! - [`clock`]: injected time; [`clock::ManualClock`] runs days of renewals in seconds in tests.
//! - [`formats`]: decode (and verify) Agora 007/006, ZEGO Token04 and JWT tokens.
//! - [`Error`]: what a session call returns — small, flat, named for what to do.
//!
//! Secrets (tokens, refresh tokens, keys) never appear in logs, `Debug` output or error text.

pub mod clock;
pub mod error;
pub mod formats;
pub mod lifecycle;
#[cfg(feature = "logging")]
pub mod logging;
#[cfg(feature = "mint")]
pub mod mint;
pub mod source;
#[cfg(feature = "http")]
pub mod sources;
pub mod store;

pub use error::Error;
