//! Agora token builders with the official `RtcTokenBuilder2` / `RtmTokenBuilder2` /
//! `ChatTokenBuilder2` / `FpaTokenBuilder` semantics, plus AccessToken `006`.
//!
//! - uid 0 packs as the empty string (any uid may join); other uids as decimal text.
//! - Only [`RtcRole::Publisher`] adds the publish-audio/video/data privileges.
//! - Services are serialized sorted by type (stable, duplicates kept).
//! - Expiry arguments of 007 are seconds after `issue_ts`; `token_expire` bounds the whole
//!   token, `privilege_expire` the individual privileges.
//!
//! Compression uses a small per-thread scratch table and a fixed-Huffman encoder (see
//! `deflate.rs`): creating or resetting a general zlib compressor dominates the cost of a
//! token in naive implementations.

use std::cell::RefCell;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

pub use crate::formats::agora::{
    Rtm2Permission, Service, ServiceKind, rtc_privilege, service_type,
};
use crate::formats::agora::{
    pack_006_message, put_bytes, put_u16, put_u32, sign_006, signing_key_007,
};

use super::{MintError, check_agora_hex32, deflate};

/// RTC role: only publishers get the publish privileges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcRole {
    /// Broadcaster/host: join + publish audio, video and data.
    Publisher,
    /// Audience: join only (takes effect when co-host authentication is enabled).
    Subscriber,
}

/// FPA tokens last 24 h, as in the official `FpaTokenBuilder`.
pub const FPA_TOKEN_EXPIRE_SECS: u32 = 24 * 3600;

/// The packed uid: `""` for 0, else its decimal text.
pub fn uid_string(uid: u32) -> String {
    if uid == 0 {
        String::new()
    } else {
        uid.to_string()
    }
}

/// A random salt in `1..=99_999_999`, as the official builders draw it, from the OS CSPRNG.
pub fn random_salt() -> u32 {
    rand::rngs::OsRng.gen_range(1..=99_999_999)
}

fn too_long((field, len): (&'static str, usize)) -> MintError {
    MintError::TooLong {
        field,
        len,
        max: usize::from(u16::MAX),
    }
}

struct Scratch {
    table: [u32; deflate::TABLE_SIZE],
    info: Vec<u8>,
    payload: Vec<u8>,
    zipped: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch {
        table: [u32::MAX; deflate::TABLE_SIZE],
        info: Vec::with_capacity(256),
        payload: Vec::with_capacity(320),
        zipped: Vec::with_capacity(320),
    });
}

/// Builds an AccessToken2 from explicit parts: the general form behind every builder.
///
/// # Errors
/// [`MintError::AgoraCredential`] unless app id and certificate are 32 hex characters,
/// [`MintError::NoServices`], [`MintError::TooLong`] for strings over 65535 bytes.
///
/// # Example
/// ```
/// use tokenkeeper::mint::agora::{build_access_token2, Service, ServiceKind};
/// let mut rtm = Service::new(ServiceKind::Rtm { user_id: "alice".into() });
/// rtm.add_privilege(1, 600);
/// let token = build_access_token2("970CA35de60c44645bbae8a215061b33",
///     "5CFd2fd1755d40ecb72977518be15d3b", 1111111, 600, 1, &[rtm]).unwrap();
/// assert!(token.starts_with("007"));
/// ```
pub fn build_access_token2(
    app_id: &str,
    app_certificate: &str,
    issue_ts: u32,
    expire: u32,
    salt: u32,
    services: &[Service],
) -> Result<String, MintError> {
    check_agora_hex32(app_id, "app id")?;
    check_agora_hex32(app_certificate, "app certificate")?;
    if services.is_empty() {
        return Err(MintError::NoServices);
    }
    let count =
        u16::try_from(services.len()).map_err(|_| too_long(("services", services.len())))?;
    SCRATCH.with(|s| {
        let s = &mut *s.borrow_mut();
        s.info.clear();
        put_bytes(&mut s.info, app_id.as_bytes(), "app_id").map_err(too_long)?;
        put_u32(&mut s.info, issue_ts);
        put_u32(&mut s.info, expire);
        put_u32(&mut s.info, salt);
        put_u16(&mut s.info, count);
        if services.is_sorted_by_key(|x| x.kind.service_type()) {
            for svc in services {
                svc.pack_into(&mut s.info).map_err(too_long)?;
            }
        } else {
            let mut sorted: Vec<&Service> = services.iter().collect();
            sorted.sort_by_key(|x| x.kind.service_type());
            for svc in sorted {
                svc.pack_into(&mut s.info).map_err(too_long)?;
            }
        }
        let key = signing_key_007(app_certificate.as_bytes(), issue_ts, salt);
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
        mac.update(&s.info);
        let signature = mac.finalize().into_bytes();
        s.payload.clear();
        put_bytes(&mut s.payload, &signature, "signature").map_err(too_long)?;
        s.payload.extend_from_slice(&s.info);
        deflate::zlib_compress(&s.payload, &mut s.zipped, &mut s.table);
        let mut out = String::with_capacity(3 + s.zipped.len().div_ceil(3) * 4);
        out.push_str("007");
        STANDARD.encode_string(&s.zipped, &mut out);
        Ok(out)
    })
}

