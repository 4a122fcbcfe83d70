//! Admin and fault injection: `/admin/...`, guarded by `Authorization: Bearer <admin key>`.
//!
//! The same operations are available in-process through [`AdminHandle`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::error::RawBody;
use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::random_string;
use crate::db::{AuditRow, StreamRow, UserRow};
use crate::error::{ApiError, parse_json};
use crate::state::{AppState, Faults, FaultsUpdate, Shared, Stream, User, sha256_hex};

/// A created user and its API key (shown once; only its hash is stored).
#[derive(Clone, Serialize)]
pub struct CreatedUser {
    /// User id (string).
    pub id: String,
    /// Numeric uid (Agora).
    pub uid: u32,
    /// Display name.
    pub name: String,
    /// Bearer credential for the RTC token endpoint.
    pub api_key: String,
}

impl std::fmt::Debug for CreatedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedUser")
            .field("id", &self.id)
            .field("uid", &self.uid)
            .field("name", &self.name)
            .field("api_key", &crate::config::redact(&self.api_key))
            .finish()
    }
}

/// `POST /admin/users` body. Every field is optional. `Debug` redacts the key.
#[derive(Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Default: `user-<random>`.
    #[serde(default)]
    pub id: Option<String>,
    /// Default: the next free uid from 1000.
    #[serde(default)]
    pub uid: Option<u32>,
    /// Default: the id.
    #[serde(default)]
    pub name: Option<String>,
    /// Default: random `tku_…`.
    #[serde(default)]
    pub api_key: Option<String>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("id", &self.id)
            .field("uid", &self.uid)
            .field("name", &self.name)
            .field(
                "api_key",
                &self.api_key.as_deref().map(crate::config::redact),
            )
            .finish()
    }
}

/// `POST /admin/streams` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewStream {
    /// Channel / room name.
    pub channel: String,
    /// Owner user id (the only one allowed to publish).
    pub owner: String,
}

/// `POST /admin/oauth/clients` body.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// Client id.
    pub client_id: String,
    /// Secret of a confidential client; absent/`null` with `public: true` for a public client;
    /// absent otherwise: generated and returned.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// A public client (no secret). Default false.
    #[serde(default)]
    pub public: bool,
}

impl std::fmt::Debug for NewClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewClient")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_deref().map(crate::config::redact),
            )
            .field("public", &self.public)
            .finish()
    }
}

/// `POST /admin/oauth/codes` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCode {
    /// The client the code is for (must exist).
    pub client_id: String,
    /// The user who "consented" (must exist and not be banned).
    pub user_id: String,
    /// Default `rtc`.
    #[serde(default)]
    pub scope: Option<String>,
    /// PKCE S256 challenge (base64url of sha256 of the verifier).
    #[serde(default)]
    pub code_challenge: Option<String>,
}

/// `POST /admin/oauth/revoke` body: both absent revokes every live refresh token.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeFilter {
    /// Only this user's tokens.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Only this client's tokens.
    #[serde(default)]
    pub client_id: Option<String>,
}

/// In-process admin operations (what the `/admin` routes call). Cheap to clone.
#[derive(Clone)]
pub struct AdminHandle {
    pub(crate) st: Shared,
}

impl std::fmt::Debug for AdminHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminHandle").finish_non_exhaustive()
    }
}

fn db_err(e: crate::db::DbError) -> ApiError {
    tracing::error!(error = %e, "admin database error");
    ApiError::internal("database error; see the server log")
}

impl AdminHandle {
    /// Creates a user. Errors: `409 user_exists` for a taken id or uid, `400` for a bad id.
    pub async fn create_user(&self, new: NewUser) -> Result<CreatedUser, ApiError> {
        let st = self.st.clone();
        tokio::task::spawn_blocking(move || create_user(&st, new))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
    }

