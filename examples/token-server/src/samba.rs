//! Digital Samba-style `POST /api/v1/rooms/{room}/token`, guarded by the developer key.
//!
//! Returns an HS256 JWT signed with the developer key, with claims `td` (team id), `rd` (room),
//! `ud` (external user id), `u` (display name), `role`, `iat`, `nbf`, `exp`.

use crate::error::RawBody;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::clock::{iso_millis, iso_secs};
use crate::db::AuditEntry;
use crate::error::{ApiError, parse_json};
use crate::rtc::{bearer, valid_channel};
use crate::state::{Shared, bump};

/// Optional JSON body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomTokenRequest {
    /// External user id (`ud`). Default: a random guest id.
    #[serde(default)]
    ud: Option<String>,
    /// Display name (`u`). Default: `Guest`.
    #[serde(default)]
    u: Option<String>,
    /// `moderator`, `attendee` (default) or any role name of the room.
    #[serde(default)]
    role: Option<String>,
    /// Lifetime in seconds. Default: the RTC default (`token_ttl_secs`).
    #[serde(default)]
    ttl_secs: Option<u64>,
    /// Start of validity (unix s), for scheduled meetings. Default: now.
    #[serde(default)]
    nbf: Option<i64>,
}

/// `POST /api/v1/rooms/{room}/token`.
pub(crate) async fn room_token(
    State(st): State<Shared>,
    Path(room): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Response {
    match process(&st, &room, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn process(
    st: &crate::state::AppState,
    room: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    st.inject_faults().await?;
    match bearer(headers) {
        Some(k) if k == st.config.secrets.samba_developer_key => {}
        Some(_) => return Err(ApiError::unauthenticated("wrong developer key")),
        None => {
            return Err(ApiError::unauthenticated(
                "missing developer key: send `Authorization: Bearer <developer key>`",
            ));
        }
    }
    if !valid_channel(room) {
        return Err(ApiError::bad_request(
            "invalid_room",
            "room must be 1-64 bytes without whitespace or control characters",
        ));
    }
    let req: RoomTokenRequest = if body.is_empty() {
        RoomTokenRequest::default()
    } else {
        parse_json(body)?
    };
    if let Some(s) = st.dir.read().streams.get(room) {
        if !s.live {
            return Err(ApiError::not_found(
                "stream_ended",
                format!("room '{room}' has ended"),
            ));
        }
    }
    let now_ms = st.clock.now_ms();
    let now = now_ms.div_euclid(1000);
    let ttl = req
        .ttl_secs
        .unwrap_or_else(|| st.faults.read().token_ttl_secs);
    if ttl == 0 || ttl > st.config.max_token_ttl.as_secs() {
        return Err(ApiError::bad_request(
            "invalid_ttl",
            format!(
                "ttl_secs {ttl} is out of range 1..={}",
                st.config.max_token_ttl.as_secs()
            ),
        ));
    }
    let nbf = req.nbf.unwrap_or(now);
    let exp = nbf.max(now) + i64::try_from(ttl).unwrap_or(i64::MAX / 2);
    let ud = req
        .ud
        .unwrap_or_else(|| format!("guest-{}", crate::config::random_string(8)));
    let role = req.role.unwrap_or_else(|| "attendee".into());
    let claims = json!({
        "td": st.config.secrets.samba_team_id,
        "rd": room,
        "ud": ud,
        "u": req.u.unwrap_or_else(|| "Guest".into()),
        "role": role,
        "iat": now,
        "nbf": nbf,
        "exp": exp,
    });
    let token = crate::mint::sign_hs256(st.config.secrets.samba_developer_key.as_bytes(), &claims)
        .map_err(ApiError::internal)?;
    bump(&st.counters.room_tokens_issued);
    st.audit(AuditEntry {
        ts_ms: now_ms,
        kind: "room_token",
        user_id: Some(ud),
        vendor: Some("jwt".into()),
        channel: Some(room.to_owned()),
        role: Some(role),
        status: 200,
        outcome: "issued".into(),
        expires_at: Some(exp),
    });
    Ok(Json(json!({
        "token": token,
        "expiresAt": iso_secs(exp),
        "expiresIn": exp - now,
        "serverTime": iso_millis(now_ms),
    }))
    .into_response())
}
