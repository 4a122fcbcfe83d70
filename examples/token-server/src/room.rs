//! The room server: `GET /ws/rooms/{room}` (WebSocket, JSON text messages).
//!
//! Protocol (client → server): `{"type":"join","token":"…"}` first (within the join timeout),
//! then `{"type":"renew","token":"…"}` any time, `{"type":"ping"}`, `{"type":"leave"}`.
//!
//! Server → client: `joined` (`user_id`, `expires_at` unix s, `expires_in_ms`, `server_time` ms),
//! `will_expire` (`in_ms`) once per token when less than the warning lead remains, `renewed`,
//! `pong`, `error` (`code`, `message`; the connection stays), and `kicked` (`reason`) right
//! before a close frame with the same reason:
//!
//! | reason          | close code | when                                        |
//! |-----------------|-----------:|---------------------------------------------|
//! | `token_expired` | 4001       | the member's token expired on the server clock |
//! | `banned`        | 4003       | an admin banned the user                    |
//! | `stream_ended`  | 4004       | an admin ended the stream                   |
//! | `join_timeout`  | 4008       | no `join` within the join timeout           |
//! | `join_rejected` | 4401       | the join token was invalid, expired or for another room |
//! | `server_shutdown` | 1001     | the server is stopping                      |
//!
//! Each such disconnect is counted by reason (`GET /admin/stats` → `disconnects`).
//! Tokens are verified (signature and expiry on the server's possibly skewed clock): JWTs with
//! the RTC JWT key or the developer key, Agora 007 and ZEGO Token04 with their secrets.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::{ApiError, JsonPath};
use crate::state::{AppState, Shared, bump};

/// Why the server removed a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kick {
    TokenExpired,
    Banned,
    StreamEnded,
    JoinTimeout,
    JoinRejected,
    Shutdown,
}

impl Kick {
    fn reason(self) -> &'static str {
        match self {
            Self::TokenExpired => "token_expired",
            Self::Banned => "banned",
            Self::StreamEnded => "stream_ended",
            Self::JoinTimeout => "join_timeout",
            Self::JoinRejected => "join_rejected",
            Self::Shutdown => "server_shutdown",
        }
    }
    fn close_code(self) -> u16 {
        match self {
            Self::TokenExpired => 4001,
            Self::Banned => 4003,
            Self::StreamEnded => 4004,
            Self::JoinTimeout => 4008,
            Self::JoinRejected => 4401,
            Self::Shutdown => 1001,
        }
    }
}

#[derive(Debug)]
struct Member {
    user_id: String,
    kick: mpsc::UnboundedSender<Kick>,
}

/// Live members by room, and disconnect counters.
#[derive(Debug, Default)]
pub(crate) struct Rooms {
    members: Mutex<HashMap<String, HashMap<u64, Member>>>,
    next_id: AtomicU64,
    disconnects: Mutex<BTreeMap<&'static str, u64>>,
    left: AtomicU64,
}

impl Rooms {
    fn add(&self, room: &str, user_id: &str) -> (u64, mpsc::UnboundedReceiver<Kick>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        self.members
            .lock()
            .entry(room.to_owned())
            .or_default()
            .insert(
                id,
                Member {
                    user_id: user_id.to_owned(),
                    kick: tx,
                },
            );
        (id, rx)
    }

    fn remove(&self, room: &str, id: u64) {
        let mut m = self.members.lock();
        if let Some(r) = m.get_mut(room) {
            r.remove(&id);
            if r.is_empty() {
                m.remove(room);
            }
        }
    }

    fn count(&self, kick: Kick) {
        let mut counted = self.disconnects.lock();
        let n = counted.entry(kick.reason()).or_default();
        *n = n.saturating_add(1);
    }

    /// Kicks every connection of `user_id` (ban). Returns how many were told.
    pub(crate) fn kick_user(&self, user_id: &str) -> usize {
        let m = self.members.lock();
        m.values()
            .flat_map(|r| r.values())
            .filter(|mem| mem.user_id == user_id)
            .filter(|mem| mem.kick.send(Kick::Banned).is_ok())
            .count()
    }

    /// Kicks every member of `room` (stream ended). Returns how many were told.
    pub(crate) fn kick_room(&self, room: &str) -> usize {
        let m = self.members.lock();
        m.get(room)
            .map(|r| {
                r.values()
                    .filter(|mem| mem.kick.send(Kick::StreamEnded).is_ok())
                    .count()
            })
            .unwrap_or(0)
    }

    /// Disconnects by reason (every reason listed, zero if none).
    pub(crate) fn disconnects(&self) -> BTreeMap<&'static str, u64> {
        let counted = self.disconnects.lock();
        [
            Kick::TokenExpired,
            Kick::Banned,
            Kick::StreamEnded,
            Kick::JoinTimeout,
            Kick::JoinRejected,
            Kick::Shutdown,
        ]
        .into_iter()
        .map(|k| (k.reason(), counted.get(k.reason()).copied().unwrap_or(0)))
        .collect()
    }

    /// Members currently joined, and clients that left on their own.
    pub(crate) fn members_and_left(&self) -> (usize, u64) {
        let n = self.members.lock().values().map(HashMap::len).sum();
        (n, self.left.load(Ordering::Relaxed))
    }
}