    /// Creates (or restarts) a live stream owned by `owner`.
    pub async fn create_stream(&self, new: NewStream) -> Result<Value, ApiError> {
        let st = self.st.clone();
        tokio::task::spawn_blocking(move || create_stream(&st, new))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
    }

    /// Bans (or unbans) a user; a ban kicks their room connections (`banned`).
    pub async fn set_banned(&self, user_id: &str, banned: bool) -> Result<Value, ApiError> {
        let st = self.st.clone();
        let id = user_id.to_owned();
        tokio::task::spawn_blocking(move || set_banned(&st, &id, banned))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
    }

    /// Ends a stream: no more tokens for it, its room members are kicked (`stream_ended`).
    pub async fn end_stream(&self, channel: &str) -> Result<Value, ApiError> {
        let st = self.st.clone();
        let ch = channel.to_owned();
        tokio::task::spawn_blocking(move || end_stream(&st, &ch))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
    }

    /// The current faults and tunables.
    pub fn faults(&self) -> Faults {
        self.st.faults()
    }

    /// Applies a partial update of the faults; returns the result.
    pub fn update_faults(&self, update: FaultsUpdate) -> Result<Faults, ApiError> {
        update_faults(&self.st, update)
    }

    /// Registers an OAuth client; returns `{client_id, client_secret|null}`.
    pub async fn create_oauth_client(&self, new: NewClient) -> Result<Value, ApiError> {
        let st = self.st.clone();
        tokio::task::spawn_blocking(move || create_client(&st, new))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
    }

    /// Issues an authorization code (stands in for the browser consent step).
    pub async fn issue_authorization_code(&self, new: NewCode) -> Result<String, ApiError> {
        let st = self.st.clone();
        tokio::task::spawn_blocking(move || issue_code(&st, new))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
    }

    /// Revokes live refresh tokens; returns how many.
    pub async fn revoke_refresh_tokens(&self, filter: RevokeFilter) -> Result<usize, ApiError> {
        let st = self.st.clone();
        tokio::task::spawn_blocking(move || {
            crate::oauth::revoke(&st, filter.user_id.as_deref(), filter.client_id.as_deref())
                .map_err(db_err)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
    }

    /// Counters (the JSON of `GET /admin/stats`).
    pub fn stats(&self) -> Value {
        stats(&self.st)
    }

    /// The newest `limit` audit rows (waits for queued rows to be written first).
    pub async fn audit(&self, limit: u32) -> Result<Vec<AuditRow>, ApiError> {
        self.st.flush_audit().await;
        let st = self.st.clone();
        tokio::task::spawn_blocking(move || crate::db::read_audit(&st.db, limit).map_err(db_err))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
    }
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
}

fn create_user(st: &AppState, new: NewUser) -> Result<CreatedUser, ApiError> {
    let id = new
        .id
        .unwrap_or_else(|| format!("user-{}", random_string(8).to_lowercase()));
    if !valid_id(&id) {
        return Err(ApiError::bad_request(
            "invalid_user_id",
            "user id must be 1-64 characters of A-Z a-z 0-9 - _ . @",
        ));
    }
    let api_key = new
        .api_key
        .unwrap_or_else(|| format!("tku_{}", random_string(40)));
    if api_key.len() < 8 || api_key.contains('.') || api_key.contains(char::is_whitespace) {
        return Err(ApiError::bad_request(
            "invalid_api_key",
            "api_key must be at least 8 characters without dots or whitespace",
        ));
    }
    let key_hash = sha256_hex(&api_key);
    // The write lock is held across the insert so concurrent creations cannot race for a uid.
    let mut dir = st.dir.write();
    if dir.users.contains_key(&id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "user_exists",
            format!("user '{id}' already exists"),
        ));
    }
    if dir.keys.contains_key(&key_hash) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "api_key_taken",
            "that api_key belongs to another user",
        ));
    }
    let uid = match new.uid {
        Some(u) if dir.uids.contains_key(&u) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "uid_taken",
                format!("uid {u} belongs to another user"),
            ));
        }
        Some(u) => u,
        None => (1000u32..).find(|u| !dir.uids.contains_key(u)).unwrap_or(0),
    };
    let name = new.name.unwrap_or_else(|| id.clone());
    let row = UserRow {
        id: id.clone(),
        uid,
        name: name.clone(),
        key_hash: key_hash.clone(),
        banned: false,
    };
    st.db.insert_user(&row, st.clock.now_ms()).map_err(db_err)?;
    dir.users.insert(
        id.clone(),
        User {
            id: id.clone(),
            uid,
            banned: false,
        },
    );
    dir.keys.insert(key_hash, id.clone());
    dir.uids.insert(uid, id.clone());
    Ok(CreatedUser {
        id,
        uid,
        name,
        api_key,
    })
}

