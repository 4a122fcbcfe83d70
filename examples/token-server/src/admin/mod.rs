//! Admin and fault injection: `/admin/...`, guarded by `Authorization: Bearer <admin key>`.
//!
//! The same operations are available in-process through [`AdminHandle`].

mod routes;
mod types;

pub(crate) use routes::*;
pub use types::{CodeOptions, CreatedUser, NewClient, NewCode, NewStream, NewUser, RevokeFilter};

use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::config::random_string;
use crate::error::ApiError;
use crate::secret::sha256_hex;
use crate::state::{AppState, Faults, FaultsUpdate, Shared};
use crate::store::{AuditRow, ClientRec, CodeRec, KickNotice, NewUserRow, UserConflict};

/// Largest clock skew an admin may inject: ten years either way.
const MAX_SKEW_MS: i64 = 10 * 366 * 24 * 3600 * 1000;
/// Largest room warning lead: one day.
const MAX_WARN_MS: u64 = 24 * 3600 * 1000;

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

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
}

impl AdminHandle {
    fn err(&self, e: crate::store::StoreError) -> ApiError {
        self.st.store_error(e)
    }

    /// Creates a user. Errors: `409 user_exists`/`uid_taken`/`api_key_taken`, `400` for a bad
    /// id or key.
    pub async fn create_user(&self, new: NewUser) -> Result<CreatedUser, ApiError> {
        let id = new
            .id
            .unwrap_or_else(|| format!("user-{}", random_string(8).to_lowercase()));
        if !valid_id(&id) {
            return Err(ApiError::bad_request(
                "invalid_user_id",
                "user id must be 1-64 characters of A-Z a-z 0-9 - _ . @",
            ));
        }
        let name = new.name.unwrap_or_else(|| id.clone());
        if name.len() > 128 || name.chars().any(char::is_control) {
            return Err(ApiError::bad_request(
                "invalid_name",
                "name must be at most 128 bytes without control characters",
            ));
        }
        let api_key = new
            .api_key
            .unwrap_or_else(|| format!("tku_{}", random_string(40)));
        if api_key.len() < 8
            || api_key.len() > 256
            || api_key.contains('.')
            || api_key.contains(char::is_whitespace)
        {
            return Err(ApiError::bad_request(
                "invalid_api_key",
                "api_key must be 8-256 characters without dots or whitespace",
            ));
        }
        let row = NewUserRow {
            id: id.clone(),
            uid: new.uid,
            name,
            key_hash: sha256_hex(&api_key),
        };
        match self
            .st
            .store
            .insert_user(row, self.st.clock.now_ms())
            .await
            .map_err(|e| self.err(e))?
        {
            Ok(u) => Ok(CreatedUser {
                id: u.id,
                uid: u.uid,
                name: u.name,
                api_key,
            }),
            Err(UserConflict::Id) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "user_exists",
                format!("user '{id}' already exists"),
            )),
            Err(UserConflict::Uid) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "uid_taken",
                "that uid belongs to another user (or no uid is free)",
            )),
            Err(UserConflict::Key) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "api_key_taken",
                "that api_key belongs to another user",
            )),
        }
    }

    /// Creates (or restarts) a live stream owned by `owner`.
    pub async fn create_stream(&self, new: NewStream) -> Result<Value, ApiError> {
        if !crate::rtc::valid_channel(&new.channel) {
            return Err(ApiError::bad_request(
                "invalid_channel",
                "channel must be 1-64 bytes without whitespace or control characters",
            ));
        }
        let store = &self.st.store;
        if store
            .user(&new.owner)
            .await
            .map_err(|e| self.err(e))?
            .is_none()
        {
            return Err(ApiError::not_found(
                "no_such_user",
                "the stream's owner does not exist; create the user first",
            ));
        }
        store
            .upsert_stream(&new.channel, &new.owner, self.st.clock.now_ms())
            .await
            .map_err(|e| self.err(e))?;
        Ok(json!({ "channel": new.channel, "owner": new.owner, "live": true }))
    }

    /// Bans (or unbans) a user; a ban kicks their room connections (`banned`) on every
    /// instance.
    pub async fn set_banned(&self, user_id: &str, banned: bool) -> Result<Value, ApiError> {
        let found = self
            .st
            .store
            .set_banned(user_id, banned)
            .await
            .map_err(|e| self.err(e))?;
        if !found {
            return Err(ApiError::not_found(
                "no_such_user",
                format!("user '{user_id}' does not exist"),
            ));
        }
        let kicked = if banned {
            self.broadcast("user", user_id).await;
            self.st.rooms.kick_user(user_id)
        } else {
            0
        };
        Ok(json!({ "user_id": user_id, "banned": banned, "kicked": kicked }))
    }

    /// Ends a stream: no more tokens for it, its room members are kicked (`stream_ended`) on
    /// every instance.
    pub async fn end_stream(&self, channel: &str) -> Result<Value, ApiError> {
        let found = self
            .st
            .store
            .end_stream(channel, self.st.clock.now_ms())
            .await
            .map_err(|e| self.err(e))?;
        if !found {
            return Err(ApiError::not_found(
                "stream_not_found",
                format!("no stream named '{channel}'"),
            ));
        }
        self.broadcast("room", channel).await;
        let kicked = self.st.rooms.kick_room(channel);
        Ok(json!({ "channel": channel, "live": false, "kicked": kicked }))
    }

    /// Tells the other instances (a failure is logged: their members are still refused at
    /// their next renewal).
    async fn broadcast(&self, what: &str, id: &str) {
        let notice = KickNotice {
            origin: self.st.instance_id.clone(),
            what: what.into(),
            id: id.into(),
        };
        if let Err(e) = self.st.store.publish_kick(&notice).await {
            tracing::warn!(error = %e, "cannot tell the other instances to kick");
        }
    }

    /// The current faults and tunables.
    pub fn faults(&self) -> Faults {
        self.st.faults()
    }

    /// Applies a partial update of the faults; returns the result.
    pub fn update_faults(&self, update: FaultsUpdate) -> Result<Faults, ApiError> {
        update_faults(&self.st, update)
    }

    /// Registers an OAuth client without redirect URIs; returns
    /// `{client_id, client_secret|null, redirect_uris}`.
    pub async fn create_oauth_client(&self, new: NewClient) -> Result<Value, ApiError> {
        self.register_oauth_client(new, Vec::new()).await
    }

    /// Registers an OAuth client and the redirect URIs its authorization requests may name.
    pub async fn register_oauth_client(
        &self,
        new: NewClient,
        redirect_uris: Vec<String>,
    ) -> Result<Value, ApiError> {
        if !valid_id(&new.client_id) {
            return Err(ApiError::bad_request(
                "invalid_client_id",
                "client_id must be 1-64 characters of A-Z a-z 0-9 - _ . @",
            ));
        }
        if redirect_uris.len() > 16
            || !redirect_uris
                .iter()
                .all(|u| crate::oauth::valid_redirect_uri(u))
        {
            return Err(ApiError::bad_request(
                "invalid_redirect_uri",
                "redirect_uris: at most 16 absolute https://, loopback http:// or private-use scheme URIs without fragments",
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
        let rec = ClientRec {
            client_id: new.client_id.clone(),
            secret_hash: secret.as_deref().map(sha256_hex),
            redirect_uris: redirect_uris.clone(),
        };
        self.st
            .store
            .upsert_client(&rec, self.st.clock.now_ms())
            .await
            .map_err(|e| self.err(e))?;
        Ok(
            json!({ "client_id": new.client_id, "client_secret": secret, "redirect_uris": redirect_uris }),
        )
    }

    /// Issues an authorization code (stands in for the browser consent step).
    pub async fn issue_authorization_code(&self, new: NewCode) -> Result<String, ApiError> {
        self.authorize(new, CodeOptions::default()).await
    }

    /// Issues an authorization code bound to a redirect URI. Errors: unknown client or user,
    /// banned user, bad scope, a public client without `code_challenge` (PKCE is required),
    /// a method other than S256, a redirect URI the client did not register.
    pub async fn authorize(&self, new: NewCode, opts: CodeOptions) -> Result<String, ApiError> {
        let st = &self.st;
        let client = st
            .store
            .client(&new.client_id)
            .await
            .map_err(|e| self.err(e))?
            .ok_or_else(|| {
                ApiError::not_found(
                    "no_such_client",
                    format!("client '{}' does not exist", new.client_id),
                )
            })?;
        match st.store.user(&new.user_id).await.map_err(|e| self.err(e))? {
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
        let scope = new.scope.unwrap_or_else(|| "rtc".into());
        if crate::oauth::parse_scope(&scope).is_none() {
            return Err(ApiError::bad_request(
                "invalid_scope",
                "scope must be space-separated tokens of printable ASCII without quotes or backslashes",
            ));
        }
        if opts
            .code_challenge_method
            .as_deref()
            .is_some_and(|m| m != "S256")
        {
            return Err(ApiError::bad_request(
                "invalid_request",
                "code_challenge_method must be S256 (plain is not accepted)",
            ));
        }
        match &new.code_challenge {
            Some(c) if !crate::oauth::valid_challenge(c) => {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    "code_challenge must be the 43-character base64url (no padding) sha256 of the code_verifier",
                ));
            }
            None if client.secret_hash.is_none() => {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    "public clients must use PKCE: send code_challenge (S256)",
                ));
            }
            _ => {}
        }
        if let Some(uri) = &opts.redirect_uri {
            if !client.redirect_uris.iter().any(|r| r == uri) {
                return Err(ApiError::bad_request(
                    "invalid_redirect_uri",
                    "redirect_uri is not registered for this client (exact match); register it with POST /admin/oauth/clients",
                ));
            }
        }
        let code = format!("ac_{}", random_string(32));
        let exp = st
            .clock
            .now_secs()
            .saturating_add(i64::try_from(st.config.oauth_code_ttl.as_secs()).unwrap_or(i64::MAX));
        let rec = CodeRec {
            client_id: new.client_id,
            user_id: new.user_id,
            scope,
            code_challenge: new.code_challenge,
            redirect_uri: opts.redirect_uri,
            expires_at: exp,
            family_id: None,
        };
        st.store
            .insert_code(&sha256_hex(&code), &rec)
            .await
            .map_err(|e| self.err(e))?;
        Ok(code)
    }

    /// Revokes the live token families (refresh and access tokens) of a user and/or client;
    /// returns how many.
    pub async fn revoke_refresh_tokens(&self, filter: RevokeFilter) -> Result<u64, ApiError> {
        self.st
            .store
            .revoke_families(
                filter.user_id.as_deref(),
                filter.client_id.as_deref(),
                "revoked by admin",
                self.st.clock.now_secs(),
            )
            .await
            .map_err(|e| self.err(e))
    }

    /// Counters of this instance (the JSON of `GET /admin/stats`).
    pub fn stats(&self) -> Value {
        stats(&self.st)
    }

    /// The newest `limit` audit rows (waits for this instance's queued rows first).
    pub async fn audit(&self, limit: u32) -> Result<Vec<AuditRow>, ApiError> {
        self.st.flush_audit().await;
        self.st
            .store
            .read_audit(limit)
            .await
            .map_err(|e| self.err(e))
    }
}

fn update_faults(st: &AppState, u: FaultsUpdate) -> Result<Faults, ApiError> {
    if u.error_rate.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
        return Err(ApiError::bad_request(
            "invalid_error_rate",
            "error_rate must be within 0..=1",
        ));
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
    if u.clock_skew_ms
        .is_some_and(|s| !(-MAX_SKEW_MS..=MAX_SKEW_MS).contains(&s))
    {
        return Err(ApiError::bad_request(
            "invalid_clock_skew",
            format!("clock_skew_ms must be within ±{MAX_SKEW_MS} (ten years)"),
        ));
    }
    if u.room_warn_before_ms.is_some_and(|w| w > MAX_WARN_MS) {
        return Err(ApiError::bad_request(
            "invalid_room_warn_before",
            format!("room_warn_before_ms must be at most {MAX_WARN_MS} (one day)"),
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
        "auth_throttled": g(&c.auth_throttled),
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
        "store_errors": g(&c.store_errors),
        "server_time": st.clock.now_ms(),
    })
}
