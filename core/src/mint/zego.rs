//! ZEGO Token04 generator (GCM by default, legacy CBC on request), byte-compatible with the
//! official `zego_server_assistant` generators given the same nonce, IV and ctime.
//!
//! Plaintext: `{"app_id":…,"user_id":"…","nonce":…,"ctime":…,"expire":…,"payload":"…"}`
//! (compact, this field order, `payload` a string embedded verbatim), encrypted with
//! AES-256 keyed by the 32 secret bytes.

use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::{Rng, RngCore};

use super::MintError;

/// Longest user id the ZEGO services accept, in bytes.
pub const MAX_USER_ID_LEN: usize = 64;

/// Encryption mode of a Token04.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Token04Mode {
    /// AES-256-GCM, 12-byte nonce, trailing mode byte 1 (current; the default).
    #[default]
    Gcm,
    /// AES-256-CBC with PKCS#7, 16-byte IV, no mode byte (legacy generators).
    Cbc,
}

impl Token04Mode {
    /// Required IV/nonce length: 12 for GCM, 16 for CBC.
    pub fn iv_len(self) -> usize {
        match self {
            Self::Gcm => 12,
            Self::Cbc => 16,
        }
    }
}

/// The privilege payload of the official generators:
/// `{"room_id":"…","privilege":{"1":L,"2":P},"stream_id_list":…}` where `1` is login-room
/// and `2` is publish-stream (1 allowed, 0 denied) and `stream_id_list` is `null` or a list.
///
/// # Example
/// ```
/// let p = tokenkeeper::mint::zego::privilege_payload("room1", true, false, None);
/// assert_eq!(p, r#"{"room_id":"room1","privilege":{"1":1,"2":0},"stream_id_list":null}"#);
/// ```
pub fn privilege_payload(
    room_id: &str,
    login_room: bool,
    publish_stream: bool,
    stream_ids: Option<&[String]>,
) -> String {
    format!(
        "{{\"room_id\":{},\"privilege\":{{\"1\":{},\"2\":{}}},\"stream_id_list\":{}}}",
        serde_json::Value::from(room_id),
        u8::from(login_room),
        u8::from(publish_stream),
        stream_ids.map_or_else(
            || "null".to_owned(),
            |s| serde_json::Value::from(s.to_vec()).to_string()
        )
    )
}

