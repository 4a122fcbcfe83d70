//! The `/admin` HTTP routes: thin wrappers over [`AdminHandle`].

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::types::{ClientBody, CodeBody};
use super::{AdminHandle, NewStream, NewUser, RevokeFilter};
use crate::error::{ApiError, JsonPath, JsonQuery, Peer, RawBody, parse_json};
use crate::secret::secret_eq;
use crate::state::Shared;

/// Middleware: requires `Authorization: Bearer <admin key>` (compared in constant time; failed
/// attempts are throttled per address).
pub(crate) async fn require_admin(
    State(st): State<Shared>,
    peer: Peer,
    req: Request,
    next: Next,
) -> Response {
    let Some(key) = crate::rtc::bearer(req.headers()) else {
        return ApiError::unauthenticated(
            "missing admin key: send `Authorization: Bearer <admin key>`",
        )
        .into_response();
    };
    if let Err(e) = st.check_auth_throttle(peer.0, None).await {
        return e.into_response();
    }
    if secret_eq(key, &st.config.secrets.admin_key) {
        return next.run(req).await;
    }
    if let Err(e) = st.note_auth_failure(peer.0, None).await {
        return e.into_response();
    }
    ApiError::unauthenticated(
        "wrong admin key; use the key printed at start or set with --admin-key",
    )
    .into_response()
}

fn handle(st: &Shared) -> AdminHandle {
    AdminHandle { st: Arc::clone(st) }
}

fn reply<T: Serialize>(r: Result<T, ApiError>, status: StatusCode) -> Response {
    match r {
        Ok(v) => (status, Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

fn body_or_default<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        Ok(T::default())
    } else {
        parse_json(body)
    }
}

pub(crate) async fn post_user(State(st): State<Shared>, RawBody(body): RawBody) -> Response {
    match body_or_default::<NewUser>(&body) {
        Ok(new) => reply(handle(&st).create_user(new).await, StatusCode::CREATED),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn ban_user(State(st): State<Shared>, JsonPath(id): JsonPath<String>) -> Response {
    reply(handle(&st).set_banned(&id, true).await, StatusCode::OK)
}

pub(crate) async fn unban_user(
    State(st): State<Shared>,
    JsonPath(id): JsonPath<String>,
) -> Response {
    reply(handle(&st).set_banned(&id, false).await, StatusCode::OK)
}

pub(crate) async fn post_stream(State(st): State<Shared>, RawBody(body): RawBody) -> Response {
    match parse_json::<NewStream>(&body) {
        Ok(new) => reply(handle(&st).create_stream(new).await, StatusCode::CREATED),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn end_stream_route(
    State(st): State<Shared>,
    JsonPath(ch): JsonPath<String>,
) -> Response {
    reply(handle(&st).end_stream(&ch).await, StatusCode::OK)
}

pub(crate) async fn get_faults(State(st): State<Shared>) -> Response {
    Json(st.faults()).into_response()
}

pub(crate) async fn put_faults(State(st): State<Shared>, RawBody(body): RawBody) -> Response {
    match parse_json(&body) {
        Ok(u) => reply(handle(&st).update_faults(u), StatusCode::OK),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn get_stats(State(st): State<Shared>) -> Response {
    Json(handle(&st).stats()).into_response()
}

pub(crate) async fn post_client(State(st): State<Shared>, RawBody(body): RawBody) -> Response {
    match parse_json::<ClientBody>(&body).map(ClientBody::split) {
        Ok((new, uris)) => reply(
            handle(&st).register_oauth_client(new, uris).await,
            StatusCode::CREATED,
        ),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn post_code(State(st): State<Shared>, RawBody(body): RawBody) -> Response {
    match parse_json::<CodeBody>(&body).map(CodeBody::split) {
        Ok((new, opts)) => {
            let ttl = st.config.oauth_code_ttl.as_secs();
            reply(
                handle(&st)
                    .authorize(new, opts)
                    .await
                    .map(|code| json!({ "code": code, "expires_in": ttl })),
                StatusCode::CREATED,
            )
        }
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn post_revoke(State(st): State<Shared>, RawBody(body): RawBody) -> Response {
    match body_or_default::<RevokeFilter>(&body) {
        Ok(filter) => reply(
            handle(&st)
                .revoke_refresh_tokens(filter)
                .await
                .map(|n| json!({ "revoked": n })),
            StatusCode::OK,
        ),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    limit: Option<u32>,
}

pub(crate) async fn get_audit(
    State(st): State<Shared>,
    JsonQuery(q): JsonQuery<AuditQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(100).min(10_000);
    reply(handle(&st).audit(limit).await, StatusCode::OK)
}
