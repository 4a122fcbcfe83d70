//! `POST /oauth/token` (RFC 6749): `authorization_code` and `refresh_token` grants.
//!
//! - Client authentication: HTTP Basic (RFC 6749 §2.3.1, form-urlencoded id and secret) or
//!   `client_secret_post`; public clients send only `client_id`. Using both methods at once is
//!   `invalid_request`. Wrong or missing credentials: `401 invalid_client`.
//! - Refresh tokens rotate: each is single-use. Presenting a used one is `invalid_grant` and
//!   revokes its whole family (every token descended from the same authorization), as the OAuth
//!   security best current practice recommends for reuse detection.
//! - Access tokens are HS256 JWTs (`sub`, `client_id`, `scope`, `iat`, `exp`, `jti`).
//! - Only sha256 hashes of codes, client secrets and refresh tokens are stored.

use std::collections::HashMap;

use crate::error::RawBody;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rusqlite::{OptionalExtension, params};
use serde_json::json;

use crate::config::random_string;
use crate::db::{AuditEntry, CodeRow, DbError, RefreshRow};
use crate::state::{AppState, Shared, bump, sha256_hex};

/// An RFC 6749 §5.2 error.
#[derive(Debug)]
pub(crate) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
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
    fn server(d: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", d)
    }
}

impl From<DbError> for OAuthError {
    fn from(e: DbError) -> Self {
        tracing::error!(error = %e, "oauth database error");
        Self::server("database error; see the server log")
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
        resp
    }
}

fn form_decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

/// The authenticated client.
struct Client {
    id: String,
}

/// Authenticates the client from the Basic header or the form (see the module docs).
fn authenticate_client(
    st: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Client, OAuthError> {
    let basic = match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(v) => match v.split_once(' ') {
            Some((scheme, b64)) if scheme.eq_ignore_ascii_case("basic") => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| {
                        OAuthError::invalid_client(
                            "the Basic Authorization header is not valid base64",
                        )
                    })?;
                let raw = String::from_utf8(raw).map_err(|_| {
                    OAuthError::invalid_client("the Basic Authorization header is not UTF-8")
                })?;
                let (id, secret) = raw.split_once(':').ok_or_else(|| {
                    OAuthError::invalid_client(
                        "the Basic Authorization header needs `client_id:client_secret`",
                    )
                })?;
                Some((form_decode(id), form_decode(secret)))
            }
            _ => None,
        },
        None => None,
    };
    let (id, secret) = match basic {
        Some((id, secret)) => {
            if form.contains_key("client_secret") {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method: HTTP Basic or client_secret in the body, not both",
                ));
            }
            if let Some(form_id) = form.get("client_id") {
                if form_id != &id {
                    return Err(OAuthError::invalid_request(format!(
                        "client_id '{form_id}' in the body differs from '{id}' in the Basic header"
                    )));
                }
            }
            (id, Some(secret))
        }
        None => {
            let id = form.get("client_id").cloned().ok_or_else(|| {
                OAuthError::invalid_client(
                    "no client authentication: send HTTP Basic credentials or `client_id`",
                )
            })?;
            (id, form.get("client_secret").cloned())
        }
    };
    let stored = st.db.client_secret_hash(&id)?;
    match (stored, secret) {
        (None, _) => Err(OAuthError::invalid_client(format!(
            "unknown client_id '{id}'; register it with POST /admin/oauth/clients"
        ))),
        (Some(Some(hash)), Some(secret)) if sha256_hex(&secret) == hash => Ok(Client { id }),
        (Some(Some(_)), Some(_)) => Err(OAuthError::invalid_client(format!(
            "wrong client_secret for client_id '{id}'; use the secret registered for this client"
        ))),
        (Some(Some(_)), None) => Err(OAuthError::invalid_client(format!(
            "client_id '{id}' is confidential: authenticate with its client_secret"
        ))),
        (Some(None), None) => Ok(Client { id }),
        (Some(None), Some(s)) if s.is_empty() => Ok(Client { id }),
        (Some(None), Some(_)) => Err(OAuthError::invalid_client(format!(
            "client_id '{id}' is a public client: send no client_secret"
        ))),
    }
}

