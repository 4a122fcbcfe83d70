//! Built-in token sources: HTTP and OAuth refresh token (feature `http`), and the file
//! credential store.
//!
//! - [`HttpSource`]: asks an app backend's token endpoint (configurable request and response
//!   mapping, so existing backends work unchanged).
//! - [`OAuthSource`]: the OAuth 2.0 `refresh_token` grant with refresh-token rotation saved
//!   before the new access token is used; also an [`AuthProvider`] for [`HttpSource`].
//! - [`FileStore`]: a [`crate::store::CredentialStore`] on disk (atomic, fsynced, owner-only).

pub mod file_store;
pub mod http;
pub mod http_config;
pub mod oauth;

pub use file_store::{FileStore, MAX_CREDENTIALS_BYTES};
pub use http::{
    AuthProvider, DEFAULT_TIMEOUT, HttpSource, HttpSourceBuilder, MAX_RESPONSE_BYTES,
    ResponseMapping, StaticAuth,
};
pub use http_config::HttpSourceConfig;
pub use oauth::{ACCESS_REUSE_MARGIN, ClientAuth, OAuthConfig, OAuthSource, OAuthTokens};
