//! JSON error responses: `{"error": "<code>", "message": "<cause and fix>"}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An HTTP error with a stable machine-readable `code` and a human `message`.
///
/// Messages name the cause and the fix; they never contain a token or a secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} (HTTP {status}): {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. `stream_ended`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// `Retry-After` in seconds (429 and injected 503).
    pub retry_after: Option<u64>,
    /// `WWW-Authenticate` challenge (401).
    pub challenge: Option<&'static str>,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            challenge: None,
        }
    }

    /// `400 Bad Request`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// `401 Unauthorized` with a `Bearer` challenge.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self {
            challenge: Some("Bearer realm=\"tokenkeeper\""),
            ..Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
        }
    }

    /// `403 Forbidden`.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// `404 Not Found`.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// `500 Internal Server Error` (the cause is logged by the caller, not sent).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// Adds `Retry-After: secs`.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(challenge) = self.challenge {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        resp
    }
}

/// Parses a JSON body into `T`, turning every failure into a `400` naming the problem.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "missing_body",
            "the request needs a JSON body (Content-Type: application/json)",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        let (code, what) = if e.is_data() {
            ("invalid_field", "a field is missing or has the wrong type")
        } else {
            ("malformed_json", "the body is not valid JSON")
        };
        ApiError::bad_request(code, format!("{what}: {e}"))
    })
}

/// An `insufficient_scope` refusal (RFC 6750 §3.1) naming the scope needed.
pub fn insufficient_scope(needed: &'static str, granted: &str) -> ApiError {
    ApiError {
        challenge: Some(match needed {
            "rtc" => "Bearer realm=\"tokenkeeper\", error=\"insufficient_scope\", scope=\"rtc\"",
            _ => "Bearer realm=\"tokenkeeper\", error=\"insufficient_scope\"",
        }),
        ..ApiError::forbidden(
            "insufficient_scope",
            format!(
                "the OAuth access token's scope '{granted}' does not include '{needed}'; authorize the app with scope '{needed}'"
            ),
        )
    }
}

/// Fallback for unknown routes: `404` in the same JSON shape.
pub async fn not_found_route() -> ApiError {
    ApiError::not_found(
        "no_such_endpoint",
        "no such endpoint; see examples/token-server/README.md for the routes",
    )
}

/// Fallback for a known route called with the wrong method: `405` in the same JSON shape.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that HTTP method; token endpoints take POST",
    )
}

/// The raw request body, with rejections (too large, too slow, unreadable) as JSON
/// [`ApiError`]s. A body not complete within `body_read_timeout` gets `408 body_timeout`.
#[derive(Debug)]
pub struct RawBody(pub axum::body::Bytes);

impl axum::extract::FromRequest<crate::state::Shared> for RawBody {
    type Rejection = ApiError;

    async fn from_request(
        req: axum::extract::Request,
        state: &crate::state::Shared,
    ) -> Result<Self, ApiError> {
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is over the server's size limit (64 KiB by default); send a small JSON object",
            )
        };
        // A declared length over the cap is refused at once, before any of the body is read.
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > state.config.max_body_bytes as u64) {
            return Err(too_large());
        }
        let limit = state.config.body_read_timeout;
        let read = axum::body::Bytes::from_request(req, state);
        match tokio::time::timeout(limit, read).await {
            Err(_) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the request body did not arrive within {} s; send the whole body at once",
                    limit.as_secs()
                ),
            )),
            Ok(Ok(bytes)) => Ok(RawBody(bytes)),
            Ok(Err(e)) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(too_large()),
            Ok(Err(e)) => Err(ApiError::new(
                e.status(),
                "unreadable_body",
                format!("the request body could not be read: {}", e.body_text()),
            )),
        }
    }
}

/// A path parameter, with rejections as JSON `400 invalid_path`.
#[derive(Debug)]
pub struct JsonPath<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for JsonPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| JsonPath(p.0))
            .map_err(|e| {
                ApiError::bad_request(
                    "invalid_path",
                    format!(
                        "the URL path is not valid here ({}); percent-encode names as UTF-8",
                        e.body_text()
                    ),
                )
            })
    }
}

/// Query parameters, with rejections as JSON `400 invalid_query`.
#[derive(Debug)]
pub struct JsonQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for JsonQuery<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| JsonQuery(q.0))
            .map_err(|e| {
                ApiError::bad_request(
                    "invalid_query",
                    format!(
                        "the query string is not valid here ({}); see the endpoint's parameters in the README",
                        e.body_text()
                    ),
                )
            })
    }
}

/// The client's IP address (from the connection; `None` when unknown). Never fails.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}
