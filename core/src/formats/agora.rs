//! Agora AccessToken2 (`007`) and AccessToken (`006`): decode without a key, verify with
//! the app certificate, and the byte packing shared with the builders in `mint`.
//!
//! Layout (all integers little-endian, strings as `u16 length + bytes`):
//! - 007: `"007" + base64(zlib(string(signature) + signing_info))`, where `signing_info` is
//!   `string(app_id) u32 issue_ts u32 expire u32 salt u16 n` followed by `n` services, each
//!   `u16 type` + `map<u16,u32> privileges` + a type-specific body. Privilege expiries are
//!   seconds relative to `issue_ts`.
//! - 006: `"006" + app_id + base64(string(signature) u32 crc32(channel) u32 crc32(uid)
//!   string(u32 salt u32 ts map<u16,u32> privileges))`, with absolute expiry timestamps.

use std::fmt;
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{FormatError, MAX_INFLATED_LEN};

type HmacSha256 = Hmac<Sha256>;

const F007: &str = "agora-007";
const F006: &str = "agora-006";

/// Standard base64, accepting tokens with or without `=` padding.
pub(crate) static B64_LENIENT: LazyLock<GeneralPurpose> = LazyLock::new(|| {
    GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
});

/// Service type numbers of AccessToken2 (as in the official `AccessToken2` sources).
pub mod service_type {
    /// RTC (voice/video channel).
    pub const RTC: u16 = 1;
    /// RTM (signalling), login by user id.
    pub const RTM: u16 = 2;
    /// Media push (streaming).
    pub const STREAMING: u16 = 3;
    /// FPA (Fusion Private Access).
    pub const FPA: u16 = 4;
    /// Chat.
    pub const CHAT: u16 = 5;
    /// Fusion CDN.
    pub const FCDN: u16 = 6;
    /// APaaS (Flexible Classroom / education).
    pub const APAAS: u16 = 7;
    /// RTM 2 with resource permissions.
    pub const RTM2: u16 = 8;
}

/// Privilege ids of the RTC service (007 and 006 share 1..=4).
pub mod rtc_privilege {
    /// Join the channel.
    pub const JOIN_CHANNEL: u16 = 1;
    /// Publish audio.
    pub const PUBLISH_AUDIO_STREAM: u16 = 2;
    /// Publish video.
    pub const PUBLISH_VIDEO_STREAM: u16 = 3;
    /// Publish data streams.
    pub const PUBLISH_DATA_STREAM: u16 = 4;
}

/// One RTM2 resource permission: resource type, permission type and resource names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtm2Permission {
    /// 0 message channels, 1 stream channels, 2 group channels, 3 server groups, 4 users.
    pub resource: u16,
    /// 0 read, 1 write.
    pub permission: u16,
    /// Resource names.
    pub resources: Vec<String>,
}

/// The type-specific body of a 007 service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceKind {
    /// RTC (type 1). `uid` is the packed string: empty for uid 0.
    Rtc {
        /// Channel name.
        channel_name: String,
        /// Uid or user account as packed ("" = any uid).
        uid: String,
    },
    /// RTM (type 2).
    Rtm {
        /// RTM user id.
        user_id: String,
    },
    /// Streaming (type 3).
    Streaming {
        /// Channel name.
        channel_name: String,
        /// Account ("" for uid 0).
        account: String,
    },
    /// FPA (type 4), no body.
    Fpa,
    /// Chat (type 5); empty `user_id` for app tokens.
    Chat {
        /// Chat user id.
        user_id: String,
    },
    /// Fusion CDN (type 6).
    Fcdn {
        /// Channel name.
        channel_name: String,
        /// Account ("" for uid 0).
        account: String,
    },
    /// APaaS (type 7).
    Apaas {
        /// Room uuid.
        room_uuid: String,
        /// User uuid.
        user_uuid: String,
        /// Role (-1 when not in a room).
        role: i16,
    },
    /// RTM2 (type 8) with resource permissions.
    Rtm2 {
        /// RTM user id.
        user_id: String,
        /// Permissions. Packed sorted by resource then permission type; when two entries
        /// share both, the later one replaces the earlier (as the official builders do).
        permissions: Vec<Rtm2Permission>,
    },
}