fn rtc_service(channel: &str, account: &str, role: RtcRole, privilege_expire: u32) -> Service {
    let mut svc = Service::new(ServiceKind::Rtc {
        channel_name: channel.to_owned(),
        uid: account.to_owned(),
    });
    svc.add_privilege(rtc_privilege::JOIN_CHANNEL, privilege_expire);
    if role == RtcRole::Publisher {
        svc.add_privilege(rtc_privilege::PUBLISH_AUDIO_STREAM, privilege_expire);
        svc.add_privilege(rtc_privilege::PUBLISH_VIDEO_STREAM, privilege_expire);
        svc.add_privilege(rtc_privilege::PUBLISH_DATA_STREAM, privilege_expire);
    }
    svc
}

/// `RtcTokenBuilder2.buildTokenWithUid`: RTC token for a numeric uid (0 = any uid).
///
/// `token_expire` and `privilege_expire` are seconds after `issue_ts`.
///
/// # Errors
/// See [`build_access_token2`].
#[allow(clippy::too_many_arguments)]
pub fn build_rtc_token_with_uid(
    app_id: &str,
    app_certificate: &str,
    channel: &str,
    uid: u32,
    role: RtcRole,
    token_expire: u32,
    privilege_expire: u32,
    issue_ts: u32,
    salt: u32,
) -> Result<String, MintError> {
    build_rtc_token_with_account(
        app_id,
        app_certificate,
        channel,
        &uid_string(uid),
        role,
        token_expire,
        privilege_expire,
        issue_ts,
        salt,
    )
}

/// `RtcTokenBuilder2.buildTokenWithUserAccount`: RTC token for a string account.
///
/// # Errors
/// See [`build_access_token2`].
#[allow(clippy::too_many_arguments)]
pub fn build_rtc_token_with_account(
    app_id: &str,
    app_certificate: &str,
    channel: &str,
    account: &str,
    role: RtcRole,
    token_expire: u32,
    privilege_expire: u32,
    issue_ts: u32,
    salt: u32,
) -> Result<String, MintError> {
    let svc = rtc_service(channel, account, role, privilege_expire);
    build_access_token2(
        app_id,
        app_certificate,
        issue_ts,
        token_expire,
        salt,
        &[svc],
    )
}

/// [`build_rtc_token_with_uid`] with `issue_ts = now_unix` and a random salt.
///
/// # Errors
/// See [`build_access_token2`].
#[allow(clippy::too_many_arguments)]
pub fn build_rtc_token_with_uid_now(
    app_id: &str,
    app_certificate: &str,
    channel: &str,
    uid: u32,
    role: RtcRole,
    token_expire: u32,
    privilege_expire: u32,
    now_unix: u32,
) -> Result<String, MintError> {
    build_rtc_token_with_uid(
        app_id,
        app_certificate,
        channel,
        uid,
        role,
        token_expire,
        privilege_expire,
        now_unix,
        random_salt(),
    )
}

/// [`build_rtc_token_with_account`] with `issue_ts = now_unix` and a random salt.
///
/// # Errors
/// See [`build_access_token2`].
#[allow(clippy::too_many_arguments)]
pub fn build_rtc_token_with_account_now(
    app_id: &str,
    app_certificate: &str,
    channel: &str,
    account: &str,
    role: RtcRole,
    token_expire: u32,
    privilege_expire: u32,
    now_unix: u32,
) -> Result<String, MintError> {
    build_rtc_token_with_account(
        app_id,
        app_certificate,
        channel,
        account,
        role,
        token_expire,
        privilege_expire,
        now_unix,
        random_salt(),
    )
}

