//! The built-in HTTP token source (cargo feature `http`, on by default), configured from the
//! host: point it at your backend's token endpoint and describe the request and response.
//!
//! The record exists in every build so the generated bindings are the same; a library built
//! without the feature answers `Misconfigured` when asked for an HTTP session.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::TokenKeeperError;
use crate::secret::Secret;

/// How the built-in HTTP source asks your backend for a token.
///
/// Placeholders `{channel}`, `{user}`, `{user:int}`, `{role}` and `{param:NAME}` in the
/// endpoint and body are filled from the session. The response is read as JSON: by default the
/// token at `/token` (or `/accessToken`, `/access_token`) and its lifetime at `/expiresAt`,
/// `/expiresIn`, `/serverTime` (or the HTTP `Date` header).
///
/// Safe to log: the bearer and the header values are [`Secret`]s.
///
/// # Example (Kotlin)
/// ```kotlin
/// val http = HttpSourceConfig(
///     endpoint = "https://api.example.com/rtc/token",
///     bearer = Secret(userSessionToken),
///     jsonBody = """{"channelName":"{channel}","uid":"{user:int}","role":"{role}"}""",
///     responsePrefix = "/data",
/// )
/// val session = keeper.openHttpSession(SessionConfig(SessionSpec("live-42", "1001")), http)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpSourceConfig {
    /// The token endpoint URL (https in production).
    pub endpoint: String,
    /// HTTP method. Default `POST`.
    #[uniffi(default = "POST")]
    pub method: String,
    /// Sent as `Authorization: Bearer <bearer>` (the signed-in user's credential).
    /// Default: no auth header.
    #[uniffi(default = None)]
    pub bearer: Option<Arc<Secret>>,
    /// Fixed extra headers, name to value. Values are secrets (they often carry an API key), so
    /// they are never printed. Default: none.
    #[uniffi(default)]
    pub headers: HashMap<String, Arc<Secret>>,
    /// JSON body template. Default
    /// `{"channel":"{channel}","user":"{user}","role":"{role}"}`.
    #[uniffi(default = None)]
    pub json_body: Option<String>,
    /// JSON pointer of the object holding the token fields, e.g. `/data` for
    /// `{"data":{"token":…}}`. Default: the top level.
    #[uniffi(default = None)]
    pub response_prefix: Option<String>,
    /// JSON pointer of the token when it is not one of the conventional names. Default: none.
    #[uniffi(default = None)]
    pub token_pointer: Option<String>,
    /// JSON pointer of the absolute expiry (ISO-8601 or unix seconds/ms). Default: none.
    #[uniffi(default = None)]
    pub expires_at_pointer: Option<String>,
    /// JSON pointer of the lifetime in seconds. Default: none.
    #[uniffi(default = None)]
    pub expires_in_pointer: Option<String>,
}

#[cfg(feature = "http")]
pub(crate) fn build(
    config: HttpSourceConfig,
) -> Result<Arc<dyn tokenkeeper::source::TokenSource>, TokenKeeperError> {
    let config = tokenkeeper::sources::HttpSourceConfig {
        endpoint: config.endpoint,
        method: config.method,
        bearer: config.bearer.map(|b| b.as_str().to_owned()),
        headers: config
            .headers
            .into_iter()
            .map(|(name, value)| (name, value.as_str().to_owned()))
            .collect(),
        json_body: config.json_body,
        response_prefix: config.response_prefix,
        token_pointer: config.token_pointer,
        expires_at_pointer: config.expires_at_pointer,
        expires_in_pointer: config.expires_in_pointer,
    };
    let source = config
        .build()
        .map_err(|e| TokenKeeperError::from(tokenkeeper::error::Error::from_source(&e)))?;
    Ok(Arc::new(source))
}

#[cfg(not(feature = "http"))]
pub(crate) fn build(
    _config: HttpSourceConfig,
) -> Result<Arc<dyn tokenkeeper::source::TokenSource>, TokenKeeperError> {
    Err(TokenKeeperError::Misconfigured {
        reason: "this library was built without the built-in HTTP source (cargo feature `http`); \
                 supply a TokenSource from the app instead"
            .into(),
    })
}