impl ServiceKind {
    /// The service type number.
    pub fn service_type(&self) -> u16 {
        match self {
            Self::Rtc { .. } => service_type::RTC,
            Self::Rtm { .. } => service_type::RTM,
            Self::Streaming { .. } => service_type::STREAMING,
            Self::Fpa => service_type::FPA,
            Self::Chat { .. } => service_type::CHAT,
            Self::Fcdn { .. } => service_type::FCDN,
            Self::Apaas { .. } => service_type::APAAS,
            Self::Rtm2 { .. } => service_type::RTM2,
        }
    }

    /// The lower-case service name used in `inspect --json` (`rtc`, `rtm`, ...).
    pub fn name(&self) -> &'static str {
        service_name(self.service_type()).unwrap_or("unknown")
    }
}

/// Lower-case name of a service type, `None` when unknown.
pub fn service_name(service_type: u16) -> Option<&'static str> {
    Some(match service_type {
        service_type::RTC => "rtc",
        service_type::RTM => "rtm",
        service_type::STREAMING => "streaming",
        service_type::FPA => "fpa",
        service_type::CHAT => "chat",
        service_type::FCDN => "fcdn",
        service_type::APAAS => "apaas",
        service_type::RTM2 => "rtm2",
        _ => return None,
    })
}

/// Name of a 007 privilege id within a service type (`None` if not an official id).
pub fn privilege_name(service_type: u16, id: u16) -> Option<&'static str> {
    Some(match (service_type, id) {
        (service_type::RTC, 1) => "join_channel",
        (service_type::RTC, 2) => "publish_audio_stream",
        (service_type::RTC, 3) => "publish_video_stream",
        (service_type::RTC, 4) => "publish_data_stream",
        (service_type::RTM | service_type::FPA | service_type::RTM2, 1) => "login",
        (service_type::STREAMING, 1) => "publish_mix_stream",
        (service_type::STREAMING, 2) => "publish_raw_stream",
        (service_type::CHAT, 1) => "user",
        (service_type::CHAT, 2) => "app",
        (service_type::FCDN, 1) => "publish",
        (service_type::FCDN, 2) => "play",
        (service_type::APAAS, 1) => "room_user",
        (service_type::APAAS, 2) => "user",
        (service_type::APAAS, 3) => "app",
        _ => return None,
    })
}

/// Name of a 006 privilege id.
pub fn privilege_name_006(id: u16) -> Option<&'static str> {
    Some(match id {
        1 => "join_channel",
        2 => "publish_audio_stream",
        3 => "publish_video_stream",
        4 => "publish_data_stream",
        5 => "publish_audio_cdn",
        6 => "publish_video_cdn",
        7 => "request_publish_audio_stream",
        8 => "request_publish_video_stream",
        9 => "request_publish_data_stream",
        10 => "invite_publish_audio_stream",
        11 => "invite_publish_video_stream",
        12 => "invite_publish_data_stream",
        101 => "administrate_channel",
        1000 => "rtm_login",
        _ => return None,
    })
}

/// One service of a 007 token: privileges (id → seconds after `issue_ts`) and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// `(privilege id, expire seconds relative to issue_ts)`, in token order (ascending id
    /// when built by an official builder).
    pub privileges: Vec<(u16, u32)>,
    /// The service type and its body.
    pub kind: ServiceKind,
}

impl Service {
    /// A service with no privileges yet.
    pub fn new(kind: ServiceKind) -> Self {
        Self {
            privileges: Vec::new(),
            kind,
        }
    }

    /// Adds (or replaces) a privilege, keeping ids in ascending order like the official
    /// builders' sorted maps.
    pub fn add_privilege(&mut self, id: u16, expire: u32) -> &mut Self {
        match self.privileges.binary_search_by_key(&id, |p| p.0) {
            Ok(i) => self.privileges[i].1 = expire,
            Err(i) => self.privileges.insert(i, (id, expire)),
        }
        self
    }

