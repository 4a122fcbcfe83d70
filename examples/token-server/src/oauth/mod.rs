//! `POST /oauth/token` (RFC 6749): `authorization_code` and `refresh_token` grants.
//!
//! - Client authentication: HTTP Basic (RFC 6749 §2.3.1) or `client_secret_post`; public
//!   clients send only `client_id`. Secrets are compared in constant time; failed attempts are
//!   throttled per client and per address (`429` with `Retry-After`, even for a right secret).
//! - Codes: single use, bound to their client, `redirect_uri` and PKCE challenge. Public
//!   clients must use PKCE (S256); a `code_verifier` for a code without a challenge is refused
//!   (RFC 9700 §2.1.1). A failed attempt leaves the code for its owner. A code presented again
//!   after its redemption revokes every token issued from it (RFC 6749 §4.1.2).
//! - Refresh tokens rotate: each is single-use. Presenting a used one revokes its whole family
//!   (refresh and access tokens), as RFC 9700 §4.14 recommends. `scope` may narrow the access
//!   token (RFC 6749 §6); asking for more is `invalid_scope`.
//! - Access tokens are HS256 JWTs (`sub`, `client_id`, `scope`, `fid` family, `iat`, `exp`,
//!   `jti`); the RTC endpoint accepts them while their family is live and their scope has `rtc`.
//! - Only sha256 hashes of codes, client secrets and refresh tokens are stored.

mod checks;
mod client_auth;
mod grants;

pub(crate) use checks::{parse_scope, valid_challenge, valid_redirect_uri};

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{ApiError, Peer, RawBody};
use crate::state::{AppState, Shared, bump};
use crate::store::StoreError;

/// An RFC 6749 §5.2 error.
#[derive(Debug)]
pub(crate) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    retry_after: Option<u64>,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            retry_after: None,
        }
    }
    fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", d)
    }
    fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", d)
    }
    fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", d)
    }
    fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", d)
    }
    fn store(st: &AppState, e: StoreError) -> Self {
        let api = st.store_error(e);
        Self::new(api.status, "server_error", api.message)
    }
    /// An [`ApiError`] from a shared check (throttle, store) in the OAuth error shape.
    fn from_api(e: ApiError) -> Self {
        let error = match e.status {
            StatusCode::TOO_MANY_REQUESTS => "temporarily_unavailable",
            s if s.is_server_error() => "server_error",
            _ => "invalid_request",
        };
        Self {
            status: e.status,
            error,
            description: e.message,
            retry_after: e.retry_after,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            axum::Json(json!({ "error": self.error, "error_description": self.description })),
        )
            .into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tokenkeeper\""),
            );
        }
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

pub(crate) fn form_decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "the token request must be form-encoded (Content-Type: application/x-www-form-urlencoded)",
        ));
    }
    let mut form = HashMap::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let pair = std::str::from_utf8(pair)
            .map_err(|_| OAuthError::invalid_request("the body is not UTF-8"))?;
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = form_decode(k);
        if form.contains_key(&key) {
            let shown: String = key.chars().take(32).collect();
            return Err(OAuthError::invalid_request(format!(
                "parameter '{shown}' appears more than once"
            )));
        }
        form.insert(key, form_decode(v));
    }
    Ok(form)
}

/// `POST /oauth/token`.
pub(crate) async fn token(
    State(st): State<Shared>,
    peer: Peer,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Response {
    if let Err(e) = st.inject_faults().await {
        return e.into_response();
    }
    let result = async {
        let form = parse_form(&headers, &body)?;
        let client = client_auth::authenticate(&st, peer, &headers, &form).await?;
        grants::grant(&st, &client, &form).await
    }
    .await;
    match result {
        Ok(resp) => resp,
        Err(e) => {
            match e.error {
                "invalid_client" => bump(&st.counters.oauth_invalid_client),
                "invalid_grant" => bump(&st.counters.oauth_invalid_grant),
                _ => {}
            }
            e.into_response()
        }
    }
}