fn create_stream(st: &AppState, new: NewStream) -> Result<Value, ApiError> {
    if !crate::rtc::valid_channel(&new.channel) {
        return Err(ApiError::bad_request(
            "invalid_channel",
            "channel must be 1-64 bytes without whitespace or control characters",
        ));
    }
    let mut dir = st.dir.write();
    if !dir.users.contains_key(&new.owner) {
        return Err(ApiError::not_found(
            "no_such_user",
            format!("owner '{}' does not exist", new.owner),
        ));
    }
    let row = StreamRow {
        channel: new.channel.clone(),
        owner: new.owner.clone(),
        live: true,
    };
    st.db
        .upsert_stream(&row, st.clock.now_ms())
        .map_err(db_err)?;
    dir.streams.insert(
        new.channel.clone(),
        Stream {
            owner: new.owner.clone(),
            live: true,
        },
    );
    Ok(json!({ "channel": new.channel, "owner": new.owner, "live": true }))
}

fn set_banned(st: &AppState, user_id: &str, banned: bool) -> Result<Value, ApiError> {
    {
        let mut dir = st.dir.write();
        let user = dir.users.get_mut(user_id).ok_or_else(|| {
            ApiError::not_found("no_such_user", format!("user '{user_id}' does not exist"))
        })?;
        st.db.set_banned(user_id, banned).map_err(db_err)?;
        user.banned = banned;
    }
    let kicked = if banned {
        st.rooms.kick_user(user_id)
    } else {
        0
    };
    Ok(json!({ "user_id": user_id, "banned": banned, "kicked": kicked }))
}

fn end_stream(st: &AppState, channel: &str) -> Result<Value, ApiError> {
    {
        let mut dir = st.dir.write();
        let stream = dir.streams.get_mut(channel).ok_or_else(|| {
            ApiError::not_found("stream_not_found", format!("no stream named '{channel}'"))
        })?;
        st.db
            .end_stream(channel, st.clock.now_ms())
            .map_err(db_err)?;
        stream.live = false;
    }
    let kicked = st.rooms.kick_room(channel);
    Ok(json!({ "channel": channel, "live": false, "kicked": kicked }))
}