    /// Appends this service's packed bytes. Fails with the field name when a string or a
    /// count exceeds the u16 limit of the format.
    pub fn pack_into(&self, out: &mut Vec<u8>) -> Result<(), (&'static str, usize)> {
        put_u16(out, self.kind.service_type());
        let n = u16::try_from(self.privileges.len())
            .map_err(|_| ("privileges", self.privileges.len()))?;
        put_u16(out, n);
        for &(id, exp) in &self.privileges {
            put_u16(out, id);
            put_u32(out, exp);
        }
        match &self.kind {
            ServiceKind::Rtc { channel_name, uid } => {
                put_str(out, channel_name, "channel_name")?;
                put_str(out, uid, "uid")?;
            }
            ServiceKind::Rtm { user_id } | ServiceKind::Chat { user_id } => {
                put_str(out, user_id, "user_id")?;
            }
            ServiceKind::Streaming {
                channel_name,
                account,
            }
            | ServiceKind::Fcdn {
                channel_name,
                account,
            } => {
                put_str(out, channel_name, "channel_name")?;
                put_str(out, account, "account")?;
            }
            ServiceKind::Fpa => {}
            ServiceKind::Apaas {
                room_uuid,
                user_uuid,
                role,
            } => {
                put_str(out, room_uuid, "room_uuid")?;
                put_str(out, user_uuid, "user_uuid")?;
                out.extend_from_slice(&role.to_le_bytes());
            }
            ServiceKind::Rtm2 {
                user_id,
                permissions,
            } => {
                put_str(out, user_id, "user_id")?;
                pack_rtm2_permissions(out, permissions)?;
            }
        }
        Ok(())
    }
}

/// RTM2 permissions are a map resource → map permission → list, as in the official builders'
/// `Rtm2Permissions.add` ("adds or replaces"): entries are sorted by resource then permission
/// type, and of two entries with the same pair the later one wins.
fn pack_rtm2_permissions(
    out: &mut Vec<u8>,
    perms: &[Rtm2Permission],
) -> Result<(), (&'static str, usize)> {
    let mut sorted: Vec<&Rtm2Permission> = perms.iter().collect();
    // Stable: entries with the same pair stay in insertion order, so the last is the latest.
    sorted.sort_by_key(|p| (p.resource, p.permission));
    sorted.dedup_by(|later, kept| {
        let same = (later.resource, later.permission) == (kept.resource, kept.permission);
        if same {
            *kept = *later;
        }
        same
    });
    let groups: Vec<&[&Rtm2Permission]> =
        sorted.chunk_by(|a, b| a.resource == b.resource).collect();
    put_u16(
        out,
        u16::try_from(groups.len()).map_err(|_| ("permissions", groups.len()))?,
    );
    for g in groups {
        put_u16(out, g[0].resource);
        put_u16(
            out,
            u16::try_from(g.len()).map_err(|_| ("permissions", g.len()))?,
        );
        for p in g {
            put_u16(out, p.permission);
            put_u16(
                out,
                u16::try_from(p.resources.len()).map_err(|_| ("permissions", p.resources.len()))?,
            );
            for r in &p.resources {
                put_str(out, r, "permissions")?;
            }
        }
    }
    Ok(())
}

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_bytes(
    out: &mut Vec<u8>,
    b: &[u8],
    field: &'static str,
) -> Result<(), (&'static str, usize)> {
    let n = u16::try_from(b.len()).map_err(|_| (field, b.len()))?;
    put_u16(out, n);
    out.extend_from_slice(b);
    Ok(())
}
pub(crate) fn put_str(
    out: &mut Vec<u8>,
    s: &str,
    field: &'static str,
) -> Result<(), (&'static str, usize)> {
    put_bytes(out, s.as_bytes(), field)
}

