//! The built-in HTTP token source (cargo feature `http`, on by default), configured from Dart:
//! point it at your backend's token endpoint and describe the request and response. The same
//! record as `HttpSourceConfig` on the other platforms.
//!
//! The record exists in every build so the generated Dart is the same; a library built without
//! the feature answers `misconfigured` when asked for an HTTP session.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use flutter_rust_bridge::frb;

use crate::api::error::TokenKeeperError;
use crate::redact::SecretLen;

/// How the built-in HTTP source asks your backend for a token (`Keeper.openHttpSession`).
///
/// Placeholders `{channel}`, `{user}`, `{user:int}`, `{role}` and `{param:NAME}` in the
/// endpoint and body are filled from the session's `SessionSpec`. The response is read as JSON:
/// by default the token at `/token` (or `/accessToken`, `/access_token`) and its lifetime at
/// `/expiresAt`, `/expiresIn`, `/serverTime` (or the HTTP `Date` header). HTTP statuses are
/// classified as for your own source: 408/425/429/5xx retried (never before `Retry-After`),
/// 401 `reauthRequired`, 403/404/410 `forbidden`, other 4xx `misconfigured`.
///
/// ```dart
/// final http = HttpSourceConfig(
///   endpoint: 'https://api.example.com/rtc/token',
///   bearer: userSessionToken,
///   jsonBody: '{"channelName":"{channel}","uid":"{user:int}","role":"{role}"}',
///   responsePrefix: '/data',
/// );
/// final session = keeper.openHttpSession(config: config, http: http, sink: applyToEngine);
/// ```
#[frb]
#[derive(Clone, PartialEq, Eq)]
pub struct HttpSourceConfig {
    /// The token endpoint URL (https in production).
    pub endpoint: String,
    /// HTTP method. Default `POST`.
    #[frb(default = "POST")]
    pub method: String,
    /// Sent as `Authorization: Bearer <bearer>` (the signed-in user's credential). A secret:
    /// never printed. Default `null`: no auth header.
    pub bearer: Option<String>,
    /// Fixed extra headers, name to value. Values are secrets (they often carry an API key) and
    /// are never printed. Default empty.
    #[frb(default = "const {}")]
    pub headers: HashMap<String, String>,
    /// JSON body template. Default `null`:
    /// `{"channel":"{channel}","user":"{user}","role":"{role}"}`.
    pub json_body: Option<String>,
    /// JSON pointer of the object holding the token fields, e.g. `/data` for
    /// `{"data":{"token":…}}`. Default `null`: the top level.
    pub response_prefix: Option<String>,
    /// JSON pointer of the token when it is not one of the conventional names. Default `null`.
    pub token_pointer: Option<String>,
    /// JSON pointer of the absolute expiry (ISO-8601 or unix seconds/ms). Default `null`.
    pub expires_at_pointer: Option<String>,
    /// JSON pointer of the lifetime in seconds. Default `null`.
    pub expires_in_pointer: Option<String>,
}

impl fmt::Debug for HttpSourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: HashMap<&str, SecretLen<'_>> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), SecretLen(v)))
            .collect();
        f.debug_struct("HttpSourceConfig")
            .field("endpoint", &self.endpoint)
            .field("method", &self.method)
            .field("bearer", &self.bearer.as_deref().map(SecretLen))
            .field("headers", &headers)
            .field("json_body", &self.json_body)
            .field("response_prefix", &self.response_prefix)
            .field("token_pointer", &self.token_pointer)
            .field("expires_at_pointer", &self.expires_at_pointer)
            .field("expires_in_pointer", &self.expires_in_pointer)
            .finish()
    }
}

/// The core's HTTP source for `config`. A misconfigured setting is named as Dart names it
/// (`jsonBody`).
#[cfg(feature = "http")]
pub(crate) fn build(
    config: &HttpSourceConfig,
) -> Result<Arc<dyn tokenkeeper::source::TokenSource>, TokenKeeperError> {
    let core = tokenkeeper::sources::HttpSourceConfig {
        endpoint: config.endpoint.clone(),
        method: config.method.clone(),
        bearer: config.bearer.clone(),
        headers: config
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
        json_body: config.json_body.clone(),
        response_prefix: config.response_prefix.clone(),
        token_pointer: config.token_pointer.clone(),
        expires_at_pointer: config.expires_at_pointer.clone(),
        expires_in_pointer: config.expires_in_pointer.clone(),
    };
    let source = core.build().map_err(|e| {
        let mut error = TokenKeeperError::from(tokenkeeper::Error::from_source(&e));
        if let Some(setting) = error.setting.take() {
            let dart = lower_camel(&setting);
            error.message = error
                .message
                .replace(&format!("`{setting}`"), &format!("`{dart}`"));
            error.setting = Some(dart);
        }
        error
    })?;
    Ok(Arc::new(source))
}

/// `json_body` → `jsonBody`.
#[cfg(feature = "http")]
fn lower_camel(snake: &str) -> String {
    let mut parts = snake.split('_');
    let mut out = parts.next().unwrap_or_default().to_owned();
    for part in parts {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

/// Without the `http` feature: every HTTP session is refused.
#[cfg(not(feature = "http"))]
pub(crate) fn build(
    _config: &HttpSourceConfig,
) -> Result<Arc<dyn tokenkeeper::source::TokenSource>, TokenKeeperError> {
    Err(TokenKeeperError::misconfigured(
        "http",
        "this library was built without the built-in HTTP source (cargo feature `http`); \
         open the session with your own token source instead",
    ))
}
