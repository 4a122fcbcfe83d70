//! Verification of Agora 007 and ZEGO Token04 room tokens, through `tokenkeeper::formats`.
//!
//! - Agora: `verify_007` with the app certificate; the app id must be ours; the identity is the
//!   RTC service's uid (mapped back to the user id) or account; the room is its channel; expiry
//!   is the earliest of the token and privilege expiries.
//! - ZEGO: `decrypt_04` with the ServerSecret (GCM authenticates it); the app id must be ours;
//!   the room is `room_id` of the privilege payload.

use serde_json::Value;
use tokenkeeper::formats::agora::{ServiceKind, verify_007};
use tokenkeeper::formats::zego::decrypt_04;

use crate::room::RoomGrant;
use crate::state::AppState;

/// Verifies an Agora or ZEGO token this server issued, at `now` (unix s, server clock).
pub(crate) async fn verify_vendor_token(
    st: &AppState,
    token: &str,
    now: i64,
) -> Result<RoomGrant, String> {
    let s = &st.config.secrets;
    let grant = if token.starts_with("007") {
        let t = verify_007(token, &s.agora_app_certificate).map_err(|e| e.to_string())?;
        if t.app_id != s.agora_app_id {
            return Err("Agora token was issued for another app id".into());
        }
        let (channel, uid) = t
            .services
            .iter()
            .find_map(|svc| match &svc.kind {
                ServiceKind::Rtc { channel_name, uid } => Some((channel_name.clone(), uid.clone())),
                _ => None,
            })
            .ok_or("Agora token has no RTC service")?;
        let user_id = match uid.parse::<u32>() {
            Ok(n) => match st.store.user_by_uid(n).await {
                Ok(Some(u)) => u.id,
                Ok(None) => return Err(format!("Agora uid {n} belongs to no user")),
                Err(e) => {
                    let _ = st.store_error(e);
                    return Err("the server's database failed; retry later".into());
                }
            },
            Err(_) if uid.is_empty() => {
                return Err("Agora token for uid 0 (any user) is not accepted".into());
            }
            Err(_) => uid,
        };
        RoomGrant {
            user_id,
            room: channel,
            expires_at_ms: t.effective_expires_at().saturating_mul(1000),
        }
    } else if token.starts_with("04") {
        let (t, p) = decrypt_04(token, &s.zego_server_secret).map_err(|e| e.to_string())?;
        if p.app_id != s.zego_app_id {
            return Err("ZEGO token was issued for another app id".into());
        }
        let payload: Value = serde_json::from_str(&p.payload)
            .map_err(|_| "ZEGO token payload is not the privilege JSON".to_owned())?;
        let room = payload
            .get("room_id")
            .and_then(Value::as_str)
            .ok_or("ZEGO token payload names no room_id")?
            .to_owned();
        RoomGrant {
            user_id: p.user_id,
            room,
            expires_at_ms: t.expire.saturating_mul(1000),
        }
    } else {
        return Err("unrecognised token: expected a JWT, an Agora 007 or a ZEGO 04 token".into());
    };
    if now.saturating_mul(1000) >= grant.expires_at_ms {
        return Err(format!(
            "token expired {} s ago (server clock)",
            now.saturating_sub(grant.expires_at_ms.div_euclid(1000))
        ));
    }
    Ok(grant)
}