/// Little-endian cursor over a token body.
struct Reader<'a> {
    buf: &'a [u8],
    format: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], FormatError> {
        if self.buf.len() < n {
            return Err(FormatError::Truncated {
                format: self.format,
                field,
            });
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn u16(&mut self, field: &'static str) -> Result<u16, FormatError> {
        let b = self.take(2, field)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, FormatError> {
        let b = self.take(4, field)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], FormatError> {
        let n = self.u16(field)?;
        self.take(usize::from(n), field)
    }
    fn string(&mut self, field: &'static str) -> Result<String, FormatError> {
        let b = self.bytes(field)?;
        String::from_utf8(b.to_vec()).map_err(|_| FormatError::InvalidField {
            format: self.format,
            field,
            detail: "not UTF-8 text (the token is corrupt)".into(),
        })
    }
    fn privileges(&mut self) -> Result<Vec<(u16, u32)>, FormatError> {
        let n = self.u16("privileges")?;
        // Each entry is 6 bytes: refuse counts the remaining bytes cannot hold before
        // allocating.
        if usize::from(n) * 6 > self.buf.len() {
            return Err(FormatError::Truncated {
                format: self.format,
                field: "privileges",
            });
        }
        let mut v = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let id = self.u16("privileges")?;
            let exp = self.u32("privileges")?;
            v.push((id, exp));
        }
        Ok(v)
    }
}

/// A decoded AccessToken2 (`007`).
///
/// `Debug` shows the fields a client may read; the signature and raw bytes are omitted.
#[derive(Clone, PartialEq, Eq)]
pub struct Agora007Token {
    /// The 32-character app id.
    pub app_id: String,
    /// Issue time, unix seconds.
    pub issue_ts: u32,
    /// Token lifetime in seconds after `issue_ts`.
    pub expire: u32,
    /// Random salt chosen by the builder.
    pub salt: u32,
    /// Services in token order (official builders sort them by type).
    pub services: Vec<Service>,
    /// When decoding met a service type this library does not know, its number: decoding
    /// stopped there (as the official parsers do) and later services are not listed. The
    /// signature still covers them, so verification is unaffected.
    pub unknown_service_type: Option<u16>,
    signature: Vec<u8>,
    signing_info: Vec<u8>,
}

impl fmt::Debug for Agora007Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agora007Token")
            .field("app_id", &self.app_id)
            .field("issue_ts", &self.issue_ts)
            .field("expire", &self.expire)
            .field("salt", &self.salt)
            .field("services", &self.services)
            .field("unknown_service_type", &self.unknown_service_type)
            .field(
                "signature",
                &format_args!("<{} bytes>", self.signature.len()),
            )
            .finish()
    }
}

impl Agora007Token {
    /// Absolute expiry of the whole token: `issue_ts + expire` (unix seconds).
    pub fn expire_at(&self) -> i64 {
        i64::from(self.issue_ts) + i64::from(self.expire)
    }

    /// The instant a keeper must treat as expiry: the earliest of the token expiry and
    /// every privilege expiry. A privilege expire of 0 is read as "bounded by the token"
    /// and ignored. Publishing privileges count too: once they lapse the engine stops the
    /// stream, so renewal must happen before.
    pub fn effective_expires_at(&self) -> i64 {
        let issue = i64::from(self.issue_ts);
        self.services
            .iter()
            .flat_map(|s| s.privileges.iter())
            .filter(|p| p.1 != 0)
            .map(|p| issue + i64::from(p.1))
            .fold(self.expire_at(), i64::min)
    }