/// `POST /oauth/token`.
pub(crate) async fn token(
    State(st): State<Shared>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Response {
    if let Err(e) = st.inject_faults().await {
        return e.into_response();
    }
    let st2 = st.clone();
    let result = tokio::task::spawn_blocking(move || token_blocking(&st2, &headers, &body))
        .await
        .unwrap_or_else(|e| Err(OAuthError::server(format!("token task failed: {e}"))));
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

fn token_blocking(st: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, OAuthError> {
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
        if form.insert(form_decode(k), form_decode(v)).is_some() {
            return Err(OAuthError::invalid_request(format!(
                "parameter '{}' appears more than once",
                form_decode(k)
            )));
        }
    }
    let client = authenticate_client(st, headers, &form)?;
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("missing grant_type"))?;
    let now = st.clock.now_secs();
    let (user_id, scope, family, kind) = match grant_type.as_str() {
        "authorization_code" => {
            let code = form
                .get("code")
                .ok_or_else(|| OAuthError::invalid_request("missing code"))?;
            let (user_id, scope) = redeem_code(st, &client, code, form.get("code_verifier"), now)?;
            (
                user_id,
                scope,
                random_string(24),
                "oauth_authorization_code",
            )
        }
        "refresh_token" => {
            let rt = form
                .get("refresh_token")
                .ok_or_else(|| OAuthError::invalid_request("missing refresh_token"))?;
            let (user_id, scope, family) = use_refresh_token(st, &client, rt, now)?;
            bump(&st.counters.oauth_refreshes);
            (user_id, scope, family, "oauth_refresh")
        }
        other => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!(
                    "grant_type '{other}' is not supported; use authorization_code or refresh_token"
                ),
            ));
        }
    };
    {
        let dir = st.dir.read();
        match dir.users.get(&user_id) {
            None => {
                return Err(OAuthError::invalid_grant(format!(
                    "user '{user_id}' no longer exists"
                )));
            }
            Some(u) if u.banned => {
                return Err(OAuthError::invalid_grant(format!(
                    "user '{user_id}' is banned"
                )));
            }
            Some(_) => {}
        }
    }
    let access_ttl = i64::try_from(st.config.oauth_access_ttl.as_secs()).unwrap_or(i64::MAX);
    let refresh_ttl = i64::try_from(st.config.oauth_refresh_ttl.as_secs()).unwrap_or(i64::MAX);
    let exp = now.saturating_add(access_ttl);
    let claims = json!({
        "iss": "tokenkeeper-server",
        "sub": user_id,
        "client_id": client.id,
        "scope": scope,
        "iat": now,
        "exp": exp,
        "jti": random_string(16),
    });
    let access = crate::mint::sign_hs256(st.config.secrets.oauth_signing_key.as_bytes(), &claims)
        .map_err(OAuthError::server)?;
    let refresh = format!("rt_{}", random_string(43));
    st.db.with(|c| {
        c.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, scope, issued_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![sha256_hex(&refresh), family, client.id, user_id, scope, now, now.saturating_add(refresh_ttl)],
        )?;
        Ok(())
    })?;
    bump(&st.counters.oauth_tokens_issued);
    st.audit(AuditEntry {
        ts_ms: st.clock.now_ms(),
        kind,
        user_id: Some(user_id),
        vendor: Some("oauth".into()),
        channel: None,
        role: None,
        status: 200,
        outcome: "issued".into(),
        expires_at: Some(exp),
    });
    let mut resp = axum::Json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": access_ttl,
        "refresh_token": refresh,
        "scope": scope,
    }))
    .into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

fn redeem_code(
    st: &AppState,
    client: &Client,
    code: &str,
    verifier: Option<&String>,
    now: i64,
) -> Result<(String, String), OAuthError> {
    let hash = sha256_hex(code);
    let row = st.db.with(|c| {
        let row = c
            .query_row(
                "SELECT client_id, user_id, scope, code_challenge, expires_at, used FROM oauth_codes WHERE code_hash = ?1",
                params![hash],
                |r| {
                    Ok(CodeRow {
                        client_id: r.get(0)?,
                        user_id: r.get(1)?,
                        scope: r.get(2)?,
                        code_challenge: r.get(3)?,
                        expires_at: r.get(4)?,
                        used: r.get(5)?,
                    })
                },
            )
            .optional()?;
        if row.is_some() {
            c.execute("UPDATE oauth_codes SET used = 1 WHERE code_hash = ?1", params![hash])?;
        }
        Ok(row)
    })?;
    let row = row.ok_or_else(|| OAuthError::invalid_grant("unknown authorization code"))?;
    if row.used {
        return Err(OAuthError::invalid_grant(
            "authorization code was already used",
        ));
    }
    if row.client_id != client.id {
        return Err(OAuthError::invalid_grant(format!(
            "authorization code was issued to another client, not '{}'",
            client.id
        )));
    }
    if now >= row.expires_at {
        return Err(OAuthError::invalid_grant(
            "authorization code expired; request a new one",
        ));
    }
    if let Some(challenge) = row.code_challenge {
        let verifier =
            verifier.ok_or_else(|| OAuthError::invalid_grant("code_verifier required (PKCE)"))?;
        let computed =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Digest::finalize(
                <sha2::Sha256 as sha2::Digest>::new_with_prefix(verifier.as_bytes()),
            ));
        if computed != challenge {
            return Err(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge (PKCE S256)",
            ));
        }
    }
    Ok((row.user_id, row.scope))
}