fn update_faults(st: &AppState, u: FaultsUpdate) -> Result<Faults, ApiError> {
    if let Some(r) = u.error_rate {
        if !(0.0..=1.0).contains(&r) {
            return Err(ApiError::bad_request(
                "invalid_error_rate",
                "error_rate must be within 0..=1",
            ));
        }
    }
    if u.token_ttl_secs
        .is_some_and(|t| t == 0 || t > st.config.max_token_ttl.as_secs())
    {
        return Err(ApiError::bad_request(
            "invalid_ttl",
            format!(
                "token_ttl_secs must be within 1..={}",
                st.config.max_token_ttl.as_secs()
            ),
        ));
    }
    if let Some(Some(rl)) = u.rate_limit {
        if !rl.per_sec.is_finite() || rl.per_sec <= 0.0 || rl.burst == 0 {
            return Err(ApiError::bad_request(
                "invalid_rate_limit",
                "rate_limit needs per_sec > 0 and burst >= 1 (or null to turn it off)",
            ));
        }
    }
    if u.latency_ms.is_some_and(|l| l > 60_000) {
        return Err(ApiError::bad_request(
            "invalid_latency",
            "latency_ms must be at most 60000",
        ));
    }
    let mut f = st.faults.write();
    if let Some(v) = u.error_rate {
        f.error_rate = v;
    }
    if let Some(v) = u.latency_ms {
        f.latency_ms = v;
    }
    if let Some(v) = u.clock_skew_ms {
        f.clock_skew_ms = v;
        st.clock.set_skew_ms(v);
    }
    if let Some(v) = u.token_ttl_secs {
        f.token_ttl_secs = v;
    }
    if let Some(v) = u.room_warn_before_ms {
        f.room_warn_before_ms = v;
    }
    if let Some(v) = u.rate_limit {
        f.rate_limit = v;
    }
    Ok(f.clone())
}

fn create_client(st: &AppState, new: NewClient) -> Result<Value, ApiError> {
    if !valid_id(&new.client_id) {
        return Err(ApiError::bad_request(
            "invalid_client_id",
            "client_id must be 1-64 characters of A-Z a-z 0-9 - _ . @",
        ));
    }
    let secret = match (new.public, new.client_secret) {
        (true, Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_client",
                "a public client has no client_secret",
            ));
        }
        (true, None) => None,
        (false, Some(s)) if !s.is_empty() => Some(s),
        (false, _) => Some(format!("cs_{}", random_string(32))),
    };
    st.db
        .upsert_client(
            &new.client_id,
            secret.as_deref().map(sha256_hex).as_deref(),
            st.clock.now_ms(),
        )
        .map_err(db_err)?;
    Ok(json!({ "client_id": new.client_id, "client_secret": secret }))
}

fn issue_code(st: &AppState, new: NewCode) -> Result<String, ApiError> {
    if st
        .db
        .client_secret_hash(&new.client_id)
        .map_err(db_err)?
        .is_none()
    {
        return Err(ApiError::not_found(
            "no_such_client",
            format!("client '{}' does not exist", new.client_id),
        ));
    }
    match st.dir.read().users.get(&new.user_id) {
        None => {
            return Err(ApiError::not_found(
                "no_such_user",
                format!("user '{}' does not exist", new.user_id),
            ));
        }
        Some(u) if u.banned => {
            return Err(ApiError::forbidden(
                "user_banned",
                format!("user '{}' is banned", new.user_id),
            ));
        }
        Some(_) => {}
    }
    crate::oauth::issue_code(
        st,
        &new.client_id,
        &new.user_id,
        new.scope.as_deref().unwrap_or("rtc"),
        new.code_challenge.as_deref(),
    )
    .map_err(db_err)
}

fn stats(st: &AppState) -> Value {
    let c = &st.counters;
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let (members, left) = st.rooms.members_and_left();
    json!({
        "tokens_issued": g(&c.tokens_issued),
        "refreshes": g(&c.refreshes),
        "denied": g(&c.denied),
        "rate_limited": g(&c.rate_limited),
        "errors_injected": g(&c.errors_injected),
        "bad_requests": g(&c.bad_requests),
        "unauthenticated": g(&c.unauthenticated),
        "oauth": {
            "tokens_issued": g(&c.oauth_tokens_issued),
            "refreshes": g(&c.oauth_refreshes),
            "invalid_client": g(&c.oauth_invalid_client),
            "invalid_grant": g(&c.oauth_invalid_grant),
            "reuse_detected": g(&c.oauth_reuse_detected),
        },
        "room_tokens_issued": g(&c.room_tokens_issued),
        "room": {
            "members": members,
            "joins": g(&c.room_joins),
            "renewals": g(&c.room_renewals),
            "renew_rejected": g(&c.room_renew_rejected),
            "warnings": g(&c.room_warnings),
            "left": left,
        },
        "disconnects": st.rooms.disconnects(),
        "audit_dropped": g(&c.audit_dropped),
        "server_time": st.clock.now_ms(),
    })
}