    /// The decoded fields as JSON, with the field names of `decoded` in the shared vectors
    /// (`version, app_id, issue_ts, expire, expire_at, salt, services[...]`). When decoding
    /// stopped at an unknown service type, `unknown_service_type` is added.
    pub fn to_json(&self) -> Value {
        let issue = i64::from(self.issue_ts);
        let services: Vec<Value> = self
            .services
            .iter()
            .map(|s| {
                let t = s.kind.service_type();
                let privileges: Vec<Value> = s
                    .privileges
                    .iter()
                    .map(|&(id, exp)| {
                        json!({
                            "id": id,
                            "name": privilege_name(t, id).unwrap_or("unknown"),
                            "expire": exp,
                            "expire_at": issue + i64::from(exp),
                        })
                    })
                    .collect();
                let mut o = serde_json::Map::new();
                o.insert("type".into(), json!(t));
                o.insert("name".into(), json!(s.kind.name()));
                match &s.kind {
                    ServiceKind::Rtc { channel_name, uid } => {
                        o.insert("channel_name".into(), json!(channel_name));
                        o.insert("uid".into(), json!(uid));
                    }
                    ServiceKind::Rtm { user_id } | ServiceKind::Chat { user_id } => {
                        o.insert("user_id".into(), json!(user_id));
                    }
                    ServiceKind::Streaming {
                        channel_name,
                        account,
                    }
                    | ServiceKind::Fcdn {
                        channel_name,
                        account,
                    } => {
                        o.insert("channel_name".into(), json!(channel_name));
                        o.insert("account".into(), json!(account));
                    }
                    ServiceKind::Fpa => {}
                    ServiceKind::Apaas {
                        room_uuid,
                        user_uuid,
                        role,
                    } => {
                        o.insert("room_uuid".into(), json!(room_uuid));
                        o.insert("user_uuid".into(), json!(user_uuid));
                        o.insert("role".into(), json!(role));
                    }
                    ServiceKind::Rtm2 {
                        user_id,
                        permissions,
                    } => {
                        o.insert("user_id".into(), json!(user_id));
                        let p: Vec<Value> = permissions
                            .iter()
                            .map(|p| json!([p.resource, p.permission, p.resources]))
                            .collect();
                        o.insert("permissions".into(), Value::Array(p));
                    }
                }
                o.insert("privileges".into(), Value::Array(privileges));
                Value::Object(o)
            })
            .collect();
        let mut v = json!({
            "version": "007",
            "app_id": self.app_id,
            "issue_ts": self.issue_ts,
            "expire": self.expire,
            "expire_at": self.expire_at(),
            "salt": self.salt,
            "services": services,
        });
        if let Some(t) = self.unknown_service_type {
            v["unknown_service_type"] = json!(t);
        }
        v
    }

    /// Checks the signature with the app certificate (32 hex characters).
    ///
    /// # Errors
    /// [`FormatError::InvalidKey`] for a malformed certificate,
    /// [`FormatError::SignatureMismatch`] when it is not the certificate that signed it.
    pub fn verify(&self, app_certificate: &str) -> Result<(), FormatError> {
        check_hex32(app_certificate, "app certificate")?;
        let key = signing_key_007(app_certificate.as_bytes(), self.issue_ts, self.salt);
        let mut mac = HmacSha256::new_from_slice(&key).expect("hmac accepts any key length");
        mac.update(&self.signing_info);
        mac.verify_slice(&self.signature)
            .map_err(|_| FormatError::SignatureMismatch {
                format: F007,
                key_name: "app certificate",
            })
    }
}

/// Checks that `value` is exactly 32 hexadecimal characters (Agora app id / certificate).
pub(crate) fn check_hex32(value: &str, what: &'static str) -> Result<(), FormatError> {
    if value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(FormatError::InvalidKey {
            what,
            detail: format!(
                "expected 32 hexadecimal characters, got {} characters{} (copy it from the Agora console, project settings)",
                value.chars().count(),
                if value.bytes().all(|b| b.is_ascii_hexdigit()) {
                    ""
                } else {
                    " including non-hex ones"
                }
            ),
        })
    }
}

/// The 007 signing key: HMAC(key = u32le(issue_ts), certificate), then HMAC(key = u32le(salt), ·).
pub(crate) fn signing_key_007(cert: &[u8], issue_ts: u32, salt: u32) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(&issue_ts.to_le_bytes()).expect("any key length");
    mac.update(cert);
    let first = mac.finalize().into_bytes();
    let mut mac = HmacSha256::new_from_slice(&salt.to_le_bytes()).expect("any key length");
    mac.update(&first);
    mac.finalize().into_bytes().into()
}

thread_local! {
    /// One inflater per thread, reset per token: creating one allocates ~40 KiB.
    static INFLATER: std::cell::RefCell<flate2::Decompress> =
        std::cell::RefCell::new(flate2::Decompress::new(true));
}

