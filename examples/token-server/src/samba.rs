//! Digital Samba-style `POST /api/v1/rooms/{room}/token`, guarded by the developer key.
//!
//! Returns an HS256 JWT signed with the developer key, with claims `td` (team id), `rd` (room),
//! `ud` (external user id), `u` (display name), `role`, `iat`, `nbf`, `exp`.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::clock::{iso_millis, iso_secs};
use crate::error::{ApiError, JsonPath, Peer, RawBody, parse_json};
use crate::rtc::{bearer, valid_channel};
use crate::secret::secret_eq;
use crate::state::{Shared, bump};
use crate::store::AuditEntry;

/// How far ahead a room token may start (`nbf`): one year.
pub const MAX_NBF_AHEAD_SECS: i64 = 366 * 24 * 3600;
/// How far back a room token's `nbf` may lie: one day.
pub const MAX_NBF_BEHIND_SECS: i64 = 24 * 3600;

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
    peer: Peer,
    path: Result<JsonPath<String>, ApiError>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Response {
    let room = match path {
        Ok(JsonPath(room)) => room,
        Err(e) => return e.into_response(),
    };
    match process(&st, peer, &room, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn process(
    st: &crate::state::AppState,
    peer: Peer,
    room: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    st.inject_faults().await?;
    let Some(key) = bearer(headers) else {
        return Err(ApiError::unauthenticated(
            "missing developer key: send `Authorization: Bearer <developer key>`",
        ));
    };
    st.check_auth_throttle(peer.0, None).await?;
    if !secret_eq(key, &st.config.secrets.samba_developer_key) {
        st.note_auth_failure(peer.0, None).await?;
        return Err(ApiError::unauthenticated(
            "wrong developer key; use the key printed at start or set with --developer-key",
        ));
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
    if let Some(s) = st.store.stream(room).await.map_err(|e| st.store_error(e))? {
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
    let earliest = now.saturating_sub(MAX_NBF_BEHIND_SECS);
    let latest = now.saturating_add(MAX_NBF_AHEAD_SECS);
    if !(earliest..=latest).contains(&nbf) {
        return Err(ApiError::bad_request(
            "invalid_nbf",
            format!(
                "nbf must be a unix time in seconds between one day ago ({earliest}) and one year ahead ({latest})"
            ),
        ));
    }
    let exp = i64::try_from(ttl)
        .ok()
        .and_then(|ttl| nbf.max(now).checked_add(ttl))
        .ok_or_else(|| ApiError::bad_request("invalid_ttl", "ttl_secs is out of range"))?;
    let ud = req
        .ud
        .unwrap_or_else(|| format!("guest-{}", crate::config::random_string(8)));
    let role = req.role.unwrap_or_else(|| "attendee".into());
    let name = req.u.unwrap_or_else(|| "Guest".into());
    for (field, value) in [("ud", &ud), ("u", &name), ("role", &role)] {
        if value.is_empty() || value.len() > 128 || value.chars().any(char::is_control) {
            return Err(ApiError::bad_request(
                "invalid_field",
                format!("{field} must be 1-128 bytes without control characters"),
            ));
        }
    }
    let claims = json!({
        "td": st.config.secrets.samba_team_id,
        "rd": room,
        "ud": ud,
        "u": name,
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
        "expiresIn": exp.saturating_sub(now),
        "serverTime": iso_millis(now_ms),
    }))
    .into_response())
}