/// Per-privilege expiries (seconds after `issue_ts`) for the `...AndPrivilege` builders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtcPrivilegeExpires {
    /// Join channel.
    pub join_channel: u32,
    /// Publish audio.
    pub publish_audio: u32,
    /// Publish video.
    pub publish_video: u32,
    /// Publish data streams.
    pub publish_data: u32,
}

/// `RtcTokenBuilder2.buildTokenWithUserAccountAndPrivilege` (and, with
/// [`uid_string`], `...WithUidAndPrivilege`): all four RTC privileges with their own
/// expiries.
///
/// # Errors
/// See [`build_access_token2`].
#[allow(clippy::too_many_arguments)]
pub fn build_rtc_token_with_account_and_privilege(
    app_id: &str,
    app_certificate: &str,
    channel: &str,
    account: &str,
    token_expire: u32,
    privileges: RtcPrivilegeExpires,
    issue_ts: u32,
    salt: u32,
) -> Result<String, MintError> {
    let mut svc = Service::new(ServiceKind::Rtc {
        channel_name: channel.to_owned(),
        uid: account.to_owned(),
    });
    svc.add_privilege(rtc_privilege::JOIN_CHANNEL, privileges.join_channel)
        .add_privilege(
            rtc_privilege::PUBLISH_AUDIO_STREAM,
            privileges.publish_audio,
        )
        .add_privilege(
            rtc_privilege::PUBLISH_VIDEO_STREAM,
            privileges.publish_video,
        )
        .add_privilege(rtc_privilege::PUBLISH_DATA_STREAM, privileges.publish_data);
    build_access_token2(
        app_id,
        app_certificate,
        issue_ts,
        token_expire,
        salt,
        &[svc],
    )
}

/// `RtcTokenBuilder2.buildTokenWithUidAndPrivilege`.
///
/// # Errors
/// See [`build_access_token2`].
#[allow(clippy::too_many_arguments)]
pub fn build_rtc_token_with_uid_and_privilege(
    app_id: &str,
    app_certificate: &str,
    channel: &str,
    uid: u32,
    token_expire: u32,
    privileges: RtcPrivilegeExpires,
    issue_ts: u32,
    salt: u32,
) -> Result<String, MintError> {
    build_rtc_token_with_account_and_privilege(
        app_id,
        app_certificate,
        channel,
        &uid_string(uid),
        token_expire,
        privileges,
        issue_ts,
        salt,
    )
}

/// `RtcTokenBuilder2.buildTokenWithRtm`: RTC service for `account` plus an RTM login for
/// the same account lasting `token_expire`.
///
/// # Errors
/// See [`build_access_token2`].
#[allow(clippy::too_many_arguments)]
pub fn build_rtc_token_with_rtm(
    app_id: &str,
    app_certificate: &str,
    channel: &str,
    account: &str,
    role: RtcRole,
    token_expire: u32,
    privilege_expire: u32,
    issue_ts: u32,
    salt: u32,
) -> Result<String, MintError> {
    let rtc = rtc_service(channel, account, role, privilege_expire);
    let mut rtm = Service::new(ServiceKind::Rtm {
        user_id: account.to_owned(),
    });
    rtm.add_privilege(1, token_expire);
    build_access_token2(
        app_id,
        app_certificate,
        issue_ts,
        token_expire,
        salt,
        &[rtc, rtm],
    )
}

/// `RtcTokenBuilder2.buildTokenWithRtm2`: RTC for `rtc_account` with per-privilege
/// expiries (publish ones only for publishers) plus an RTM login for `rtm_user_id`.
///
/// # Errors
/// See [`build_access_token2`].
#[allow(clippy::too_many_arguments)]
pub fn build_rtc_token_with_rtm2(
    app_id: &str,
    app_certificate: &str,
    channel: &str,
    rtc_account: &str,
    rtc_role: RtcRole,
    rtc_token_expire: u32,
    privileges: RtcPrivilegeExpires,
    rtm_user_id: &str,
    rtm_token_expire: u32,
    issue_ts: u32,
    salt: u32,
) -> Result<String, MintError> {
    let mut rtc = Service::new(ServiceKind::Rtc {
        channel_name: channel.to_owned(),
        uid: rtc_account.to_owned(),
    });
    rtc.add_privilege(rtc_privilege::JOIN_CHANNEL, privileges.join_channel);
    if rtc_role == RtcRole::Publisher {
        rtc.add_privilege(
            rtc_privilege::PUBLISH_AUDIO_STREAM,
            privileges.publish_audio,
        )
        .add_privilege(
            rtc_privilege::PUBLISH_VIDEO_STREAM,
            privileges.publish_video,
        )
        .add_privilege(rtc_privilege::PUBLISH_DATA_STREAM, privileges.publish_data);
    }
    let mut rtm = Service::new(ServiceKind::Rtm {
        user_id: rtm_user_id.to_owned(),
    });
    rtm.add_privilege(1, rtm_token_expire);
    build_access_token2(
        app_id,
        app_certificate,
        issue_ts,
        rtc_token_expire,
        salt,
        &[rtc, rtm],
    )
}