/// Inflates a zlib stream, refusing output larger than [`MAX_INFLATED_LEN`].
fn inflate_capped(data: &[u8]) -> Result<Vec<u8>, FormatError> {
    use flate2::{FlushDecompress, Status};
    let zlib_err = |detail: String| FormatError::Zlib { detail };
    INFLATER.with(|cell| {
        let mut d = cell.borrow_mut();
        d.reset(true);
        let mut out = Vec::with_capacity((data.len() * 4).clamp(256, MAX_INFLATED_LEN));
        loop {
            let consumed = usize::try_from(d.total_in())
                .unwrap_or(usize::MAX)
                .min(data.len());
            let (in_before, out_before) = (d.total_in(), d.total_out());
            let status = d
                .decompress_vec(&data[consumed..], &mut out, FlushDecompress::None)
                .map_err(|e| zlib_err(e.to_string()))?;
            if out.len() > MAX_INFLATED_LEN {
                return Err(FormatError::InflatedTooLarge {
                    limit: MAX_INFLATED_LEN,
                });
            }
            match status {
                Status::StreamEnd => return Ok(out),
                Status::Ok | Status::BufError => {
                    if out.len() == out.capacity() {
                        if out.len() >= MAX_INFLATED_LEN {
                            return Err(FormatError::InflatedTooLarge {
                                limit: MAX_INFLATED_LEN,
                            });
                        }
                        let more = out.len().clamp(256, MAX_INFLATED_LEN + 1 - out.len());
                        out.reserve_exact(more);
                    } else if d.total_in() == in_before && d.total_out() == out_before {
                        return Err(zlib_err("the stream ends before its final block".into()));
                    }
                }
            }
        }
    })
}

/// Decodes a `007` token without a certificate.
///
/// Any valid zlib stream is accepted (official encoders differ). An unknown service type
/// ends decoding gracefully and is reported in
/// [`unknown_service_type`](Agora007Token::unknown_service_type).
///
/// # Errors
/// A [`FormatError`] naming the broken part; never panics on any input.
///
/// # Example
/// ```
/// let t = tokenkeeper::formats::agora::decode_007(
///     "007eJxTYBBbsMMnKq7p9Hf/HcIX5kce9b518kCiQgSr5Zrp4X1Tu6UUGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcwMk4yN3b8IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiVwMRhYWRsYmhkbmxgDCaiTj",
/// ).unwrap();
/// assert_eq!(t.issue_ts, 1111111);
/// assert_eq!(t.expire_at(), 1111711);
/// ```
pub fn decode_007(token: &str) -> Result<Agora007Token, FormatError> {
    let body = token
        .trim()
        .strip_prefix("007")
        .ok_or(FormatError::UnknownFormat {
            hint: "an Agora AccessToken2 starts with 007",
        })?;
    let compressed = B64_LENIENT.decode(body).map_err(|e| FormatError::Base64 {
        format: F007,
        detail: e.to_string(),
    })?;
    let data = inflate_capped(&compressed)?;
    parse_007_payload(&data)
}

/// Parses a decompressed 007 payload (`string(signature) + signing_info`).
pub fn parse_007_payload(data: &[u8]) -> Result<Agora007Token, FormatError> {
    let mut r = Reader {
        buf: data,
        format: F007,
    };
    let signature = r.bytes("signature")?.to_vec();
    let signing_info = r.buf.to_vec();
    let app_id = r.string("app_id")?;
    let issue_ts = r.u32("issue_ts")?;
    let expire = r.u32("expire")?;
    let salt = r.u32("salt")?;
    let count = r.u16("service count")?;
    let mut services = Vec::new();
    let mut unknown_service_type = None;
    for _ in 0..count {
        let t = r.u16("service type")?;
        if service_name(t).is_none() {
            unknown_service_type = Some(t);
            break;
        }
        let privileges = r.privileges()?;
        let kind = match t {
            service_type::RTC => ServiceKind::Rtc {
                channel_name: r.string("channel_name")?,
                uid: r.string("uid")?,
            },
            service_type::RTM => ServiceKind::Rtm {
                user_id: r.string("user_id")?,
            },
            service_type::STREAMING => ServiceKind::Streaming {
                channel_name: r.string("channel_name")?,
                account: r.string("account")?,
            },
            service_type::FPA => ServiceKind::Fpa,
            service_type::CHAT => ServiceKind::Chat {
                user_id: r.string("user_id")?,
            },
            service_type::FCDN => ServiceKind::Fcdn {
                channel_name: r.string("channel_name")?,
                account: r.string("account")?,
            },
            service_type::APAAS => {
                let room_uuid = r.string("room_uuid")?;
                let user_uuid = r.string("user_uuid")?;
                let b = r.take(2, "role")?;
                ServiceKind::Apaas {
                    room_uuid,
                    user_uuid,
                    role: i16::from_le_bytes([b[0], b[1]]),
                }
            }
            _ => {
                let user_id = r.string("user_id")?;
                let mut permissions = Vec::new();
                let groups = r.u16("permissions")?;
                for _ in 0..groups {
                    let resource = r.u16("permissions")?;
                    let n = r.u16("permissions")?;
                    for _ in 0..n {
                        let permission = r.u16("permissions")?;
                        let k = r.u16("permissions")?;
                        let mut resources = Vec::new();
                        for _ in 0..k {
                            resources.push(r.string("permissions")?);
                        }
                        permissions.push(Rtm2Permission {
                            resource,
                            permission,
                            resources,
                        });
                    }
                }
                ServiceKind::Rtm2 {
                    user_id,
                    permissions,
                }
            }
        };
        services.push(Service { privileges, kind });
    }
    Ok(Agora007Token {
        app_id,
        issue_ts,
        expire,
        salt,
        services,
        unknown_service_type,
        signature,
        signing_info,
    })
}