/// Marks the refresh token used (single use) and returns `(user_id, scope, family)`.
fn use_refresh_token(
    st: &AppState,
    client: &Client,
    token: &str,
    now: i64,
) -> Result<(String, String, String), OAuthError> {
    let hash = sha256_hex(token);
    st.db.with(|c| {
        let tx = c.transaction()?;
        let row = tx
            .query_row(
                "SELECT family_id, client_id, user_id, scope, expires_at, used_at, revoked_at, revoked_reason
                 FROM refresh_tokens WHERE token_hash = ?1",
                params![hash],
                |r| {
                    Ok(RefreshRow {
                        family_id: r.get(0)?,
                        client_id: r.get(1)?,
                        user_id: r.get(2)?,
                        scope: r.get(3)?,
                        expires_at: r.get(4)?,
                        used_at: r.get(5)?,
                        revoked_at: r.get(6)?,
                        revoked_reason: r.get(7)?,
                    })
                },
            )
            .optional()?;
        let result = match row {
            None => Err(OAuthError::invalid_grant("unknown refresh token; the user must authorize again")),
            Some(r) if r.client_id != client.id => Err(OAuthError::invalid_grant(format!(
                "refresh token was issued to another client, not '{}'",
                client.id
            ))),
            Some(r) if r.revoked_at.is_some() => Err(OAuthError::invalid_grant(format!(
                "refresh token was revoked ({}); the user must authorize again",
                r.revoked_reason.as_deref().unwrap_or("revoked")
            ))),
            Some(r) if r.used_at.is_some() => {
                tx.execute(
                    "UPDATE refresh_tokens SET revoked_at = ?2, revoked_reason = 'reuse detected'
                     WHERE family_id = ?1 AND revoked_at IS NULL",
                    params![r.family_id, now],
                )?;
                bump(&st.counters.oauth_reuse_detected);
                Err(OAuthError::invalid_grant(
                    "refresh token was already used; its token family has been revoked and the user must authorize again",
                ))
            }
            Some(r) if now >= r.expires_at => Err(OAuthError::invalid_grant(
                "refresh token expired; the user must authorize again",
            )),
            Some(r) => {
                tx.execute("UPDATE refresh_tokens SET used_at = ?2 WHERE token_hash = ?1", params![hash, now])?;
                Ok((r.user_id, r.scope, r.family_id))
            }
        };
        tx.commit()?;
        Ok(result)
    })?
}

/// Issues an authorization code for `user_id` and `client_id` (admin/test path standing in for
/// the browser consent step). Returns the code (only its hash is stored).
pub(crate) fn issue_code(
    st: &AppState,
    client_id: &str,
    user_id: &str,
    scope: &str,
    code_challenge: Option<&str>,
) -> Result<String, DbError> {
    let code = format!("ac_{}", random_string(32));
    let exp =
        st.clock.now_secs() + i64::try_from(st.config.oauth_code_ttl.as_secs()).unwrap_or(i64::MAX);
    st.db.with(|c| {
        c.execute(
            "INSERT INTO oauth_codes (code_hash, client_id, user_id, scope, code_challenge, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![sha256_hex(&code), client_id, user_id, scope, code_challenge, exp],
        )?;
        Ok(())
    })?;
    Ok(code)
}

/// Revokes every live refresh token of `user_id` and/or `client_id` (both `None`: all).
pub(crate) fn revoke(
    st: &AppState,
    user_id: Option<&str>,
    client_id: Option<&str>,
) -> Result<usize, DbError> {
    let now = st.clock.now_secs();
    st.db.with(|c| {
        Ok(c.execute(
            "UPDATE refresh_tokens SET revoked_at = ?1, revoked_reason = 'revoked by admin'
             WHERE revoked_at IS NULL AND used_at IS NULL
               AND (?2 IS NULL OR user_id = ?2) AND (?3 IS NULL OR client_id = ?3)",
            params![now, user_id, client_id],
        )?)
    })
}
