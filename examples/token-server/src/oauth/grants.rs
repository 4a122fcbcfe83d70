//! The two grants: redeeming an authorization code and rotating a refresh token.

use std::collections::HashMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::OAuthError;
use super::checks::{parse_scope, scope_within, valid_verifier, verifier_matches};
use super::client_auth::Client;
use crate::config::random_string;
use crate::secret::sha256_hex;
use crate::state::{AppState, bump};
use crate::store::{AuditEntry, FamilyRec, NewRefresh};

/// What a successful grant issues tokens for.
struct Issue {
    family: FamilyRec,
    /// Scope of the access token (the family's, or a narrower one asked for on refresh).
    scope: String,
    /// The refresh token to return (already stored).
    refresh: String,
    kind: &'static str,
}

fn seconds(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A fresh refresh token and its row.
fn new_refresh(st: &AppState, family_id: &str, now: i64) -> (String, NewRefresh) {
    let token = format!("rt_{}", random_string(43));
    let row = NewRefresh {
        token_hash: sha256_hex(&token),
        family_id: family_id.to_owned(),
        issued_at: now,
        expires_at: now.saturating_add(seconds(st.config.oauth_refresh_ttl)),
    };
    (token, row)
}

/// Dispatches on `grant_type` and answers with the token response.
pub(crate) async fn grant(
    st: &AppState,
    client: &Client,
    form: &HashMap<String, String>,
) -> Result<Response, OAuthError> {
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("missing grant_type"))?;
    let now = st.clock.now_secs();
    let issue = match grant_type.as_str() {
        "authorization_code" => redeem_code(st, client, form, now).await?,
        "refresh_token" => rotate(st, client, form, now).await?,
        _ => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type is not supported; use authorization_code or refresh_token",
            ));
        }
    };
    respond(st, client, issue, now)
}

/// Refuses a missing or banned user (checked on every grant, at the store: a ban through any
/// instance holds here).
async fn check_user(st: &AppState, user_id: &str) -> Result<(), OAuthError> {
    match st
        .store
        .user(user_id)
        .await
        .map_err(|e| OAuthError::store(st, e))?
    {
        None => Err(OAuthError::invalid_grant(format!(
            "user '{user_id}' no longer exists"
        ))),
        Some(u) if u.banned => Err(OAuthError::invalid_grant(format!(
            "user '{user_id}' is banned"
        ))),
        Some(_) => Ok(()),
    }
}

async fn redeem_code(
    st: &AppState,
    client: &Client,
    form: &HashMap<String, String>,
    now: i64,
) -> Result<Issue, OAuthError> {
    let code = form
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("missing code"))?;
    let verifier = form.get("code_verifier");
    if verifier.is_some_and(|v| !valid_verifier(v)) {
        return Err(OAuthError::invalid_request(
            "code_verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 section 4.1)",
        ));
    }
    let hash = sha256_hex(code);
    let row = st
        .store
        .code(&hash)
        .await
        .map_err(|e| OAuthError::store(st, e))?
        .ok_or_else(|| OAuthError::invalid_grant("unknown authorization code"))?;
    if let Some(family) = &row.family_id {
        // Presented again after its redemption: revoke what was issued from it.
        if !family.is_empty() {
            st.store
                .revoke_family(family, "authorization code reused", now)
                .await
                .map_err(|e| OAuthError::store(st, e))?;
        }
        bump(&st.counters.oauth_reuse_detected);
        return Err(OAuthError::invalid_grant(
            "authorization code was already used; the tokens issued from it have been revoked and the user must authorize again",
        ));
    }
    // From here on, a refusal leaves the code unused for its rightful client.
    if row.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "authorization code was issued to another client",
        ));
    }
    if now >= row.expires_at {
        return Err(OAuthError::invalid_grant(
            "authorization code expired; request a new one",
        ));
    }
    if form.get("redirect_uri") != row.redirect_uri.as_ref() {
        return Err(OAuthError::invalid_grant(match &row.redirect_uri {
            Some(_) => "redirect_uri must be identical to the one of the authorization request",
            None => "the authorization request had no redirect_uri; send none",
        }));
    }
    match (&row.code_challenge, verifier) {
        (Some(challenge), Some(v)) if verifier_matches(v, challenge) => {}
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge (PKCE S256)",
            ));
        }
        (Some(_), None) => {
            return Err(OAuthError::invalid_grant("code_verifier required (PKCE)"));
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent for a code issued without code_challenge",
            ));
        }
        (None, None) if client.public => {
            return Err(OAuthError::invalid_grant(
                "public clients must use PKCE: request the code with a code_challenge (S256)",
            ));
        }
        (None, None) => {}
    }
    check_user(st, &row.user_id).await?;
    let family = FamilyRec {
        family_id: random_string(24),
        client_id: client.id.clone(),
        user_id: row.user_id.clone(),
        scope: row.scope.clone(),
    };
    let (refresh, first) = new_refresh(st, &family.family_id, now);
    let claimed = st
        .store
        .claim_code(&hash, &family, &first, now)
        .await
        .map_err(|e| OAuthError::store(st, e))?;
    if !claimed {
        // Another request redeemed it first: this one is a second use.
        if let Some(Some(winner)) = st
            .store
            .code(&hash)
            .await
            .map_err(|e| OAuthError::store(st, e))?
            .map(|c| c.family_id)
        {
            st.store
                .revoke_family(&winner, "authorization code reused", now)
                .await
                .map_err(|e| OAuthError::store(st, e))?;
        }
        bump(&st.counters.oauth_reuse_detected);
        return Err(OAuthError::invalid_grant(
            "authorization code was already used; the tokens issued from it have been revoked",
        ));
    }
    Ok(Issue {
        scope: family.scope.clone(),
        family,
        refresh,
        kind: "oauth_authorization_code",
    })
}