/// Decodes a `007` token and verifies it with the app certificate.
///
/// # Errors
/// Decoding errors as [`decode_007`], then [`FormatError::InvalidKey`] or
/// [`FormatError::SignatureMismatch`].
pub fn verify_007(token: &str, app_certificate: &str) -> Result<Agora007Token, FormatError> {
    let t = decode_007(token)?;
    t.verify(app_certificate)?;
    Ok(t)
}

/// A decoded AccessToken (`006`).
#[derive(Clone, PartialEq, Eq)]
pub struct Agora006Token {
    /// The 32-character app id.
    pub app_id: String,
    /// CRC32 of the channel name.
    pub crc32_channel_name: u32,
    /// CRC32 of the uid string ("" for uid 0, whose CRC is 0).
    pub crc32_uid: u32,
    /// Random salt.
    pub salt: u32,
    /// Token expiry, unix seconds (official builders set now + 24 h).
    pub ts: u32,
    /// `(privilege id, absolute expiry unix seconds; 0 = no expiry)` in token order.
    pub privileges: Vec<(u16, u32)>,
    signature: Vec<u8>,
    message: Vec<u8>,
}

impl fmt::Debug for Agora006Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agora006Token")
            .field("app_id", &self.app_id)
            .field("crc32_channel_name", &self.crc32_channel_name)
            .field("crc32_uid", &self.crc32_uid)
            .field("salt", &self.salt)
            .field("ts", &self.ts)
            .field("privileges", &self.privileges)
            .field(
                "signature",
                &format_args!("<{} bytes>", self.signature.len()),
            )
            .finish()
    }
}

impl Agora006Token {
    /// The instant a keeper must treat as expiry: the earliest of `ts` and every non-zero
    /// privilege expiry (0 means the privilege does not expire).
    pub fn effective_expires_at(&self) -> i64 {
        self.privileges
            .iter()
            .filter(|p| p.1 != 0)
            .map(|p| i64::from(p.1))
            .fold(i64::from(self.ts), i64::min)
    }

    /// Decoded fields as JSON with the vector field names (`version, app_id,
    /// crc32_channel_name, crc32_uid, salt, ts, privileges[{id, name, expire_ts}]`).
    pub fn to_json(&self) -> Value {
        let privileges: Vec<Value> = self
            .privileges
            .iter()
            .map(|&(id, ts)| {
                json!({"id": id, "name": privilege_name_006(id).unwrap_or("unknown"), "expire_ts": ts})
            })
            .collect();
        json!({
            "version": "006",
            "app_id": self.app_id,
            "crc32_channel_name": self.crc32_channel_name,
            "crc32_uid": self.crc32_uid,
            "salt": self.salt,
            "ts": self.ts,
            "privileges": privileges,
        })
    }

