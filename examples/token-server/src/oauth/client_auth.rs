//! Client authentication at the token endpoint (RFC 6749 §2.3): HTTP Basic or
//! `client_secret_post`, secrets compared in constant time, failures throttled.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use base64::Engine;

use super::{OAuthError, form_decode};
use crate::error::Peer;
use crate::secret::hash_matches;
use crate::state::AppState;
use crate::store::ClientRec;

/// The authenticated client.
#[derive(Debug)]
pub(crate) struct Client {
    pub id: String,
    pub public: bool,
}

/// `(client_id, secret)` from the Basic header, or `None` when there is no Basic header.
fn basic(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    match v.split_once(' ') {
        Some((scheme, b64)) if scheme.eq_ignore_ascii_case("basic") => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| {
                    OAuthError::invalid_client("the Basic Authorization header is not valid base64")
                })?;
            let raw = String::from_utf8(raw).map_err(|_| {
                OAuthError::invalid_client("the Basic Authorization header is not UTF-8")
            })?;
            let (id, secret) = raw.split_once(':').ok_or_else(|| {
                OAuthError::invalid_client(
                    "the Basic Authorization header needs `client_id:client_secret`",
                )
            })?;
            Ok(Some((form_decode(id), form_decode(secret))))
        }
        _ => Ok(None),
    }
}

/// A client id shown in a message: at most 64 characters.
fn shown(id: &str) -> String {
    id.chars().take(64).collect()
}

/// Authenticates the client from the Basic header or the form (see the module docs).
pub(crate) async fn authenticate(
    st: &AppState,
    peer: Peer,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Client, OAuthError> {
    let (id, secret) = match basic(headers)? {
        Some((id, secret)) => {
            if form.contains_key("client_secret") {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method: HTTP Basic or client_secret in the body, not both",
                ));
            }
            if form.get("client_id").is_some_and(|f| f != &id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the one in the Basic header",
                ));
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
    let stored = st
        .store
        .client(&id)
        .await
        .map_err(|e| OAuthError::store(st, e))?;
    // Failures are counted per address, and per client for clients that exist (unknown ids
    // would make the key space unbounded).
    let subject = stored.as_ref().map(|c| format!("oauth:{}", c.client_id));
    st.check_auth_throttle(peer.0, subject.as_deref())
        .await
        .map_err(OAuthError::from_api)?;
    match check(stored.as_ref(), &id, secret.as_deref()) {
        Ok(client) => Ok(client),
        Err(e) => {
            st.note_auth_failure(peer.0, subject.as_deref())
                .await
                .map_err(OAuthError::from_api)?;
            Err(e)
        }
    }
}

fn check(stored: Option<&ClientRec>, id: &str, secret: Option<&str>) -> Result<Client, OAuthError> {
    let id_shown = shown(id);
    let Some(stored) = stored else {
        return Err(OAuthError::invalid_client(format!(
            "unknown client_id '{id_shown}'; register it with POST /admin/oauth/clients"
        )));
    };
    match (&stored.secret_hash, secret) {
        (Some(hash), Some(secret)) if hash_matches(secret, hash) => Ok(Client {
            id: stored.client_id.clone(),
            public: false,
        }),
        (Some(_), Some(_)) => Err(OAuthError::invalid_client(format!(
            "wrong client_secret for client_id '{id_shown}'; use the secret registered for this client"
        ))),
        (Some(_), None) => Err(OAuthError::invalid_client(format!(
            "client_id '{id_shown}' is confidential: authenticate with its client_secret"
        ))),
        (None, None) => Ok(Client {
            id: stored.client_id.clone(),
            public: true,
        }),
        (None, Some("")) => Ok(Client {
            id: stored.client_id.clone(),
            public: true,
        }),
        (None, Some(_)) => Err(OAuthError::invalid_client(format!(
            "client_id '{id_shown}' is a public client: send no client_secret"
        ))),
    }
}
