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

/// The raw request body, with rejections (too large, unreadable) as JSON [`ApiError`]s.
#[derive(Debug)]
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        "the request body is over the server's size limit (64 KiB by default); send a small JSON object",
                    )
                } else {
                    ApiError::new(e.status(), "unreadable_body", format!("the request body could not be read: {}", e.body_text()))
                }
            })
    }
}