    /// Verifies the signature. A 006 signature covers the channel name and the uid string,
    /// which the token only carries as CRC32, so both must be supplied (`uid` as packed:
    /// `""` for uid 0, else the decimal uid or the account).
    ///
    /// # Errors
    /// [`FormatError::InvalidKey`], [`FormatError::PayloadMismatch`] when the channel or uid
    /// does not match the CRCs, [`FormatError::SignatureMismatch`].
    pub fn verify(
        &self,
        app_certificate: &str,
        channel: &str,
        uid: &str,
    ) -> Result<(), FormatError> {
        check_hex32(app_certificate, "app certificate")?;
        if crc32fast::hash(channel.as_bytes()) != self.crc32_channel_name {
            return Err(FormatError::PayloadMismatch {
                format: F006,
                detail: "the channel name given is not the one in the token (CRC32 differs)".into(),
            });
        }
        if crc32fast::hash(uid.as_bytes()) != self.crc32_uid {
            return Err(FormatError::PayloadMismatch {
                format: F006,
                detail: "the uid given is not the one in the token (CRC32 differs; uid 0 is written as an empty string)".into(),
            });
        }
        let mut mac = HmacSha256::new_from_slice(app_certificate.as_bytes()).expect("any key");
        mac.update(self.app_id.as_bytes());
        mac.update(channel.as_bytes());
        mac.update(uid.as_bytes());
        mac.update(&self.message);
        mac.verify_slice(&self.signature)
            .map_err(|_| FormatError::SignatureMismatch {
                format: F006,
                key_name: "app certificate",
            })
    }
}

/// Decodes a `006` token without a certificate.
///
/// # Errors
/// A [`FormatError`] naming the broken part.
pub fn decode_006(token: &str) -> Result<Agora006Token, FormatError> {
    let rest = token
        .trim()
        .strip_prefix("006")
        .ok_or(FormatError::UnknownFormat {
            hint: "an Agora AccessToken starts with 006",
        })?;
    if rest.len() < 32 || !rest.is_char_boundary(32) {
        return Err(FormatError::Truncated {
            format: F006,
            field: "app_id",
        });
    }
    let (app_id, body) = rest.split_at(32);
    check_hex32(app_id, "app id").map_err(|_| FormatError::InvalidField {
        format: F006,
        field: "app_id",
        detail: "the 32 characters after 006 must be the hexadecimal app id".into(),
    })?;
    let data = B64_LENIENT.decode(body).map_err(|e| FormatError::Base64 {
        format: F006,
        detail: e.to_string(),
    })?;
    let mut r = Reader {
        buf: &data,
        format: F006,
    };
    let signature = r.bytes("signature")?.to_vec();
    let crc32_channel_name = r.u32("crc32_channel_name")?;
    let crc32_uid = r.u32("crc32_uid")?;
    let message = r.bytes("message")?.to_vec();
    let mut m = Reader {
        buf: &message,
        format: F006,
    };
    let salt = m.u32("salt")?;
    let ts = m.u32("ts")?;
    let privileges = m.privileges()?;
    Ok(Agora006Token {
        app_id: app_id.to_owned(),
        crc32_channel_name,
        crc32_uid,
        salt,
        ts,
        privileges,
        signature,
        message,
    })
}

/// Builds the packed 006 message `u32 salt u32 ts map<u16,u32>` (shared with `mint`).
#[cfg(feature = "mint")]
pub(crate) fn pack_006_message(
    salt: u32,
    ts: u32,
    privileges: &[(u16, u32)],
) -> Result<Vec<u8>, (&'static str, usize)> {
    let mut m = Vec::with_capacity(10 + privileges.len() * 6);
    put_u32(&mut m, salt);
    put_u32(&mut m, ts);
    put_u16(
        &mut m,
        u16::try_from(privileges.len()).map_err(|_| ("privileges", privileges.len()))?,
    );
    for &(id, exp) in privileges {
        put_u16(&mut m, id);
        put_u32(&mut m, exp);
    }
    Ok(m)
}

/// The 006 signature: HMAC-SHA256(key = certificate, app_id + channel + uid + message).
#[cfg(feature = "mint")]
pub(crate) fn sign_006(
    cert: &str,
    app_id: &str,
    channel: &str,
    uid: &str,
    message: &[u8],
) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(cert.as_bytes()).expect("any key");
    mac.update(app_id.as_bytes());
    mac.update(channel.as_bytes());
    mac.update(uid.as_bytes());
    mac.update(message);
    mac.finalize().into_bytes().into()
}