// ---- HTTP routes ----

/// Middleware: requires `Authorization: Bearer <admin key>`.
pub(crate) async fn require_admin(State(st): State<Shared>, req: Request, next: Next) -> Response {
    match crate::rtc::bearer(req.headers()) {
        Some(k) if k == st.config.secrets.admin_key => next.run(req).await,
        Some(_) => ApiError::unauthenticated("wrong admin key").into_response(),
        None => {
            ApiError::unauthenticated("missing admin key: send `Authorization: Bearer <admin key>`")
                .into_response()
        }
    }
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

pub(crate) async fn post_user(State(st): State<Shared>, RawBody(body): RawBody) -> Response {
    let new: NewUser = if body.is_empty() {
        NewUser::default()
    } else {
        match parse_json(&body) {
            Ok(n) => n,
            Err(e) => return e.into_response(),
        }
    };
    reply(handle(&st).create_user(new).await, StatusCode::CREATED)
}

pub(crate) async fn ban_user(State(st): State<Shared>, Path(id): Path<String>) -> Response {
    reply(handle(&st).set_banned(&id, true).await, StatusCode::OK)
}

pub(crate) async fn unban_user(State(st): State<Shared>, Path(id): Path<String>) -> Response {
    reply(handle(&st).set_banned(&id, false).await, StatusCode::OK)
}

pub(crate) async fn post_stream(State(st): State<Shared>, RawBody(body): RawBody) -> Response {
    match parse_json::<NewStream>(&body) {
        Ok(new) => reply(handle(&st).create_stream(new).await, StatusCode::CREATED),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn end_stream_route(State(st): State<Shared>, Path(ch): Path<String>) -> Response {
    reply(handle(&st).end_stream(&ch).await, StatusCode::OK)
}

pub(crate) async fn get_faults(State(st): State<Shared>) -> Response {
    Json(st.faults()).into_response()
}

pub(crate) async fn put_faults(State(st): State<Shared>, RawBody(body): RawBody) -> Response {
    match parse_json::<FaultsUpdate>(&body) {
        Ok(u) => reply(update_faults(&st, u), StatusCode::OK),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn get_stats(State(st): State<Shared>) -> Response {
    Json(stats(&st)).into_response()
}

pub(crate) async fn post_client(State(st): State<Shared>, RawBody(body): RawBody) -> Response {
    match parse_json::<NewClient>(&body) {
        Ok(new) => reply(
            handle(&st).create_oauth_client(new).await,
            StatusCode::CREATED,
        ),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn post_code(State(st): State<Shared>, RawBody(body): RawBody) -> Response {
    match parse_json::<NewCode>(&body) {
        Ok(new) => {
            let ttl = st.config.oauth_code_ttl.as_secs();
            reply(
                handle(&st)
                    .issue_authorization_code(new)
                    .await
                    .map(|code| json!({ "code": code, "expires_in": ttl })),
                StatusCode::CREATED,
            )
        }
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn post_revoke(State(st): State<Shared>, RawBody(body): RawBody) -> Response {
    let filter = if body.is_empty() {
        RevokeFilter::default()
    } else {
        match parse_json::<RevokeFilter>(&body) {
            Ok(f) => f,
            Err(e) => return e.into_response(),
        }
    };
    reply(
        handle(&st)
            .revoke_refresh_tokens(filter)
            .await
            .map(|n| json!({ "revoked": n })),
        StatusCode::OK,
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    limit: Option<u32>,
}

pub(crate) async fn get_audit(State(st): State<Shared>, Query(q): Query<AuditQuery>) -> Response {
    let limit = q.limit.unwrap_or(100).min(10_000);
    reply(handle(&st).audit(limit).await, StatusCode::OK)
}
