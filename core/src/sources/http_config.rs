//! An [`HttpSource`] described by plain values: what the Kotlin, Swift, Python and Dart
//! façades pass, so that each of them builds the same source the same way.

use std::fmt;
use std::sync::Arc;

use reqwest::Method;

use super::http::{HttpSource, ResponseMapping, StaticAuth};
use crate::source::SourceError;

/// The settings of an [`HttpSource`] as plain values. Every field but `endpoint` is optional;
/// the defaults are [`HttpSource::builder`]'s.
///
/// ```
/// use tokenkeeper::sources::HttpSourceConfig;
/// let source = HttpSourceConfig {
///     endpoint: "https://api.example.com/rtc/token".into(),
///     bearer: Some("api-key".into()),
///     response_prefix: Some("/data".into()),
///     ..HttpSourceConfig::default()
/// }
/// .build()
/// .unwrap();
/// # drop(source);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HttpSourceConfig {
    /// URL with `{channel}`, `{user}`, `{role}` and `{param}` placeholders.
    pub endpoint: String,
    /// HTTP method, any case. Empty: `POST`.
    pub method: String,
    /// Sent as `Authorization: Bearer …`. Default: no auth header.
    pub bearer: Option<String>,
    /// Fixed extra headers (values are secrets: never printed).
    pub headers: Vec<(String, String)>,
    /// JSON body template, as JSON text. Default: see [`HttpSource::builder`].
    pub json_body: Option<String>,
    /// JSON pointer of the object holding the token fields. Default: the top level.
    pub response_prefix: Option<String>,
    /// JSON pointer of the token. Default: the conventional names.
    pub token_pointer: Option<String>,
    /// JSON pointer of the absolute expiry. Default: none.
    pub expires_at_pointer: Option<String>,
    /// JSON pointer of the lifetime in seconds. Default: none.
    pub expires_in_pointer: Option<String>,
}

impl fmt::Debug for HttpSourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = |s: &str| format!("<{} chars>", s.chars().count());
        let headers: Vec<(&str, String)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), secret(v)))
            .collect();
        f.debug_struct("HttpSourceConfig")
            .field("endpoint", &self.endpoint)
            .field("method", &self.method)
            .field("bearer", &self.bearer.as_deref().map(secret))
            .field("headers", &headers)
            .field("json_body", &self.json_body)
            .field("response_prefix", &self.response_prefix)
            .field("token_pointer", &self.token_pointer)
            .field("expires_at_pointer", &self.expires_at_pointer)
            .field("expires_in_pointer", &self.expires_in_pointer)
            .finish()
    }
}

impl HttpSourceConfig {
    /// Builds the source.
    ///
    /// # Errors
    /// [`SourceError::Misconfigured`] naming the setting (`method`, `json_body`, or one that
    /// [`super::HttpSourceBuilder::build`] checks).
    pub fn build(&self) -> Result<HttpSource, SourceError> {
        let bad = |setting: &str, message: String| SourceError::Misconfigured {
            setting: setting.to_owned(),
            message,
        };
        let method = if self.method.is_empty() {
            Method::POST
        } else {
            Method::from_bytes(self.method.to_ascii_uppercase().as_bytes())
                .map_err(|_| bad("method", format!("`{}` is not an HTTP method", self.method)))?
        };
        let mut builder = HttpSource::builder(&self.endpoint).method(method);
        if let Some(bearer) = &self.bearer {
            builder = builder.auth(Arc::new(StaticAuth::bearer(bearer)));
        }
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &self.json_body {
            let template = serde_json::from_str(body)
                .map_err(|e| bad("json_body", format!("not valid JSON: {e}")))?;
            builder = builder.json_body(template);
        }
        let mut mapping = ResponseMapping::under(self.response_prefix.as_deref().unwrap_or(""));
        if let Some(p) = &self.token_pointer {
            mapping = mapping.token(p);
        }
        if let Some(p) = &self.expires_at_pointer {
            mapping = mapping.expires_at(p);
        }
        if let Some(p) = &self.expires_in_pointer {
            mapping = mapping.expires_in(p);
        }
        builder.response(mapping).build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_named_and_secrets_never_printed() {
        let config = HttpSourceConfig {
            endpoint: "http://127.0.0.1:1/token".into(),
            method: "GE T".into(),
            bearer: Some("sk-live-secret".into()),
            headers: vec![("x-api-key".into(), "key-secret".into())],
            ..HttpSourceConfig::default()
        };
        let named = |c: &HttpSourceConfig| match c.build().unwrap_err() {
            SourceError::Misconfigured { setting, .. } => setting,
            other => panic!("{other:?}"),
        };
        assert_eq!(named(&config), "method");
        let body = HttpSourceConfig {
            method: "get".into(),
            json_body: Some("{nope".into()),
            ..config.clone()
        };
        assert_eq!(named(&body), "json_body");
        let debug = format!("{config:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(
            HttpSourceConfig {
                method: String::new(),
                ..config
            }
            .build()
            .is_ok()
        );
    }
}