/// What a verified room token grants.
#[derive(Debug, Clone)]
pub(crate) struct RoomGrant {
    pub user_id: String,
    pub room: String,
    /// Expiry, unix ms.
    pub expires_at_ms: i64,
}

/// Verifies a token presented to the room server at the server's clock.
pub(crate) async fn verify_room_token(st: &AppState, token: &str) -> Result<RoomGrant, String> {
    let now = st.clock.now_secs();
    let s = &st.config.secrets;
    if token.matches('.').count() == 2 {
        let claims = crate::jwt::verify_hs256(s.jwt_key.as_bytes(), token, now)
            .or_else(|e| match e {
                crate::jwt::JwtError::WrongKey => {
                    crate::jwt::verify_hs256(s.samba_developer_key.as_bytes(), token, now)
                }
                other => Err(other),
            })
            .map_err(|e| e.to_string())?;
        let get = |a: &str, b: &str| {
            claims
                .get(a)
                .or_else(|| claims.get(b))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let user_id = get("sub", "ud").ok_or("token names no user (sub/ud)")?;
        let room = get("channel", "rd").ok_or("token names no room (channel/rd)")?;
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        return Ok(RoomGrant {
            user_id,
            room,
            expires_at_ms: exp.saturating_mul(1000),
        });
    }
    crate::verify::verify_vendor_token(st, token, now).await
}

#[derive(Debug, Deserialize)]
struct ClientMsg {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    token: Option<String>,
}

/// `GET /ws/rooms/{room}`.
pub(crate) async fn ws(
    State(st): State<Shared>,
    path: Result<JsonPath<String>, ApiError>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let room = match path {
        Ok(JsonPath(room)) => room,
        Err(e) => return e.into_response(),
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(e) => {
            return ApiError::new(
                e.status(),
                "websocket_required",
                format!("{}; connect with a WebSocket client", e.body_text()),
            )
            .into_response();
        }
    };
    if !crate::rtc::valid_channel(&room) {
        return ApiError::bad_request("invalid_room", "room must be 1-64 bytes without whitespace")
            .into_response();
    }
    upgrade
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| run(st, room, socket))
}

async fn send_json(socket: &mut WebSocket, v: Value) -> bool {
    socket.send(Message::text(v.to_string())).await.is_ok()
}

async fn close(st: &AppState, socket: &mut WebSocket, kick: Kick, detail: &str) {
    st.rooms.count(kick);
    let _ = send_json(
        socket,
        json!({ "type": "kicked", "reason": kick.reason(), "message": detail }),
    )
    .await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: kick.close_code(),
            reason: kick.reason().into(),
        })))
        .await;
}

/// Checks the store: banned users and ended streams may not be in a room. A store failure
/// refuses admission too (as an ended stream would), and is logged.
async fn admission(st: &AppState, grant: &RoomGrant) -> Result<(), Kick> {
    let user = st.store.user(&grant.user_id).await;
    let stream = st.store.stream(&grant.room).await;
    match (user, stream) {
        (Ok(u), _) if u.as_ref().is_some_and(|u| u.banned) => Err(Kick::Banned),
        (_, Ok(s)) if s.as_ref().is_some_and(|s| !s.live) => Err(Kick::StreamEnded),
        (Ok(_), Ok(_)) => Ok(()),
        (Err(e), _) | (_, Err(e)) => {
            let _ = st.store_error(e);
            Err(Kick::StreamEnded)
        }
    }
}