/// `RtmTokenBuilder2.buildToken`: RTM login for `user_id` lasting `expire` seconds.
///
/// # Errors
/// See [`build_access_token2`].
pub fn build_rtm_token(
    app_id: &str,
    app_certificate: &str,
    user_id: &str,
    expire: u32,
    issue_ts: u32,
    salt: u32,
) -> Result<String, MintError> {
    let mut rtm = Service::new(ServiceKind::Rtm {
        user_id: user_id.to_owned(),
    });
    rtm.add_privilege(1, expire);
    build_access_token2(app_id, app_certificate, issue_ts, expire, salt, &[rtm])
}

/// `RtmTokenBuilder2.buildTokenWithPermissions`: an RTM2 service (type 8) with resource
/// permissions and a login privilege.
///
/// As in the official `Rtm2Permissions.add` ("adds or replaces"), an entry with the same
/// resource and permission type as an earlier one replaces it: the last one wins.
///
/// # Errors
/// See [`build_access_token2`].
#[allow(clippy::too_many_arguments)]
pub fn build_rtm_token_with_permissions(
    app_id: &str,
    app_certificate: &str,
    user_id: &str,
    permissions: &[Rtm2Permission],
    expire: u32,
    issue_ts: u32,
    salt: u32,
) -> Result<String, MintError> {
    let mut svc = Service::new(ServiceKind::Rtm2 {
        user_id: user_id.to_owned(),
        permissions: permissions.to_vec(),
    });
    svc.add_privilege(1, expire);
    build_access_token2(app_id, app_certificate, issue_ts, expire, salt, &[svc])
}

/// `ChatTokenBuilder2.buildUserToken`: Chat user privilege for `user_id`.
///
/// # Errors
/// See [`build_access_token2`].
pub fn build_chat_user_token(
    app_id: &str,
    app_certificate: &str,
    user_id: &str,
    expire: u32,
    issue_ts: u32,
    salt: u32,
) -> Result<String, MintError> {
    let mut svc = Service::new(ServiceKind::Chat {
        user_id: user_id.to_owned(),
    });
    svc.add_privilege(1, expire);
    build_access_token2(app_id, app_certificate, issue_ts, expire, salt, &[svc])
}

/// `ChatTokenBuilder2.buildAppToken`: Chat app privilege (empty user id).
///
/// # Errors
/// See [`build_access_token2`].
pub fn build_chat_app_token(
    app_id: &str,
    app_certificate: &str,
    expire: u32,
    issue_ts: u32,
    salt: u32,
) -> Result<String, MintError> {
    let mut svc = Service::new(ServiceKind::Chat {
        user_id: String::new(),
    });
    svc.add_privilege(2, expire);
    build_access_token2(app_id, app_certificate, issue_ts, expire, salt, &[svc])
}

/// `FpaTokenBuilder.buildToken`: FPA login, token and privilege lasting
/// [`FPA_TOKEN_EXPIRE_SECS`].
///
/// # Errors
/// See [`build_access_token2`].
pub fn build_fpa_token(
    app_id: &str,
    app_certificate: &str,
    issue_ts: u32,
    salt: u32,
) -> Result<String, MintError> {
    let mut svc = Service::new(ServiceKind::Fpa);
    svc.add_privilege(1, FPA_TOKEN_EXPIRE_SECS);
    build_access_token2(
        app_id,
        app_certificate,
        issue_ts,
        FPA_TOKEN_EXPIRE_SECS,
        salt,
        &[svc],
    )
}