async fn rotate(
    st: &AppState,
    client: &Client,
    form: &HashMap<String, String>,
    now: i64,
) -> Result<Issue, OAuthError> {
    let rt = form
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("missing refresh_token"))?;
    let requested = match form.get("scope") {
        None => None,
        Some(s) => Some(parse_scope(s).ok_or_else(|| {
            OAuthError::invalid_scope(
                "scope must be space-separated tokens of printable ASCII without quotes or backslashes",
            )
        })?),
    };
    let hash = sha256_hex(rt);
    let view = st
        .store
        .refresh(&hash)
        .await
        .map_err(|e| OAuthError::store(st, e))?
        .ok_or_else(|| {
            OAuthError::invalid_grant("unknown refresh token; the user must authorize again")
        })?;
    let fam = &view.family;
    if fam.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "refresh token was issued to another client",
        ));
    }
    if let Some(reason) = &view.revoked {
        return Err(OAuthError::invalid_grant(format!(
            "refresh token was revoked ({reason}); the user must authorize again"
        )));
    }
    let reused = || async {
        st.store
            .revoke_family(&fam.family_id, "reuse detected", now)
            .await
            .map_err(|e| OAuthError::store(st, e))?;
        bump(&st.counters.oauth_reuse_detected);
        Ok::<_, OAuthError>(OAuthError::invalid_grant(
            "refresh token was already used; its token family has been revoked and the user must authorize again",
        ))
    };
    if view.used {
        return Err(reused().await?);
    }
    if now >= view.expires_at {
        return Err(OAuthError::invalid_grant(
            "refresh token expired; the user must authorize again",
        ));
    }
    let scope = match requested {
        None => fam.scope.clone(),
        Some(req) if scope_within(&req, &fam.scope) => req.join(" "),
        Some(_) => {
            return Err(OAuthError::invalid_scope(format!(
                "the requested scope exceeds the scope granted ('{}'); ask for it or less",
                fam.scope
            )));
        }
    };
    check_user(st, &fam.user_id).await?;
    let (refresh, successor) = new_refresh(st, &fam.family_id, now);
    let rotated = st
        .store
        .rotate_refresh(&hash, &successor, now)
        .await
        .map_err(|e| OAuthError::store(st, e))?;
    if !rotated {
        // Another request (possibly at another instance) used it first, or the family was
        // revoked meanwhile: a second use.
        return Err(reused().await?);
    }
    bump(&st.counters.oauth_refreshes);
    Ok(Issue {
        family: view.family,
        scope,
        refresh,
        kind: "oauth_refresh",
    })
}

fn respond(st: &AppState, client: &Client, issue: Issue, now: i64) -> Result<Response, OAuthError> {
    let access_ttl = seconds(st.config.oauth_access_ttl);
    let exp = now.saturating_add(access_ttl);
    let claims = json!({
        "iss": "tokenkeeper-server",
        "sub": issue.family.user_id,
        "client_id": client.id,
        "scope": issue.scope,
        "fid": issue.family.family_id,
        "iat": now,
        "exp": exp,
        "jti": random_string(16),
    });
    let access = crate::mint::sign_hs256(st.config.secrets.oauth_signing_key.as_bytes(), &claims)
        .map_err(|e| {
        tracing::error!(error = %e, "cannot sign an OAuth access token");
        OAuthError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "cannot sign the access token; check the server's OAuth signing key",
        )
    })?;
    bump(&st.counters.oauth_tokens_issued);
    st.audit(AuditEntry {
        ts_ms: st.clock.now_ms(),
        kind: issue.kind,
        user_id: Some(issue.family.user_id.clone()),
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
        "refresh_token": issue.refresh,
        "scope": issue.scope,
    }))
    .into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(resp)
}