async fn run(st: Shared, room: String, mut socket: WebSocket) {
    let mut shutdown = st.shutdown.clone();
    let join_deadline = st.config.room_join_timeout;
    // 1. Join.
    let joined = tokio::time::timeout(join_deadline, async {
        loop {
            match socket.recv().await {
                Some(Ok(Message::Text(t))) => return Some(t.to_string()),
                Some(Ok(Message::Binary(_))) => return Some(String::new()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    let text = match joined {
        Err(_) => {
            return close(
                &st,
                &mut socket,
                Kick::JoinTimeout,
                "send {\"type\":\"join\",\"token\":…} first",
            )
            .await;
        }
        Ok(None) => return,
        Ok(Some(t)) => t,
    };
    let grant = match serde_json::from_str::<ClientMsg>(&text) {
        Ok(ClientMsg {
            kind,
            token: Some(tok),
        }) if kind == "join" => verify_room_token(&st, &tok).await,
        _ => Err("the first message must be {\"type\":\"join\",\"token\":\"…\"}".to_owned()),
    };
    let grant = match grant {
        Ok(g) if g.room != room => Err(format!("token is for room '{}', not '{room}'", g.room)),
        other => other,
    };
    let mut grant = match grant {
        Ok(g) => g,
        Err(msg) => {
            let _ = send_json(
                &mut socket,
                json!({ "type": "error", "code": "join_rejected", "message": msg }),
            )
            .await;
            return close(&st, &mut socket, Kick::JoinRejected, &msg).await;
        }
    };
    if let Err(kick) = admission(&st, &grant).await {
        return close(&st, &mut socket, kick, "not admitted").await;
    }
    let (member_id, mut kicks) = st.rooms.add(&room, &grant.user_id);
    bump(&st.counters.room_joins);
    let now = st.clock.now_ms();
    let ok = send_json(
        &mut socket,
        json!({
            "type": "joined",
            "room": room,
            "user_id": grant.user_id,
            "expires_at": grant.expires_at_ms / 1000,
            "expires_in_ms": grant.expires_at_ms.saturating_sub(now),
            "server_time": now,
        }),
    )
    .await;
    if ok {
        session(
            &st,
            &room,
            &mut socket,
            &mut grant,
            &mut kicks,
            &mut shutdown,
        )
        .await;
    }
    st.rooms.remove(&room, member_id);
}

/// The joined member's loop: warn, renew, expire, obey kicks.
async fn session(
    st: &AppState,
    room: &str,
    socket: &mut WebSocket,
    grant: &mut RoomGrant,
    kicks: &mut mpsc::UnboundedReceiver<Kick>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) {
    let mut warned = false;
    loop {
        let now = st.clock.now_ms();
        if now >= grant.expires_at_ms {
            let detail = format!(
                "token expired {} ms ago; renew before expiry",
                now.saturating_sub(grant.expires_at_ms)
            );
            return close(st, socket, Kick::TokenExpired, &detail).await;
        }
        let warn_before = i64::try_from(st.faults.read().room_warn_before_ms).unwrap_or(i64::MAX);
        let warn_at = grant.expires_at_ms.saturating_sub(warn_before);
        if !warned && now >= warn_at {
            warned = true;
            bump(&st.counters.room_warnings);
            let in_ms = grant.expires_at_ms.saturating_sub(now);
            if !send_json(socket, json!({ "type": "will_expire", "in_ms": in_ms })).await {
                return;
            }
        }
        let next = if warned { grant.expires_at_ms } else { warn_at };
        // Short naps pick up clock-skew changes made while a member waits.
        let nap = Duration::from_millis(
            u64::try_from(next.saturating_sub(now).clamp(1, 250)).unwrap_or(250),
        );
        tokio::select! {
            msg = socket.recv() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Binary(_))) => String::new(),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        st.rooms.left.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Some(Ok(_)) => continue,
                };
                match serde_json::from_str::<ClientMsg>(&text) {
                    Ok(ClientMsg { kind, token: Some(tok) }) if kind == "renew" => {
                        match verify_room_token(st, &tok).await {
                            Ok(g) if g.room != room || g.user_id != grant.user_id => {
                                bump(&st.counters.room_renew_rejected);
                                let msg = format!("renew token is for user '{}' in room '{}', not '{}' in '{room}'", g.user_id, g.room, grant.user_id);
                                if !send_json(socket, json!({ "type": "error", "code": "renew_rejected", "message": msg })).await { return; }
                            }
                            Ok(g) => {
                                if let Err(kick) = admission(st, &g).await {
                                    return close(st, socket, kick, "not admitted").await;
                                }
                                bump(&st.counters.room_renewals);
                                if g.expires_at_ms > grant.expires_at_ms {
                                    *grant = g;
                                    warned = false;
                                }
                                let now = st.clock.now_ms();
                                let reply = json!({ "type": "renewed", "expires_at": grant.expires_at_ms / 1000, "expires_in_ms": grant.expires_at_ms.saturating_sub(now), "server_time": now });
                                if !send_json(socket, reply).await { return; }
                            }
                            Err(msg) => {
                                bump(&st.counters.room_renew_rejected);
                                if !send_json(socket, json!({ "type": "error", "code": "renew_rejected", "message": msg })).await { return; }
                            }
                        }
                    }
                    Ok(ClientMsg { kind, .. }) if kind == "ping" => {
                        if !send_json(socket, json!({ "type": "pong", "server_time": st.clock.now_ms() })).await { return; }
                    }
                    Ok(ClientMsg { kind, .. }) if kind == "leave" => {
                        st.rooms.left.fetch_add(1, Ordering::Relaxed);
                        let _ = socket.send(Message::Close(Some(CloseFrame { code: 1000, reason: "left".into() }))).await;
                        return;
                    }
                    _ => {
                        let msg = "expected {\"type\":\"renew\",\"token\":…}, {\"type\":\"ping\"} or {\"type\":\"leave\"}";
                        if !send_json(socket, json!({ "type": "error", "code": "bad_message", "message": msg })).await { return; }
                    }
                }
            }
            kick = kicks.recv() => {
                if let Some(kick) = kick {
                    let detail = match kick {
                        Kick::Banned => format!("user '{}' was banned", grant.user_id),
                        Kick::StreamEnded => format!("stream '{room}' has ended"),
                        _ => String::new(),
                    };
                    return close(st, socket, kick, &detail).await;
                }
            }
            _ = shutdown.changed() => {
                return close(st, socket, Kick::Shutdown, "the server is stopping").await;
            }
            _ = tokio::time::sleep(nap) => {}
        }
    }
}