/// Builds an AccessToken (`006`) from explicit parts. `uid` is the packed uid string
/// (`""` for 0); `ts` is the token expiry (official builders use now + 24 h); privilege
/// expiries are absolute unix seconds (0 = no expiry).
///
/// # Errors
/// [`MintError::AgoraCredential`], [`MintError::TooLong`].
pub fn build_token_006(
    app_id: &str,
    app_certificate: &str,
    channel: &str,
    uid: &str,
    salt: u32,
    ts: u32,
    privileges: &[(u16, u32)],
) -> Result<String, MintError> {
    check_agora_hex32(app_id, "app id")?;
    check_agora_hex32(app_certificate, "app certificate")?;
    let mut sorted = privileges.to_vec();
    sorted.sort_by_key(|p| p.0);
    sorted.dedup_by_key(|p| p.0);
    let message = pack_006_message(salt, ts, &sorted).map_err(too_long)?;
    let signature = sign_006(app_certificate, app_id, channel, uid, &message);
    let mut content = Vec::with_capacity(48 + message.len());
    put_bytes(&mut content, &signature, "signature").map_err(too_long)?;
    put_u32(&mut content, crc32fast::hash(channel.as_bytes()));
    put_u32(&mut content, crc32fast::hash(uid.as_bytes()));
    put_bytes(&mut content, &message, "privileges").map_err(too_long)?;
    let mut out = String::with_capacity(35 + content.len().div_ceil(3) * 4);
    out.push_str("006");
    out.push_str(app_id);
    STANDARD.encode_string(&content, &mut out);
    Ok(out)
}

/// `RtcTokenBuilder.buildTokenWithUid` of the 006 generation: join until
/// `privilege_expired_ts` (absolute; 0 = no expiry), plus publish privileges for
/// publishers; `ts` is the token expiry.
///
/// # Errors
/// See [`build_token_006`].
#[allow(clippy::too_many_arguments)]
pub fn build_rtc_token_006_with_uid(
    app_id: &str,
    app_certificate: &str,
    channel: &str,
    uid: u32,
    role: RtcRole,
    privilege_expired_ts: u32,
    salt: u32,
    ts: u32,
) -> Result<String, MintError> {
    let mut p = vec![(1, privilege_expired_ts)];
    if role == RtcRole::Publisher {
        p.extend([
            (2, privilege_expired_ts),
            (3, privilege_expired_ts),
            (4, privilege_expired_ts),
        ]);
    }
    build_token_006(
        app_id,
        app_certificate,
        channel,
        &uid_string(uid),
        salt,
        ts,
        &p,
    )
}

