//! `POST /api/v1/rtc/token` and `POST /api/v1/rtc/token/refresh`: RTC tokens with access checks.
//!
//! Every call runs, in this order: injected faults, credential (with the failed-authentication
//! throttle), the per-user rate limit (bad requests count too), body validation, ban, uid/user,
//! stream, owner. Only validated values reach the audit log.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock::{iso_millis, iso_secs};
use crate::error::{ApiError, Peer, RawBody, insufficient_scope, parse_json};
use crate::mint::{Grant, Vendor, mint};
use crate::secret::sha256_hex;
use crate::state::{AppState, Shared, bump};
use crate::store::{AuditEntry, Decision, User};

/// Body of the RTC token request.
#[derive(Debug, Deserialize)]
struct RtcTokenRequest {
    vendor: String,
    channel: String,
    /// Agora numeric uid (number or numeric string); must be the caller's own.
    #[serde(default)]
    uid: Option<Value>,
    /// The caller's user id; for Agora it selects an account-based token.
    #[serde(default, alias = "userId")]
    user_id: Option<String>,
    /// `publisher` or `subscriber` (default). `host`/`audience` are accepted too.
    #[serde(default)]
    role: Option<String>,
    /// Requested lifetime; default from `/admin/faults` `token_ttl_secs`.
    #[serde(default, alias = "ttlSecs")]
    ttl_secs: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Issue,
    Refresh,
}

/// `POST /api/v1/rtc/token`.
pub(crate) async fn issue(
    State(st): State<Shared>,
    peer: Peer,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Result<RawBody, ApiError>,
) -> Response {
    handle(&st, peer, &headers, q.as_deref(), body, Kind::Issue).await
}

/// `POST /api/v1/rtc/token/refresh`.
pub(crate) async fn refresh(
    State(st): State<Shared>,
    peer: Peer,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Result<RawBody, ApiError>,
) -> Response {
    handle(&st, peer, &headers, q.as_deref(), body, Kind::Refresh).await
}

/// Audit fields, filled only with values that passed validation.
#[derive(Default)]
struct Trail {
    user_id: Option<String>,
    vendor: Option<&'static str>,
    channel: Option<String>,
    role: Option<&'static str>,
    /// `false` for refusals that are not audited (repeated 429s, throttled authentication).
    skip: bool,
}

async fn handle(
    st: &AppState,
    peer: Peer,
    headers: &HeaderMap,
    q: Option<&str>,
    body: Result<RawBody, ApiError>,
    kind: Kind,
) -> Response {
    let mut trail = Trail::default();
    let result = process(st, peer, headers, q, body, kind, &mut trail).await;
    let (status, outcome, expires_at) = match &result {
        Ok((_, exp)) => (200, "issued".to_owned(), Some(*exp)),
        Err(e) => (e.status.as_u16(), e.code.to_owned(), None),
    };
    if !trail.skip {
        st.audit(AuditEntry {
            ts_ms: st.clock.now_ms(),
            kind: match kind {
                Kind::Issue => "rtc_issue",
                Kind::Refresh => "rtc_refresh",
            },
            user_id: trail.user_id,
            vendor: trail.vendor.map(str::to_owned),
            channel: trail.channel,
            role: trail.role.map(str::to_owned),
            status,
            outcome,
            expires_at,
        });
    }
    match result {
        Ok((resp, _)) => resp,
        Err(e) => {
            match e.status.as_u16() {
                401 => bump(&st.counters.unauthenticated),
                403 | 404 => bump(&st.counters.denied),
                429 => {}
                400..=499 => bump(&st.counters.bad_requests),
                _ => {}
            }
            e.into_response()
        }
    }
}

/// The (percent-decoded) value of `name` in a raw query string.
fn query_param(q: Option<&str>, name: &str) -> Option<String> {
    q?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// Parses `Authorization: Bearer <credential>`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        let t = rest.trim();
        (!t.is_empty()).then_some(t)
    } else {
        None
    }
}