/// Generates a Token04 from explicit inputs (reproducible).
///
/// `secret` must be 32 bytes and is used as raw bytes; `effective_time_secs > 0`;
/// `expire = ctime + effective_time_secs`; `iv` is 12 bytes for GCM, 16 for CBC.
///
/// `app_id` is a `u32` on purpose: the official Python and Node generators accept any
/// integer, but the ZEGO console issues 32-bit AppIDs and the ZEGO services refuse a token
/// carrying a larger one, so such a token could never be used. Decoding reports one as
/// [`FormatError::ZegoAppIdOutOfRange`](crate::formats::FormatError::ZegoAppIdOutOfRange).
///
/// # Errors
/// [`MintError::ZegoAppId`], [`MintError::EmptyUserId`], [`MintError::TooLong`] (user id
/// over [`MAX_USER_ID_LEN`] bytes, payload over 65535 bytes), [`MintError::ZegoSecret`],
/// [`MintError::EffectiveTime`], [`MintError::IvLength`].
#[allow(clippy::too_many_arguments)]
pub fn generate_token04(
    app_id: u32,
    user_id: &str,
    secret: &str,
    effective_time_secs: i64,
    payload: &str,
    mode: Token04Mode,
    ctime: i64,
    nonce: i32,
    iv: &[u8],
) -> Result<String, MintError> {
    if app_id == 0 {
        return Err(MintError::ZegoAppId);
    }
    if user_id.is_empty() {
        return Err(MintError::EmptyUserId);
    }
    if user_id.len() > MAX_USER_ID_LEN {
        return Err(MintError::TooLong {
            field: "user id",
            len: user_id.len(),
            max: MAX_USER_ID_LEN,
        });
    }
    let key: &[u8; 32] = secret
        .as_bytes()
        .try_into()
        .map_err(|_| MintError::ZegoSecret { len: secret.len() })?;
    if effective_time_secs <= 0 {
        return Err(MintError::EffectiveTime {
            secs: effective_time_secs,
        });
    }
    let expire = ctime
        .checked_add(effective_time_secs)
        .ok_or(MintError::EffectiveTime {
            secs: effective_time_secs,
        })?;
    let (variant, expected) = match mode {
        Token04Mode::Gcm => ("gcm", 12),
        Token04Mode::Cbc => ("cbc", 16),
    };
    if iv.len() != expected {
        return Err(MintError::IvLength {
            variant,
            expected,
            len: iv.len(),
        });
    }
    let mut plain = String::with_capacity(96 + user_id.len() + payload.len());
    plain.push_str("{\"app_id\":");
    plain.push_str(&app_id.to_string());
    plain.push_str(",\"user_id\":");
    plain.push_str(&serde_json::Value::from(user_id).to_string());
    plain.push_str(",\"nonce\":");
    plain.push_str(&nonce.to_string());
    plain.push_str(",\"ctime\":");
    plain.push_str(&ctime.to_string());
    plain.push_str(",\"expire\":");
    plain.push_str(&expire.to_string());
    plain.push_str(",\"payload\":");
    plain.push_str(&serde_json::Value::from(payload).to_string());
    plain.push('}');
    let ct = match mode {
        Token04Mode::Gcm => Aes256Gcm::new(key.into())
            .encrypt(Nonce::from_slice(iv), plain.as_bytes())
            .map_err(|_| MintError::Crypto {
                detail: "AES-GCM encryption failed".into(),
            })?,
        Token04Mode::Cbc => cbc::Encryptor::<aes::Aes256>::new(key.into(), iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plain.as_bytes()),
    };
    let ct_len = u16::try_from(ct.len()).map_err(|_| MintError::TooLong {
        field: "payload",
        len: payload.len(),
        max: usize::from(u16::MAX) - 128,
    })?;
    let mut bin = Vec::with_capacity(8 + 2 + iv.len() + 2 + ct.len() + 1);
    bin.extend_from_slice(&expire.to_be_bytes());
    bin.extend_from_slice(&(iv.len() as u16).to_be_bytes());
    bin.extend_from_slice(iv);
    bin.extend_from_slice(&ct_len.to_be_bytes());
    bin.extend_from_slice(&ct);
    if mode == Token04Mode::Gcm {
        bin.push(1);
    }
    let mut out = String::with_capacity(2 + bin.len().div_ceil(3) * 4);
    out.push_str("04");
    STANDARD.encode_string(&bin, &mut out);
    Ok(out)
}

/// Generates a GCM Token04 created at `now_unix`, with a random nonce and a random 12-byte
/// IV from the OS CSPRNG.
///
/// # Errors
/// As [`generate_token04`].
pub fn generate_token04_now(
    app_id: u32,
    user_id: &str,
    secret: &str,
    effective_time_secs: i64,
    payload: &str,
    now_unix: i64,
) -> Result<String, MintError> {
    let iv = random_iv(Token04Mode::Gcm);
    generate_token04(
        app_id,
        user_id,
        secret,
        effective_time_secs,
        payload,
        Token04Mode::Gcm,
        now_unix,
        random_nonce(),
        &iv,
    )
}

/// A random IV of the right length for `mode` (12 bytes GCM, 16 bytes CBC), from the OS
/// CSPRNG.
pub fn random_iv(mode: Token04Mode) -> Vec<u8> {
    let mut iv = vec![0u8; mode.iv_len()];
    rand::rngs::OsRng.fill_bytes(&mut iv);
    iv
}

/// A random positive JSON nonce (`1..=i32::MAX`), from the OS CSPRNG.
pub fn random_nonce() -> i32 {
    rand::rngs::OsRng.gen_range(1..=i32::MAX)
}