/// Builds a token from a JSON spec shaped like `inputs` in the shared Agora vector file.
///
/// 007: `{"app_id", "app_certificate", "issue_ts", "salt", "expire",
/// "services_in_insertion_order": [{"type", "privileges": {"id": secs}, ...fields}]}` where
/// fields are `channel_name` + `uid_packed`/`uid_input` (RTC), `user_id` (RTM, Chat, RTM2
/// with `permissions: [[resource, permission, [names]]]`), `channel_name` +
/// `account_packed`/`account_input` (Streaming, FCDN), `room_uuid`, `user_uuid`, `role`
/// (APaaS). A numeric uid/account of 0 packs as `""`.
///
/// 006 (recognised by `ts` and `channel_name` at top level): `{"app_id",
/// "app_certificate", "channel_name", "uid_packed"|"uid_input", "salt", "ts",
/// "privileges": {"id": absolute_ts}}`.
///
/// # Errors
/// [`MintError::Spec`] naming the missing or malformed field, or any builder error.
pub fn build_from_spec(spec: &serde_json::Value) -> Result<String, MintError> {
    use serde_json::Value;
    let bad = |detail: String| MintError::Spec { detail };
    let obj = spec
        .as_object()
        .ok_or_else(|| bad("the spec must be a JSON object".into()))?;
    let text = |o: &serde_json::Map<String, Value>, k: &str| -> Result<String, MintError> {
        o.get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| bad(format!("`{k}` must be a string")))
    };
    let num = |o: &serde_json::Map<String, Value>, k: &str| -> Result<u32, MintError> {
        o.get(k)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad(format!("`{k}` must be an integer from 0 to 4294967295")))
    };
    // A packed id: the `*_packed` string when given, else the `*_input` (integer 0 → "").
    let packed = |o: &serde_json::Map<String, Value>, base: &str| -> Result<String, MintError> {
        if let Some(s) = o.get(&format!("{base}_packed")).and_then(Value::as_str) {
            return Ok(s.to_owned());
        }
        match o.get(&format!("{base}_input")).or_else(|| o.get(base)) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(uid_string)
                .ok_or_else(|| bad(format!("`{base}_input` must be a u32 or a string"))),
            Some(Value::Null) | None => Ok(String::new()),
            _ => Err(bad(format!("`{base}_input` must be a u32 or a string"))),
        }
    };
    let privileges = |o: &serde_json::Map<String, Value>| -> Result<Vec<(u16, u32)>, MintError> {
        let m = o
            .get("privileges")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("`privileges` must be an object of id → seconds".into()))?;
        m.iter()
            .map(|(k, v)| {
                let id = k
                    .parse::<u16>()
                    .map_err(|_| bad(format!("privilege id `{k}` must be an integer 0..65535")))?;
                let e = v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| bad(format!("privilege `{k}` must map to a u32")))?;
                Ok((id, e))
            })
            .collect()
    };
    let app_id = text(obj, "app_id")?;
    let cert = text(obj, "app_certificate")?;
    if obj.contains_key("ts") && obj.contains_key("channel_name") {
        let uid = packed(obj, "uid")?;
        return build_token_006(
            &app_id,
            &cert,
            &text(obj, "channel_name")?,
            &uid,
            num(obj, "salt")?,
            num(obj, "ts")?,
            &privileges(obj)?,
        );
    }
    let list = obj
        .get("services_in_insertion_order")
        .or_else(|| obj.get("services"))
        .and_then(Value::as_array)
        .ok_or_else(|| bad("`services_in_insertion_order` must be a list of services".into()))?;
    let mut services = Vec::with_capacity(list.len());
    for s in list {
        let o = s
            .as_object()
            .ok_or_else(|| bad("each service must be an object".into()))?;
        let t = o
            .get("type")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("each service needs a numeric `type`".into()))?;
        let opt_text = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let kind = match t {
            1 => ServiceKind::Rtc {
                channel_name: opt_text("channel_name"),
                uid: packed(o, "uid")?,
            },
            2 => ServiceKind::Rtm {
                user_id: opt_text("user_id"),
            },
            3 => ServiceKind::Streaming {
                channel_name: opt_text("channel_name"),
                account: packed(o, "account")?,
            },
            4 => ServiceKind::Fpa,
            5 => ServiceKind::Chat {
                user_id: opt_text("user_id"),
            },
            6 => ServiceKind::Fcdn {
                channel_name: opt_text("channel_name"),
                account: packed(o, "account")?,
            },
            7 => ServiceKind::Apaas {
                room_uuid: opt_text("room_uuid"),
                user_uuid: opt_text("user_uuid"),
                role: o
                    .get("role")
                    .map_or(Some(-1), |r| r.as_i64().and_then(|r| i16::try_from(r).ok()))
                    .ok_or_else(|| bad("APaaS `role` must be an i16".into()))?,
            },
            8 => {
                let mut permissions = Vec::new();
                if let Some(list) = o.get("permissions").and_then(Value::as_array) {
                    for p in list {
                        let parse = || -> Option<Rtm2Permission> {
                            let a = p.as_array()?;
                            Some(Rtm2Permission {
                                resource: u16::try_from(a.first()?.as_u64()?).ok()?,
                                permission: u16::try_from(a.get(1)?.as_u64()?).ok()?,
                                resources: a
                                    .get(2)?
                                    .as_array()?
                                    .iter()
                                    .map(|r| r.as_str().map(str::to_owned))
                                    .collect::<Option<Vec<_>>>()?,
                            })
                        };
                        permissions.push(parse().ok_or_else(|| {
                            bad("RTM2 `permissions` entries must be [resource, permission, [names]]".into())
                        })?);
                    }
                }
                ServiceKind::Rtm2 {
                    user_id: opt_text("user_id"),
                    permissions,
                }
            }
            other => {
                return Err(bad(format!(
                    "service type {other} is not one of 1 rtc, 2 rtm, 3 streaming, 4 fpa, 5 chat, 6 fcdn, 7 apaas, 8 rtm2"
                )));
            }
        };
        let mut svc = Service::new(kind);
        for (id, e) in privileges(o)? {
            svc.add_privilege(id, e);
        }
        services.push(svc);
    }
    build_access_token2(
        &app_id,
        &cert,
        num(obj, "issue_ts")?,
        num(obj, "expire")?,
        num(obj, "salt")?,
        &services,
    )
}