/// Resolves the caller: a user API key, or an OAuth access token (HS256 JWT) issued here whose
/// family is not revoked and whose scope includes `rtc`.
async fn authenticate(st: &AppState, peer: Peer, headers: &HeaderMap) -> Result<User, ApiError> {
    let cred = bearer(headers).ok_or_else(|| {
        ApiError::unauthenticated(
            "missing credential: send `Authorization: Bearer <user api key or OAuth access token>`",
        )
    })?;
    st.check_auth_throttle(peer.0, None).await?;
    match resolve(st, cred).await {
        Ok(user) => Ok(user),
        Err(e) if e.status.as_u16() == 401 => {
            st.note_auth_failure(peer.0, None).await?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

async fn resolve(st: &AppState, cred: &str) -> Result<User, ApiError> {
    let user_id = if cred.matches('.').count() == 2 {
        let claims = crate::jwt::verify_hs256(
            st.config.secrets.oauth_signing_key.as_bytes(),
            cred,
            st.clock.now_secs(),
        )
        .map_err(|e| {
            ApiError::unauthenticated(format!(
                "OAuth access token refused: {e}; refresh it at /oauth/token"
            ))
        })?;
        let family = claims.get("fid").and_then(Value::as_str).ok_or_else(|| {
            ApiError::unauthenticated("OAuth access token has no token family; authorize again")
        })?;
        match st.store.family_revoked(family).await {
            Err(e) => return Err(st.store_error(e)),
            Ok(None) => {
                return Err(ApiError::unauthenticated(
                    "OAuth access token belongs to no known authorization; authorize again",
                ));
            }
            Ok(Some(Some(reason))) => {
                return Err(ApiError::unauthenticated(format!(
                    "OAuth access token was revoked ({reason}); the user must authorize again"
                )));
            }
            Ok(Some(None)) => {}
        }
        let scope = claims.get("scope").and_then(Value::as_str).unwrap_or("");
        if !scope.split(' ').any(|s| s == "rtc") {
            return Err(insufficient_scope("rtc", scope));
        }
        claims
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ApiError::unauthenticated("OAuth access token has no `sub` claim"))?
    } else {
        return match st.store.user_by_key_hash(&sha256_hex(cred)).await {
            Err(e) => Err(st.store_error(e)),
            Ok(Some(u)) => Ok(u),
            Ok(None) => Err(ApiError::unauthenticated(
                "unknown user API key; create the user with POST /admin/users",
            )),
        };
    };
    match st.store.user(&user_id).await {
        Err(e) => Err(st.store_error(e)),
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(ApiError::unauthenticated(format!(
            "user '{user_id}' no longer exists"
        ))),
    }
}

/// Validates a channel/room name: 1–64 bytes, no control characters or whitespace.
pub(crate) fn valid_channel(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.chars().any(|c| c.is_control() || c.is_whitespace())
}

fn parse_role(role: Option<&str>) -> Result<bool, ApiError> {
    match role.map(str::to_ascii_lowercase).as_deref() {
        None | Some("subscriber") | Some("audience") => Ok(false),
        Some("publisher") | Some("host") => Ok(true),
        Some(_) => Err(ApiError::bad_request(
            "unknown_role",
            "unknown role; expected `publisher` or `subscriber`",
        )),
    }
}

fn parse_uid(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Shows a client-supplied value in a message: at most 64 characters.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// The validated request.
struct Checked {
    vendor: Vendor,
    channel: String,
    publisher: bool,
    ttl: u32,
    uid_sent: bool,
    user_id_sent: bool,
}

fn validate(
    st: &AppState,
    body: &[u8],
    user: &User,
    trail: &mut Trail,
) -> Result<Checked, ApiError> {
    let req: RtcTokenRequest = parse_json(body)?;
    let vendor = Vendor::parse(&req.vendor).ok_or_else(|| {
        ApiError::bad_request(
            "unknown_vendor",
            format!(
                "unknown vendor '{}'; expected `agora`, `zego` or `jwt`",
                shown(&req.vendor)
            ),
        )
    })?;
    trail.vendor = Some(vendor.as_str());
    if !valid_channel(&req.channel) {
        return Err(ApiError::bad_request(
            "invalid_channel",
            "channel must be 1-64 bytes without whitespace or control characters",
        ));
    }
    trail.channel = Some(req.channel.clone());
    let publisher = parse_role(req.role.as_deref())?;
    trail.role = Some(if publisher { "publisher" } else { "subscriber" });
    let max_ttl = st.config.max_token_ttl.as_secs();
    let ttl = match req.ttl_secs {
        None => st.faults.read().token_ttl_secs,
        Some(t) if t >= 1 && t <= max_ttl => t,
        Some(t) => {
            return Err(ApiError::bad_request(
                "invalid_ttl",
                format!("ttl_secs {t} is out of range 1..={max_ttl}"),
            ));
        }
    };
    let ttl = u32::try_from(ttl).map_err(|_| {
        ApiError::bad_request(
            "invalid_ttl",
            format!("ttl_secs is out of range 1..={max_ttl}"),
        )
    })?;
    if let Some(v) = &req.uid {
        match parse_uid(v) {
            Some(uid) if uid == user.uid => {}
            Some(uid) => {
                return Err(ApiError::forbidden(
                    "uid_mismatch",
                    format!(
                        "uid {uid} is not yours (you are uid {}); request tokens for your own uid",
                        user.uid
                    ),
                ));
            }
            None => {
                return Err(ApiError::bad_request(
                    "invalid_uid",
                    "uid must be an unsigned 32-bit integer",
                ));
            }
        }
    }
    if let Some(id) = &req.user_id {
        if id != &user.id {
            return Err(ApiError::forbidden(
                "user_mismatch",
                format!(
                    "user_id '{}' is not yours (you are '{}'); request tokens for yourself",
                    shown(id),
                    user.id
                ),
            ));
        }
    }
    Ok(Checked {
        vendor,
        channel: req.channel,
        publisher,
        ttl,
        uid_sent: req.uid.is_some(),
        user_id_sent: req.user_id.is_some(),
    })
}

async fn process(
    st: &AppState,
    peer: Peer,
    headers: &HeaderMap,
    q: Option<&str>,
    body: Result<RawBody, ApiError>,
    kind: Kind,
    trail: &mut Trail,
) -> Result<(Response, i64), ApiError> {
    st.inject_faults().await?;
    let user = authenticate(st, peer, headers).await.inspect_err(|e| {
        trail.skip = e.code == "too_many_failed_attempts";
    })?;
    trail.user_id = Some(user.id.clone());
    let faults = st.faults();
    if let Some(limit) = faults.rate_limit {
        if let Decision::Denied {
            retry_after_secs: retry,
            first,
        } = st.take(&format!("rtc:{}", user.id), limit).await?
        {
            bump(&st.counters.rate_limited);
            trail.skip = !first;
            return Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "too many token requests for user '{}' (limit {}/s, burst {}); retry after {retry} s",
                    user.id, limit.per_sec, limit.burst
                ),
            )
            .with_retry_after(retry));
        }
    }
    let seed_shape = match query_param(q, "shape").as_deref() {
        None | Some("default") => false,
        Some("seed") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "unknown_shape",
                format!(
                    "unknown response shape '{}'; expected `seed` or `default`",
                    shown(other)
                ),
            ));
        }
    };
    // An unreadable or oversized body is refused after the rate limit, like any bad request.
    let RawBody(body) = body?;
    let req = validate(st, &body, &user, trail)?;
    if user.banned {
        return Err(ApiError::forbidden(
            "user_banned",
            format!("user '{}' is banned; no tokens are issued", user.id),
        ));
    }
    match st
        .store
        .stream(&req.channel)
        .await
        .map_err(|e| st.store_error(e))?
    {
        None => {
            return Err(ApiError::not_found(
                "stream_not_found",
                format!(
                    "no stream named '{}'; its owner must start it first",
                    req.channel
                ),
            ));
        }
        Some(s) if !s.live => {
            return Err(ApiError::not_found(
                "stream_ended",
                format!(
                    "stream '{}' has ended; no new tokens are issued for it",
                    req.channel
                ),
            ));
        }
        Some(s) if req.publisher && s.owner != user.id => {
            return Err(ApiError::forbidden(
                "not_owner",
                format!(
                    "only the owner of stream '{}' may publish; request role `subscriber` instead",
                    req.channel
                ),
            ));
        }
        Some(_) => {}
    }

    let now_ms = st.clock.now_ms();
    let grant = Grant {
        channel: &req.channel,
        user_id: &user.id,
        uid: user.uid,
        agora_account: !req.uid_sent && req.user_id_sent,
        publisher: req.publisher,
        ttl_secs: req.ttl,
        now_secs: now_ms.div_euclid(1000),
    };
    let minted = mint(&st.config.secrets, req.vendor, &grant).map_err(|e| {
        tracing::error!(vendor = req.vendor.as_str(), error = %e, "minting failed");
        ApiError::internal(format!("cannot mint a {} token: {e}", req.vendor.as_str()))
    })?;
    bump(&st.counters.tokens_issued);
    if kind == Kind::Refresh {
        bump(&st.counters.refreshes);
    }
    let expires_at = iso_secs(minted.expires_at);
    let expires_in = minted.expires_at.saturating_sub(grant.now_secs);
    let body = if seed_shape {
        json!({ "success": true, "data": { "token": minted.token, "expiresAt": expires_at } })
    } else {
        let app_id = match req.vendor {
            Vendor::Agora => json!(st.config.secrets.agora_app_id),
            Vendor::Zego => json!(st.config.secrets.zego_app_id),
            Vendor::Jwt => Value::Null,
        };
        json!({
            "token": minted.token,
            "vendor": req.vendor.as_str(),
            "appId": app_id,
            "channel": req.channel,
            "uid": user.uid,
            "userId": user.id,
            "role": if req.publisher { "publisher" } else { "subscriber" },
            "issuedAt": iso_secs(minted.issued_at),
            "expiresAt": expires_at,
            "expiresIn": expires_in,
            "serverTime": iso_millis(now_ms),
        })
    };
    Ok((Json(body).into_response(), minted.expires_at))
}
